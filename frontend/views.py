"""Upload page and result page."""

from __future__ import annotations

import uuid
from pathlib import Path

from flask import Blueprint, current_app, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from frontend.api_client import ApiError, recognize
from frontend.playback import transcode_for_browser

bp = Blueprint("pages", __name__)

ALLOWED_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
ACCEPT = ",".join(sorted(ALLOWED_EXTENSIONS)) + ",video/*"


def _form(error: str | None = None, status: int = 200):
    return render_template("index.html", error=error, accept=ACCEPT), status


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
    upload = request.files.get("video")
    if upload is None or not upload.filename:
        return _form("Choose a video file first.", 400)
    original_name = upload.filename
    extension = Path(secure_filename(original_name)).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        return _form(f"That file is not a supported video. Use one of: {', '.join(sorted(ALLOWED_EXTENSIONS))}.", 415)

    folder = Path(current_app.config["UPLOAD_FOLDER"])
    stem = uuid.uuid4().hex
    saved = folder / f"{stem}{extension}"
    upload.save(saved)
    request_id = stem[:16]
    try:
        result = recognize(current_app.config["API_URL"], saved, original_name,
                           timeout_s=current_app.config["API_TIMEOUT_S"], request_id=request_id)
    except ApiError as exc:
        saved.unlink(missing_ok=True)
        current_app.logger.warning("request_id=%s API error %d: %s", request_id, exc.status_code, exc.message)
        return _form(exc.message, exc.status_code)
    current_app.logger.info("request_id=%s recognized, %d clips", request_id, len(result["clips"]))

    playable = folder / f"{stem}.play.mp4"
    if transcode_for_browser(saved, playable):
        saved.unlink(missing_ok=True)
        video_file, playback_note = playable, None
    else:
        video_file = saved
        playback_note = "This video could not be converted for browser playback; your browser may not play it."
    return render_template(
        "result.html",
        result=result,
        filename=original_name,
        video_url=url_for("pages.media", name=video_file.name),
        playback_note=playback_note,
    )
