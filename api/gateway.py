"""The API as a gateway (JOBS_BROKER_URL set): it loads no model. Uploads go to SHARED_UPLOAD_DIR, a Celery
task carrying the job id and the upload's name goes to Redis, queue workers (workers/) run it, and job state
lives in Redis, so any number of API processes answer for any job.

`POST /recognize_action` submits a job and waits for it: same JSON, same error codes as in one process.
A Redis that is away answers 503 with a clear detail; the next request after it returns just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

import redis
from celery import Celery
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from kombu.exceptions import OperationalError

from api import metrics
from api.jobs import ExecutorUnavailable, Job, JobState, QueueFullError
from api.schemas import Health, Labels, ModelInfo
from api.service import (
    CLIENT_GONE, RecognitionRefused, cancelled_on_disconnect, check_head, save_video, stopped_instead,
)
from api.settings import Settings
from workers import registry
from workers.celery_app import QUEUE, TASK, make_celery

log = logging.getLogger("api.gateway")
BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)
POLL_S = 0.2


class BrokerUnavailable(ExecutorUnavailable):
    def __init__(self, exc: BaseException):
        super().__init__(f"the job broker (Redis) is not reachable: {exc}; try again shortly")


class QueuedJobs:
    """JobExecutor over Celery: `submit` queues (503 past JOBS_MAX_QUEUED waiting), `get` reads Redis.

    A job is written as QUEUED before its task is sent, so an id Redis has never seen, or whose result has
    expired (JOBS_TTL_S), is unknown (404) rather than Celery's everlasting PENDING."""

    def __init__(self, celery: Celery, redis_client: redis.Redis, max_queued):
        self._celery, self._redis, self._max_queued = celery, redis_client, max_queued
        self._waiting = 0  # synchronous requests of this process waiting for their job (the drain waits for them)
        self._lock = threading.Lock()

    def submit(self, job: Job, *, expires_s: float | None = None) -> None:
        try:
            waiting = self._redis.llen(QUEUE)
            if waiting >= self._max_queued():
                raise QueueFullError(f"{waiting} jobs are already waiting for a worker")
            self._celery.backend.store_result(job.id, {"clips_done": 0, "clips_total": None}, "QUEUED")
            options = {"top_k": job.top_k, "head": job.head, "filename": job.filename}
            self._celery.send_task(TASK, args=[job.id, job.video.name, options], task_id=job.id, queue=QUEUE,
                                   expires=expires_s)
        except QueueFullError:
            job.video.unlink(missing_ok=True)
            raise
        except BROKER_ERRORS as exc:
            job.video.unlink(missing_ok=True)
            raise BrokerUnavailable(exc) from None

    def get(self, job_id: str) -> JobState | None:
        try:
            meta = self._celery.backend.get_task_meta(job_id)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None
        return _job_state(job_id, meta["status"], meta.get("result"))

    def revoke(self, job_id: str) -> None:
        """Skip the job if no worker has started it (its upload is deleted by the worker that skips it)."""
        with contextlib.suppress(*BROKER_ERRORS):
            self._celery.control.revoke(job_id)

    def queued(self) -> float:
        try:
            return float(self._redis.llen(QUEUE))
        except BROKER_ERRORS:
            return float("nan")

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        with self._lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1

    def active(self) -> int:
        """Synchronous requests waiting here; queued jobs live in Redis and outlive this process."""
        return self._waiting

    def close(self) -> None:
        self._celery.close()
        self._redis.close()


def _job_state(job_id: str, state: str, info) -> JobState | None:
    info = info if isinstance(info, dict) else {}
    progress = {"clips_done": info.get("clips_done", 0), "clips_total": info.get("clips_total"),
                "worker": info.get("worker") or info.get("hostname")}
    if state == "PENDING":
        return None  # never written: unknown, or expired
    if state in ("QUEUED", "RETRY"):
        return JobState(id=job_id, status="queued")
    if state in ("STARTED", "PROGRESS"):
        return JobState(id=job_id, status="running", **progress)
    if state == "SUCCESS" and "result" in info:
        clips = len(info["result"]["clips"])
        return JobState(id=job_id, status="done", clips_done=clips, clips_total=clips, result=info["result"],
                        worker=info.get("worker"))
    if state == "SUCCESS" and "error" in info:
        return JobState(id=job_id, status="failed", error=info["error"], worker=info.get("worker"))
    if state == "REVOKED":
        return JobState(id=job_id, status="failed", error={
            "status_code": 503, "detail": "no worker took this job before its time limit"})
    return JobState(id=job_id, status="failed", error={"status_code": 500, "detail": "internal error while recognizing"})


