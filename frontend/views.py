"""Upload page, result page and live page."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, jsonify, render_template, request, send_file, \
    send_from_directory, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from common.reels import ReelError, ReelTooSlow, find_reel, kept_reel, labels_without_moments, reel_name
from common.results import download_name
from frontend.exports import export_response
from frontend.api_client import (ApiError, cancel_job, highlights, job_status, live_session, recognize, sports,
                                 submit_job, upload_token)
from frontend.housekeeping import prune_uploads
from frontend.security import csrf_ok, websocket_origin
from frontend.playback import transcode_for_browser

bp = Blueprint("pages", __name__)

ALLOWED_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif"}
ACCEPT = ",".join(sorted(ALLOWED_EXTENSIONS)) + ",video/*"


SPORTS_KEPT_S = 600  # how long the page keeps the API's list of sports


def _sports() -> list[dict]:
    """The API's sports for the pickers, kept a while; none (no picker) while the API cannot say."""
    kept = current_app.config.get("_SPORTS")
    if kept and time.monotonic() - kept[0] < SPORTS_KEPT_S:
        return kept[1]
    try:
        found = [{"id": str(s["id"]), "name": str(s["name"])} for s in sports(current_app.config["API_URL"])]
    except (ApiError, KeyError, TypeError, ValueError):  # down, or not an API that knows sports
        return []
    current_app.config["_SPORTS"] = (time.monotonic(), found)
    return found


def _sport() -> str | None:
    """The sport the form asked for, if it is one the API named."""
    chosen = request.form.get("sport") or None
    return chosen if chosen in {s["id"] for s in _sports()} else None


def _form(error: str | None = None, status: int = 200):
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    limit_h = current_app.config["MAX_VIDEO_DURATION_S"] / 3600
    resumable_mb = current_app.config["RESUMABLE_UPLOAD_MB"]
    return render_template("index.html", error=error, accept=ACCEPT, limit_mb=limit_mb, limit_h=f"{limit_h:g}",
                           extensions=sorted(ALLOWED_EXTENSIONS), resumable_mb=f"{resumable_mb:g}", sports=_sports(),
                           resumable_bytes=int(resumable_mb * 1024 * 1024)), status


class UploadRejected(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def _save_upload() -> tuple[Path, str]:
    """Validate the form (CSRF token, `video` field) and save the file under a random name.

    Returns (path, the client's file name).
    """
    if not csrf_ok():
        raise UploadRejected("This form has expired. Reload the page and try again.", 400)
    upload = request.files.get("video")
    if upload is None or not upload.filename:
        raise UploadRejected("Choose a video file first.", 400)
    extension = Path(secure_filename(upload.filename)).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        raise UploadRejected(f"That file is not a supported video. Use one of: {', '.join(sorted(ALLOWED_EXTENSIONS))}.", 415)
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    for kept in (folder, _results_dir()):
        prune_uploads(kept, max_age_s=current_app.config["UPLOAD_MAX_AGE_S"],
                      max_files=current_app.config["UPLOAD_MAX_FILES"])
    saved = folder / f"{uuid.uuid4().hex}{extension}"
    upload.save(saved)
    return saved, upload.filename


def _playable(saved: Path) -> tuple[Path, str | None]:
    """The copy the player gets: H.264 MP4 when transcoding works, else the original with a note."""
    playable = saved.with_name(f"{saved.stem}.play.mp4")
    if transcode_for_browser(saved, playable):
        saved.unlink(missing_ok=True)
        return playable, None
    return saved, "This video could not be converted for browser playback; your browser may not play it."


def _log_api_error(request_id: str, exc: ApiError) -> None:
    current_app.logger.warning("API error", extra={"request_id": request_id, "status": exc.status_code,
                                                   "detail": exc.message})


@bp.get("/")
def index():
    return _form()


@bp.get("/health")
def health():
    return {"status": "ok"}


@bp.get("/media/<name>")
def media(name: str):
    """Uploaded copies for the player (byte ranges supported, so seeking works)."""
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], name, conditional=True)


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(_error):
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    return _form(f"That file is larger than the {limit_mb} MB limit.", 413)


