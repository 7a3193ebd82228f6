"""One queued job, or one part of a game, as a worker runs it: the use case (`service.analysis`) and its
refusals turned into the task's result.

Expected failures (not a video, over a limit, too slow) come back as the result `{"error": {status_code,
detail}}`, exactly the error object of an in-process job; anything else fails the task (read as 500).
The upload is deleted once the job has run, whatever the outcome; a worker killed mid-job leaves it for
the worker that runs the job again.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from service.analysis import JOB_HINT, ROUTE_HINT, Analyses, Asked
from service.queue import game
from service.refusals import Misconfigured, Refused
from service.settings import Settings

log = logging.getLogger("workers.task")


def upload_path(settings: Settings, name: str) -> Path:
    """The upload `name` in the shared folder; a name with a path in it is refused."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"not an upload name: {name!r}")
    return settings.job_upload_dir / name


def run_job(analyses: Analyses, *, upload: str, options: dict, worker: str, on_progress, on_window=None,
            cancel: threading.Event | None = None) -> dict:
    """Analyse the upload `upload` as `options` ask (top_k, head, sport, segments, filename, and time_limit_s for
    a synchronous request; a job's grows with its video); returns {"result"} (stored) or {"error"}."""
    path = upload_path(analyses.settings, upload)
    try:
        if not path.is_file():
            raise Misconfigured(f"the upload is not in SHARED_UPLOAD_DIR on worker {worker}: the API and every "
                                "worker must mount the same folder")
        limit_s = options.get("time_limit_s")
        result = analyses.analyse(path, Asked.from_options(options), timeout_s=limit_s,
                                  hint=ROUTE_HINT if limit_s else JOB_HINT, on_progress=on_progress,
                                  on_window=on_window, cancel=cancel)
        return {"worker": worker, "result": result}
    except Refused as exc:
        return {"worker": worker, "error": exc.error()}
    finally:
        path.unlink(missing_ok=True)


def run_part(analyses: Analyses, *, plan: dict, number: int, on_progress, on_window,
             cancel: threading.Event) -> dict | None:
    """Recognize part `number` of a game (`service.queue.game`); None when done, else the part's error object.
    The upload stays: the last part to end deletes it."""
    try:
        game.run_part(analyses.recognizer, analyses.settings, upload_path(analyses.settings, plan["upload"]),
                      plan=plan, number=number, on_progress=on_progress, on_window=on_window, cancel=cancel)
    except Refused as exc:
        return exc.error()
    return None
