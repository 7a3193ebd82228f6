"""One queued job, as a worker runs it: the same recognition and result dict as the API process gives.

Expected failures (not a video, over a limit, too slow) come back as the result `{"error": {status_code,
detail}}`, exactly the error object of an in-process job; anything else fails the task (read as 500).
The upload is deleted once the job has run, whatever the outcome; a worker killed mid-job leaves it for
the worker that runs the job again.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from models.recognition.recognizer import ActionRecognizer, UnknownHeadError
from service.recognition import JOB_HINT, ROUTE_HINT, job_time_limit_s, recognize_shared
from service.refusals import Refused
from service.settings import Settings

log = logging.getLogger("workers.task")


def upload_path(settings: Settings, name: str) -> Path:
    """The upload `name` in the shared folder; a name with a path in it is refused."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"not an upload name: {name!r}")
    return settings.job_upload_dir / name


def run_job(recognizer: ActionRecognizer, settings: Settings, *, upload: str, options: dict, worker: str,
            on_progress, on_window=None, cancel: threading.Event | None = None) -> dict:
    """Recognize the upload `upload` with `options` (top_k, head, filename, and time_limit_s for a synchronous
    request; a job's grows with its video); returns {"result"} or {"error"}."""
    path = upload_path(settings, upload)
    try:
        if not path.is_file():
            return {"worker": worker, "error": {"status_code": 500, "detail": (
                f"the upload is not in SHARED_UPLOAD_DIR on worker {worker}: the API and every worker must mount "
                "the same folder")}}
        try:
            result = recognize_shared(recognizer, path, top_k=options["top_k"], filename=options["filename"],
                                      head=options.get("head"), on_progress=on_progress, on_window=on_window,
                                      cancel=cancel,
                                      timeout_s=options.get("time_limit_s") or job_time_limit_s(settings, path),
                                      hint=ROUTE_HINT if options.get("time_limit_s") else JOB_HINT)
        except Refused as exc:
            return {"worker": worker, "error": exc.error()}
        except UnknownHeadError as exc:
            return {"worker": worker, "error": {"status_code": 422, "detail": (
                f"unknown head {exc.args[0]!r}; loaded: {', '.join(recognizer.heads)}")}}
        return {"worker": worker, "result": result}
    finally:
        path.unlink(missing_ok=True)