class GatewayRecognitions:
    def __init__(self, app: FastAPI, settings: Settings, jobs: QueuedJobs, redis_client: redis.Redis):
        self.app, self.settings, self.jobs, self._redis = app, settings, jobs, redis_client

    def _workers(self) -> dict[str, dict]:
        try:
            return registry.alive(self._redis)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None

    def _served(self) -> dict:
        """What the first live worker announced (every worker runs the same settings)."""
        try:
            workers = self._workers()
        except BrokerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        if not workers:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                "no recognition worker is running yet: start one (make worker)")
        return next(iter(workers.values()))

    def check_head(self, head: str | None) -> None:
        """Refused here when a worker says which heads it serves; with none alive yet, the worker decides."""
        if head is None:
            return
        with contextlib.suppress(BrokerUnavailable):
            if workers := self._workers():
                check_head(next(iter(workers.values()))["model"]["heads"], head)

    def model(self) -> ModelInfo:
        return ModelInfo(**self._served()["model"])

    def labels(self) -> Labels:
        served = self._served()
        return Labels(head=served["model"]["head"], labels=served["labels"])

    def health(self) -> tuple[Health, int]:
        try:
            workers = len(self._workers())
        except BrokerUnavailable:
            return (Health(status="broker unreachable", model_loaded=False, broker="unreachable", workers=0),
                    status.HTTP_503_SERVICE_UNAVAILABLE)
        return (Health(status="ok" if workers else "no workers", model_loaded=False, broker="ok", workers=workers),
                status.HTTP_200_OK)

    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None) -> dict:
        """Submit a job and wait for it; the time limit counts from arrival, the wait for a worker included."""
        self.check_head(head)
        timeout_s = settings.processing_timeout_s
        deadline = time.monotonic() + timeout_s
        upload = await save_video(request, settings.job_upload_dir, settings.upload_limits)
        job = Job(video=upload.path, filename=upload.filename, top_k=top_k or settings.default_top_k, head=head)
        retry_after = {"Retry-After": str(settings.retry_after_s)}
        try:
            await run_in_threadpool(self.jobs.submit, job, expires_s=timeout_s)
        except QueueFullError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"busy: {exc}; try again shortly",
                                headers=retry_after) from None
        except BrokerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers=retry_after) from None
        try:
            state = await self._wait(request, job.id, deadline)
        except RecognitionRefused as exc:
            raise HTTPException(exc.status_code, exc.detail, headers=retry_after if exc.status_code == 503 else None)
        if state.error is not None:
            code = state.error["status_code"]
            raise HTTPException(code, state.error["detail"], headers=retry_after if code == 503 else None)
        log.info("recognized", extra={"request_id": request.state.request_id, "bytes": upload.size, "job_id": job.id,
                                      "worker": state.worker, "clips": len(state.result["clips"])})
        return state.result

    async def _wait(self, request: Request, job_id: str, deadline: float) -> JobState:
        """The job once finished; RecognitionRefused if the client leaves (499), the service stops or the time
        limit passes (503), or Redis goes away (503). A job given up on is revoked if no worker has it yet."""
        cancel, drain = threading.Event(), self.app.state.drain
        with self.jobs.waiting(), drain.cancellable(cancel):
            async with cancelled_on_disconnect(request, cancel):
                while True:
                    try:
                        state = await run_in_threadpool(self.jobs.get, job_id)
                    except BrokerUnavailable as exc:
                        raise RecognitionRefused(503, str(exc)) from None
                    if state is not None and state.status in ("done", "failed"):
                        return state
                    if cancel.is_set() or time.monotonic() > deadline:
                        await run_in_threadpool(self.jobs.revoke, job_id)
                        if cancel.is_set():
                            raise stopped_instead(RecognitionRefused(CLIENT_GONE, "the client went away"), drain)
                        raise RecognitionRefused(503, f"not finished within the {self.settings.processing_timeout_s:g} s "
                                                      "time limit; try a shorter video, or later")
                    await asyncio.sleep(POLL_S)

    def in_flight(self) -> int:
        return self.jobs.active()


@contextlib.asynccontextmanager
async def serving_gateway(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The gateway's state for as long as the app serves. Redis may be down at start-up: requests say so."""
    settings.job_upload_dir.mkdir(parents=True, exist_ok=True)
    celery, redis_client = make_celery(settings), registry.client(settings.jobs_broker_url)
    jobs = QueuedJobs(celery, redis_client, lambda: settings.jobs_max_queued)
    app.state.jobs = jobs
    app.state.recognitions = GatewayRecognitions(app, settings, jobs, redis_client)
    metrics.JOBS_QUEUED.set_function(jobs.queued)  # jobs waiting for a worker, in Redis
    log.info("ready as a gateway", extra={"broker": _safe_url(settings.jobs_broker_url),
                                          "shared_upload_dir": str(settings.job_upload_dir)})
    try:
        yield
    finally:
        jobs.close()


def _safe_url(url: str) -> str:
    """The broker URL without its password, for logs."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