@bp.post("/recognize")
def recognize_upload():
    """The page without JavaScript: upload, wait, get the result page."""
    try:
        saved, original_name = _save_upload()
    except UploadRejected as exc:
        return _form(exc.message, exc.status)
    request_id = saved.stem[:16]
    try:
        result = recognize(current_app.config["API_URL"], saved, original_name,
                           timeout_s=current_app.config["API_TIMEOUT_S"], request_id=request_id,
                           api_key=current_app.config["API_KEY"], sport=_sport())
    except ApiError as exc:
        saved.unlink(missing_ok=True)
        _log_api_error(request_id, exc)
        return _form(exc.message, exc.status_code)
    current_app.logger.info("recognized", extra={"request_id": request_id, "clips": len(result["clips"])})
    video_file, playback_note = _playable(saved)
    _keep_result(saved.stem, result)
    return render_template("result.html", result=result, filename=original_name, downloads=_downloads(saved.stem),
                           video_url=url_for("pages.media", name=video_file.name), playback_note=playback_note)


@bp.post("/jobs")
def create_job():
    """The page with JavaScript: queue the job at the API and answer at once with its id and the player's URL."""
    try:
        saved, original_name = _save_upload()
    except UploadRejected as exc:
        return jsonify(error=exc.message), exc.status
    request_id = saved.stem[:16]
    try:
        job = submit_job(current_app.config["API_URL"], saved, original_name, timeout_s=60, request_id=request_id,
                         api_key=current_app.config["API_KEY"], sport=_sport())
    except ApiError as exc:
        saved.unlink(missing_ok=True)
        _log_api_error(request_id, exc)
        return jsonify(error=exc.message), exc.status_code
    video_file, playback_note = _playable(saved)
    (_results_dir() / f"{saved.stem}.job").write_text(json.dumps({"job_id": job["id"]}))
    return jsonify(job_id=job["id"], filename=original_name, video_url=url_for("pages.media", name=video_file.name),
                   playback_note=playback_note, downloads=_downloads(saved.stem)), 202


def _token_for_browser(ask, kind: str):
    """(the API's token answer, None), asked with the API key, which the browser never sees; or (None, the JSON
    error the page shows) without a valid CSRF token or when the API refuses."""
    if not csrf_ok():
        return None, (jsonify(error="This page has expired. Reload it and try again."), 400)
    try:
        return ask(current_app.config["API_URL"], api_key=current_app.config["API_KEY"]), None
    except ApiError as exc:
        _log_api_error(kind, exc)
        return None, (jsonify(error=exc.message), exc.status_code)


@bp.post("/uploads/session")
def start_resumable_upload():
    """Where and with what token the browser uploads a big file resumably, straight to the API (tus); the token
    lasts a while, and the page asks again in time."""
    token, error = _token_for_browser(upload_token, "uploads")
    if error:
        return error
    return jsonify(endpoint=current_app.config["API_PUBLIC_URL"].rstrip("/") + token["endpoint"], token=token["token"],
                   expires_in_s=token["expires_in_s"])


