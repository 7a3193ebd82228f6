"""A recognition worker's start-up: `celery -A workers.worker worker --pool=solo --concurrency=1
--prefetch-multiplier=1 -Q recognition` (or `make worker`).

The model is loaded once, in this process, when the worker starts (worker_init), and never in a forked
child: pools other than solo are refused. One worker per GPU: pick it with CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Task, signals

from common.logs import configure_logging
from service.analysis import Analyses
from service.library.media import Media
from service.library.store import Library
from service.queue import registry
from service.queue import game
from service.queue.celery_app import PART_TASK, TASK, make_celery
from service.queue.progress import JobChannel
from service.refusals import JobCancelled, Refused
from service.settings import get_settings
from workers.task import run_job, run_part, upload_path

settings = get_settings()
app = make_celery(settings)
log = logging.getLogger("workers.worker")
_serving: dict = {}  # the analyses (with the model), Redis and the heartbeat, from start-up to shutdown


@app.task(name=TASK, bind=True)
def recognize(self: Task, job_id: str, upload: str, options: dict) -> dict:
    hostname, started = self.request.hostname, time.time()

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"clips_done": done, "clips_total": total, "worker": hostname,
                                                  "started": started})

    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    log.info("job started", extra={"job_id": job_id, "redelivered": redelivered})
    with JobChannel(_serving["redis"], job_id, settings.jobs_ttl_s) as channel:  # windows out, a cancel in
        answer = run_job(_serving["analyses"], upload=upload, options=options, worker=hostname,
                         on_progress=progress, on_window=channel.window, cancel=channel.cancel)
    log.info("job finished", extra={"job_id": job_id, "error": answer.get("error")})
    return answer


@app.task(name=PART_TASK, bind=True)
def recognize_part(self: Task, job_id: str, number: int) -> dict:
    """Part `number` of a game; the worker that ends its last part puts the job's result together."""
    hostname, started = self.request.hostname, time.time()
    client = _serving["redis"]
    plan = game.read_plan(client, job_id)
    if plan is None:  # expired: nothing to do, and nobody to tell
        return {"worker": hostname, "error": Refused("the job's plan expired").error()}
    total, done_so_far = len(plan["parts"][number]["starts"]), [0]

    def progress(done: int, _total: int) -> None:
        done_so_far[0] = done
        self.update_state(state="PROGRESS", meta={"clips_done": done, "clips_total": total, "worker": hostname,
                                                  "started": started})

    log.info("part started", extra={"job_id": job_id, "part": number})
    with JobChannel(client, job_id, settings.jobs_ttl_s, part=number) as channel:
        error = run_part(_serving["analyses"], plan=plan, number=number, on_progress=progress,
                         on_window=channel.window, cancel=channel.cancel)
    _end_part(job_id, number, plan, error, hostname)
    log.info("part finished", extra={"job_id": job_id, "part": number, "error": error})
    return {"worker": hostname, "clips_done": done_so_far[0], "clips_total": total, "started": started,
            **({"error": error} if error else {})}


def _end_part(job_id: str, number: int, plan: dict, error: dict | None, hostname: str) -> None:
    """Count the part as ended; the last one merges the parts into the job's answer and deletes the files."""
    client, ttl_s = _serving["redis"], int(settings.jobs_ttl_s)
    if game.finish_part(client, job_id, number, len(plan["parts"]), ttl_s, error):
        analyses = _serving["analyses"]
        try:
            answer = {"result": game.merge(analyses.recognizer, client, job_id, plan,
                                           upload_path(settings, plan["upload"]), ttl_s=ttl_s, analyses=analyses)}
        except Refused as exc:
            answer = {"error": exc.error()}
        app.backend.store_result(job_id, {**answer, "worker": hostname}, "SUCCESS")
        log.info("game merged", extra={"job_id": job_id, "parts": len(plan["parts"]), "error": answer.get("error")})


@signals.setup_logging.connect
def _logging(**_) -> None:  # JSON lines like the API's, instead of Celery's own set-up
    configure_logging(settings.log_level)


@signals.worker_init.connect
def _load_model(sender, **_) -> None:
    pool = getattr(sender, "pool_cls", None)
    if "solo" not in f"{getattr(pool, '__module__', '')}{pool}":
        raise SystemExit(f"recognition workers run with --pool=solo (got {pool!r}): the model is loaded once in this "
                         "process, and TensorFlow must not start before a fork")
    from service.model import open_recognizer  # TensorFlow/OpenVINO start here, in this process only

    recognizer = open_recognizer(settings)
    settings.job_upload_dir.mkdir(parents=True, exist_ok=True)
    recognizer.warm_up(settings.job_upload_dir)
    # the library's schema up to date before the first job
    _serving["analyses"] = Analyses(settings, Library.open(settings), Media.from_settings(settings), recognizer)
    _serving["redis"] = registry.client(settings.jobs_broker_url)
    log.info("model loaded", extra={"runtime": recognizer.extractor.runtime, "device": recognizer.extractor.device,
                                    "precision": recognizer.extractor.precision, "pid": os.getpid()})


@signals.worker_ready.connect
def _announce(sender, **_) -> None:
    from service.model import describe

    recognizer = _serving["analyses"].recognizer
    _serving["heartbeat"] = registry.Heartbeat(
        _serving["redis"], sender.hostname,
        lambda: {"model": describe(recognizer).model_dump(), "labels": list(recognizer.head.labels), "pid": os.getpid()},
    ).start()


@signals.worker_shutdown.connect
def _unload(**_) -> None:
    if heartbeat := _serving.pop("heartbeat", None):
        heartbeat.stop()
    if analyses := _serving.pop("analyses", None):
        analyses.library.close()
        analyses.recognizer.close()
        analyses.recognizer.extractor.close()


@signals.task_revoked.connect
def _drop_upload(request=None, **_) -> None:
    """A job revoked before it ran (its synchronous caller left or gave up, or it was cancelled): its upload goes
    too; a part of a game ends as cancelled, and the last part to end deletes the upload."""
    args, name = getattr(request, "args", None) or (), getattr(request, "name", None) or getattr(request, "task", None)
    if name == PART_TASK and len(args) >= 2 and (plan := game.read_plan(_serving["redis"], args[0])) is not None:
        _end_part(args[0], int(args[1]), plan, JobCancelled().error(), getattr(request, "hostname", None) or "")
    elif len(args) >= 2 and isinstance(args[1], str):
        upload_path(settings, args[1]).unlink(missing_ok=True)
