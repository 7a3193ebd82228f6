"""Upload page, result page and live page."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from frontend.api_client import ApiError, job_status, live_session, recognize, submit_job
from frontend.housekeeping import prune_uploads
from frontend.security import csrf_ok, websocket_origin
from frontend.playback import transcode_for_browser

bp = Blueprint("pages", __name__)

ALLOWED_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif"}
ACCEPT = ",".join(sorted(ALLOWED_EXTENSIONS)) + ",video/*"


def _form(error: str | None = None, status: int = 200):
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    return render_template("index.html", error=error, accept=ACCEPT, limit_mb=limit_mb,
                           extensions=sorted(ALLOWED_EXTENSIONS)), status


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
    prune_uploads(folder, max_age_s=current_app.config["UPLOAD_MAX_AGE_S"],
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
                           api_key=current_app.config["API_KEY"])
    except ApiError as exc:
        saved.unlink(missing_ok=True)
        _log_api_error(request_id, exc)
        return _form(exc.message, exc.status_code)
    current_app.logger.info("recognized", extra={"request_id": request_id, "clips": len(result["clips"])})
    video_file, playback_note = _playable(saved)
    return render_template("result.html", result=result, filename=original_name,
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
                         api_key=current_app.config["API_KEY"])
    except ApiError as exc:
        saved.unlink(missing_ok=True)
        _log_api_error(request_id, exc)
        return jsonify(error=exc.message), exc.status_code
    video_file, playback_note = _playable(saved)
    return jsonify(job_id=job["id"], filename=original_name, video_url=url_for("pages.media", name=video_file.name),
                   playback_note=playback_note), 202


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    try:
        return jsonify(job_status(current_app.config["API_URL"], job_id, api_key=current_app.config["API_KEY"]))
    except ApiError as exc:
        return jsonify(error=exc.message), exc.status_code


@bp.get("/live")
def live():
    return render_template("live.html")


@bp.post("/live/session")
def start_live_session():
    """A short-lived token for the API's live WebSocket, got with the API key, which the browser never sees."""
    if not csrf_ok():
        return jsonify(error="This page has expired. Reload it and try again."), 400
    config = current_app.config
    try:
        session = live_session(config["API_URL"], api_key=config["API_KEY"])
    except ApiError as exc:
        _log_api_error("live", exc)
        return jsonify(error=exc.message), exc.status_code
    base = websocket_origin(config["API_PUBLIC_URL"]) + urlsplit(config["API_PUBLIC_URL"]).path.rstrip("/")
    return jsonify(websocket_url=base + session["path"], token=session["token"], expires_in_s=session["expires_in_s"])