@bp.put("/jobs/<job_id>")
def follow_job(job_id: str):
    """A job that a resumable upload started at the API (its id is the upload's): kept, as the page's own jobs
    are, for its JSON and CSV downloads. (No annotated video: the file never passed through here.)"""
    if not csrf_ok():
        return jsonify(error="This page has expired. Reload it and try again."), 400
    if not STEM.fullmatch(job_id):
        return jsonify(error="That is not a job of this service."), 404
    try:
        job_status(current_app.config["API_URL"], job_id, api_key=current_app.config["API_KEY"])
    except ApiError as exc:
        return jsonify(error=exc.message), exc.status_code
    prune_uploads(_results_dir(), max_age_s=current_app.config["UPLOAD_MAX_AGE_S"],
                  max_files=current_app.config["UPLOAD_MAX_FILES"])
    (_results_dir() / f"{job_id}.job").write_text(json.dumps({"job_id": job_id}))
    return jsonify(job_id=job_id, downloads=_downloads(job_id, ("json", "csv", "vtt", "edl", "highlights")))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    try:
        return jsonify(job_status(current_app.config["API_URL"], job_id, api_key=current_app.config["API_KEY"]))
    except ApiError as exc:
        return jsonify(error=exc.message), exc.status_code


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    """The page's Cancel button: the job stops at the API (DELETE /jobs/{id}); its state comes back."""
    if not csrf_ok():
        return jsonify(error="This page has expired. Reload it and try again."), 400
    try:
        return jsonify(cancel_job(current_app.config["API_URL"], job_id, api_key=current_app.config["API_KEY"]))
    except ApiError as exc:
        return jsonify(error=exc.message), exc.status_code


# Downloads of a result: its JSON, its clips as CSV, the video with the labels drawn on it. An upload's result is
# kept under DATA_DIR/results/<stem>.json (from the page without JavaScript at once; for a job, fetched from the API
# when first asked for), pruned with the uploads.
STEM = re.compile(r"[0-9a-f]{32}")


def _results_dir() -> Path:
    folder = Path(current_app.config["DATA_DIR"]) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _keep_result(stem: str, result: dict) -> None:
    """Keep the result beside the upload (a job's `.job` file stays: its reels come from the API)."""
    (_results_dir() / f"{stem}.json").write_text(json.dumps(result))


def _downloads(stem: str, kinds=("json", "csv", "vtt", "edl", "video", "highlights")) -> dict:
    return {kind: url_for(f"pages.download_{kind}", stem=stem) for kind in kinds}


class NotReady(Exception):
    pass


def _result(stem: str) -> dict:
    """The kept result of upload `stem`; 404 for an unknown one, NotReady while its job runs."""
    if not STEM.fullmatch(stem):
        abort(404)
    kept, job_file = _results_dir() / f"{stem}.json", _results_dir() / f"{stem}.job"
    if kept.is_file():
        return json.loads(kept.read_text())
    if not job_file.is_file():
        abort(404)
    job = job_status(current_app.config["API_URL"], json.loads(job_file.read_text())["job_id"],
                     api_key=current_app.config["API_KEY"])
    if job["status"] != "done":
        raise NotReady(f"The recognition is {job['status']}: its downloads come when it is done.")
    _keep_result(stem, job["result"])
    return job["result"]


def _download(stem: str, make):
    """`make(result)` as a download, or the upload page with a readable message."""
    try:
        return make(_result(stem))
    except NotReady as exc:
        return _form(str(exc), 409)
    except ApiError as exc:
        return _form(exc.message, exc.status_code)


@bp.get("/results/<stem>.json")
def download_json(stem: str):
    return _download(stem, lambda result: export_response("json", result))


@bp.get("/results/<stem>.csv")
def download_csv(stem: str):
    return _download(stem, lambda result: export_response("csv", result))


@bp.get("/results/<stem>.vtt")
def download_vtt(stem: str):
    """The moments as WebVTT chapters: the player's chapters track, and a download."""
    return _download(stem, lambda result: export_response("vtt", result))


@bp.get("/results/<stem>.edl")
def download_edl(stem: str):
    return _download(stem, lambda result: export_response("edl", result))


