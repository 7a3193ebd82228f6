"""The Library page: every analysed video (poster, duration, top actions, date), each opening its stored result,
and a search for an action across them whose moments play in place. The API's library is reached over HTTP; its
videos, stills and reels are passed on as they arrive (byte ranges too, so the players can seek)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, send_file, url_for

from frontend.api_client import ApiError, fetch, labels, library_delete, library_get, stream
from frontend.exports import KINDS, export_response
from frontend.housekeeping import prune_uploads
from frontend.playback import transcode_for_browser
from frontend.security import csrf_ok

bp = Blueprint("library", __name__, url_prefix="/library")

PAGE = 24  # videos on a page of the library
MOMENTS = 48  # moments a search shows
LABELS_KEPT_S = 600
VIDEO_ID = re.compile(r"[0-9a-f]{32}")
BROWSER_PLAYS = {"video/mp4", "video/webm", "video/quicktime"}  # containers browsers open (H.264 or VP9 inside)
PASSED_ON = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Content-Disposition",
             "Last-Modified", "ETag", "Cache-Control", "X-Reel-Cut", "X-Reel-Moments")


@bp.app_template_filter("clock")
def clock(seconds: float | None) -> str:
    """83.4 -> "1:23", 4000 -> "1:06:40"."""
    whole = int(seconds or 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _api() -> tuple[str, str | None]:
    return current_app.config["API_URL"].rstrip("/"), current_app.config["API_KEY"]


def _labels() -> list[str]:
    """The model's labels for the search box's suggestions, kept a while; none while the API cannot say."""
    kept = current_app.config.get("_LABELS")
    if kept and time.monotonic() - kept[0] < LABELS_KEPT_S:
        return kept[1]
    try:
        found = [str(label) for label in labels(_api()[0])]
    except (ApiError, KeyError, TypeError, ValueError):
        return []
    current_app.config["_LABELS"] = (time.monotonic(), found)
    return found


def _video_id(video_id: str) -> str:
    if not VIDEO_ID.fullmatch(video_id):
        abort(404)
    return video_id


@bp.get("")
def index():
    """The analysed videos, newest first, a page at a time; with `label`, that action's moments across them."""
    api_url, api_key = _api()
    label = (request.args.get("label") or "").strip()[:200]
    page = int(request.args["page"]) if request.args.get("page", "").isdigit() else 1
    page = max(1, min(page, 10_000))
    listing, found, error, status = {"total": 0, "videos": []}, None, None, 200
    try:
        listing = library_get(api_url, "/videos", api_key=api_key, limit=PAGE, offset=(page - 1) * PAGE)
        if label:
            found = library_get(api_url, "/search", api_key=api_key, label=label, limit=MOMENTS)
    except ApiError as exc:
        error, status = exc.message, exc.status_code
    known = not label or not _labels() or label in _labels()
    return render_template("library.html", videos=listing["videos"], total=listing["total"], page=page,
                           pages=max(1, -(-listing["total"] // PAGE)), label=label, found=found, known=known,
                           labels=_labels(), error=error), status


def _stored(video_id: str) -> dict:
    """The API's stored result of `video_id` (404 for none)."""
    api_url, api_key = _api()
    return library_get(api_url, f"/videos/{quote(_video_id(video_id))}", api_key=api_key)


def _page_error(exc: ApiError):
    return render_template("library.html", videos=[], total=0, page=1, pages=1, label="", found=None, known=True,
                           labels=[], error=exc.message), exc.status_code


@bp.get("/<video_id>")
def result(video_id: str):
    """A stored result on the result page: its video played from the library while it is kept."""
    try:
        stored = _stored(video_id)
    except ApiError as exc:
        return _page_error(exc)
    at = request.args.get("t", type=float)
    video_url = url_for("library.video_file", video_id=video_id) if stored.get("has_video") else ""
    if video_url and at:
        video_url += f"#t={at:.2f}"
    downloads = {kind: url_for("library.download", video_id=video_id, kind=kind) for kind in KINDS}
    if stored.get("has_video"):
        downloads["highlights"] = url_for("library.highlights", video_id=video_id)
    note = None if stored.get("has_video") else ("The video is no longer kept in the library (the oldest go when "
                                                 "room is needed); its analysis is.")
    return render_template("result.html", result=stored, filename=stored["video"]["filename"], downloads=downloads,
                           video_url=video_url, playback_note=note)


def _download(video_id: str, make):
    try:
        return make(_stored(video_id))
    except ApiError as exc:
        return _page_error(exc)


@bp.get(f"/<video_id>.<any({', '.join(KINDS)}):kind>")
def download(video_id: str, kind: str):
    """The stored result as JSON, its clips as CSV, its moments as WebVTT chapters or an EDL."""
    return _download(video_id, lambda result: export_response(kind, result))


def _passed_on(path: str, *, params=None, timeout_s: float = 60):
    """The API's answer at `path` (a video, a still, a reel) handed on as it arrives, byte ranges and all; a
    readable page when the API refuses."""
    api_url, api_key = _api()
    try:
        response, close = stream(f"{api_url}{path}", timeout_s=timeout_s, api_key=api_key, params=params,
                                 headers={"Range": request.headers.get("Range"),
                                          "If-Range": request.headers.get("If-Range")})
    except ApiError as exc:
        return _page_error(exc)

    def body():
        try:
            yield from response.iter_bytes(1 << 16)
        finally:
            close()

    headers = {name: response.headers[name] for name in PASSED_ON if name in response.headers}
    return Response(body(), status=response.status_code, headers=headers, direct_passthrough=True)


@bp.get("/<video_id>/video")
def video_file(video_id: str):
    """The stored video as it was uploaded when browsers play its kind (MP4, WebM, MOV), else a copy transcoded
    here once (AVI, MKV: H.264 MP4, a keyframe a second) and kept with the page's other copies."""
    copy = _copies() / f"{_video_id(video_id)}.play.mp4"
    if copy.is_file():
        return send_file(copy, mimetype="video/mp4", conditional=True)
    passed = _passed_on(f"/videos/{video_id}/video")
    if not isinstance(passed, Response) or passed.status_code >= 300 or passed.mimetype in BROWSER_PLAYS:
        return passed
    passed.close()  # a kind browsers do not play: fetched whole, transcoded once
    api_url, api_key = _api()
    work = f".{video_id}.{uuid.uuid4().hex}"
    original, partial = copy.with_name(f"{work}.original"), copy.with_name(f"{work}.mp4")
    try:
        fetch(f"{api_url}/videos/{video_id}/video", original, timeout_s=current_app.config["API_TIMEOUT_S"],
              api_key=api_key)
        if not transcode_for_browser(original, partial):
            return _page_error(ApiError("This video could not be converted for playback in the browser; download "
                                        "its result instead.", 500))
        partial.replace(copy)
    except ApiError as exc:
        return _page_error(exc)
    finally:
        original.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return send_file(copy, mimetype="video/mp4", conditional=True)


def _copies() -> Path:
    """Playable copies of stored videos, pruned like the page's uploads."""
    folder = Path(current_app.config["DATA_DIR"]) / "library"
    folder.mkdir(parents=True, exist_ok=True)
    prune_uploads(folder, max_age_s=current_app.config["UPLOAD_MAX_AGE_S"],
                  max_files=current_app.config["UPLOAD_MAX_FILES"])
    return folder


@bp.get("/<video_id>/thumbnail")
def thumbnail(video_id: str):
    at = request.args.get("at", type=float)
    return _passed_on(f"/videos/{_video_id(video_id)}/thumbnail", params={"at": at} if at is not None else None)


@bp.get("/<video_id>/highlights")
def highlights(video_id: str):
    """A stored video's reel of the actions asked for (`label`, repeated; `pad_s`)."""
    return _passed_on(f"/videos/{_video_id(video_id)}/highlights", timeout_s=current_app.config["API_TIMEOUT_S"],
                      params={"label": request.args.getlist("label"), "pad_s": request.args.get("pad_s", "2")})


@bp.get("/search/highlights")
def search_highlights():
    """One reel of a search's best moments across the library (at most two minutes)."""
    return _passed_on("/search/highlights", timeout_s=current_app.config["API_TIMEOUT_S"],
                      params={"label": request.args.getlist("label"), "pad_s": request.args.get("pad_s", "1"),
                              "max_s": request.args.get("max_s", "120")})


@bp.post("/<video_id>/delete")
def delete(video_id: str):
    """Delete a stored video (its analysis, moments and files), then back to the library."""
    if not csrf_ok():
        return _page_error(ApiError("This page has expired. Reload it and try again.", 400))
    api_url, api_key = _api()
    try:
        library_delete(api_url, _video_id(video_id), api_key=api_key)
    except ApiError as exc:
        return _page_error(exc)
    (_copies() / f"{video_id}.play.mp4").unlink(missing_ok=True)
    return redirect(url_for("library.index"), 303)