@bp.get("/results/<stem>.mp4")
def download_video(stem: str):
    """The upload with every clip's top action drawn on it (made once, from the kept result)."""
    def make(result: dict):
        from frontend.annotate import AnnotationError, annotate  # OpenCV is loaded only when a video is asked for

        target = _results_dir() / f"{stem}.annotated.mp4"
        if not target.is_file():
            sources = sorted(Path(current_app.config["UPLOAD_FOLDER"]).glob(f"{stem}.*"))
            if not sources:
                return _form("The uploaded video has been removed since (uploads are kept for a while only).", 410)
            try:
                annotate(sources[0], result, target)
            except AnnotationError as exc:
                current_app.logger.warning("annotation failed", extra={"detail": str(exc)})
                return _form(f"The annotated video could not be made: {exc}.", 500)
        return send_file(target, mimetype="video/mp4", as_attachment=True,
                         download_name=download_name(result, ".annotated.mp4"), conditional=True)

    return _download(stem, make)


@bp.get("/results/<stem>/highlights")
def download_highlights(stem: str):
    """The reel of the actions asked for (`label`, repeated; `pad_s`): a job's from the API, which keeps its
    original upload; else, or once the API no longer has it, cut here from the kept copy. Made once, kept
    and pruned with the upload."""
    labels = [label for label in request.args.getlist("label") if label]
    try:
        pad_s = float(request.args.get("pad_s", "2"))
    except ValueError:
        pad_s = -1.0
    if not labels or not 0 <= pad_s <= 30:
        return _form("A reel needs at least one action and padding of 0 to 30 seconds.", 422)

    def make(result: dict):
        missing = labels_without_moments(result, labels)
        if missing:
            return _form(f"This video has no moment of {', '.join(missing)}.", 422)
        folder = _results_dir()
        reel = find_reel(folder, stem, labels, pad_s) or _reel_from_api(stem, labels, pad_s)
        if reel is None:
            sources = sorted(Path(current_app.config["UPLOAD_FOLDER"]).glob(f"{stem}.*"))
            if not sources:
                return _form("The uploaded video has been removed since (uploads are kept for a while only).", 410)
            try:
                reel = kept_reel(sources[0], result, labels, folder, stem, pad_s=pad_s,
                                 timeout_s=current_app.config["API_TIMEOUT_S"])
            except ReelError as exc:
                current_app.logger.warning("reel failed", extra={"detail": str(exc)})
                return _form(f"The reel could not be made: {exc}.", 503 if isinstance(exc, ReelTooSlow) else 500)
        name = "+".join("".join(c if c.isalnum() else "_" for c in label) for label in sorted(set(labels)))
        return send_file(reel[0], mimetype="video/mp4", as_attachment=True, conditional=True,
                         download_name=download_name(result, f".{name[:80]}.highlights.mp4"))

    return _download(stem, make)


def _reel_from_api(stem: str, labels: list[str], pad_s: float) -> tuple[Path, str] | None:
    """The API's reel of a job, kept here; None for no job, or when the API no longer keeps its video (410)."""
    job_file = _results_dir() / f"{stem}.job"
    if not job_file.is_file():
        return None
    partial = _results_dir() / f"{stem}.{reel_name(labels, pad_s)}.partial.mp4"
    try:
        cut = highlights(current_app.config["API_URL"], json.loads(job_file.read_text())["job_id"], labels, pad_s,
                         partial, timeout_s=current_app.config["API_TIMEOUT_S"], api_key=current_app.config["API_KEY"])
    except ApiError as exc:
        if exc.status_code == 410:
            return None
        raise
    reel = partial.with_name(f"{stem}.{reel_name(labels, pad_s)}.{cut if cut in ('copy', 'encode') else 'copy'}.mp4")
    partial.replace(reel)
    return reel, cut


@bp.get("/live")
def live():
    return render_template("live.html", sports=_sports())


@bp.post("/live/session")
def start_live_session():
    """A short-lived token for the API's live WebSocket."""
    session, error = _token_for_browser(live_session, "live")
    if error:
        return error
    public = current_app.config["API_PUBLIC_URL"]
    base = websocket_origin(public) + urlsplit(public).path.rstrip("/")
    return jsonify(websocket_url=base + session["path"], token=session["token"], expires_in_s=session["expires_in_s"])
