"""The API as a gateway (JOBS_BROKER_URL set): it loads no model. Uploads go to SHARED_UPLOAD_DIR, a Celery
task carrying the job id and the upload's name goes to Redis, queue workers (workers/) run it, and job state
lives in Redis (`service.queue`), so any number of API processes answer for any job.

`POST /recognize_action` submits a job and waits for it: same JSON, same error codes as in one process.
A Redis that is away answers 503 with a clear detail; the next request after it returns just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator

import redis
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api.backends.connection import cancelled_on_disconnect, stopped_instead
from api.drain import Drain
from api.services import Services
from api.uploads.resumable.store import UploadStore
from api.uploads.streaming import save_video
from api.uploads.tokens import SignedTokens
from service import metrics
from service.analysis import Analyses, Asked, SegmentSettings
from service.jobs import Job, JobState
from service.library.media import Media
from service.library.store import Library
from service.queue import registry
from service.queue.celery_app import make_celery
from service.queue.executor import BROKER_ERRORS, BrokerUnavailable, QueuedJobs
from service.recognition import KINETICS_HEAD, check_head, check_sport
from service.refusals import CLIENT_GONE, Busy, Refused
from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings

log = logging.getLogger("api.backends.gateway")
POLL_S = 0.2


class GatewayRecognitions:
    def __init__(self, settings: Settings, jobs: QueuedJobs, redis_client: redis.Redis, drain: Drain):
        self.settings, self.jobs, self._redis, self.drain = settings, jobs, redis_client, drain

    def _workers(self) -> dict[str, dict]:
        try:
            return registry.alive(self._redis)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None

    def _served(self) -> dict:
        """What the first live worker announced (every worker runs the same settings)."""
        if not (workers := self._workers()):
            raise Busy("no recognition worker is running yet: start one (make worker)")
        return next(iter(workers.values()))

    def check_head(self, head: str | None) -> None:
        """Refused here when a worker says which heads it serves; with none alive yet, the worker decides."""
        if head is None:
            return
        with contextlib.suppress(BrokerUnavailable):
            if workers := self._workers():
                check_head(next(iter(workers.values()))["model"]["heads"], head)

    def check_sport(self, sport: str | None, head: str | None) -> None:
        """The sport is checked here; whether the head ranks Kinetics-400 labels, once a worker says its default."""
        default, heads = KINETICS_HEAD, None
        with contextlib.suppress(BrokerUnavailable):
            if workers := self._workers():
                model = next(iter(workers.values()))["model"]
                default, heads = model["head"], model["heads"]
        check_sport(sport, head, default, heads)

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
                    503)
        return Health(status="ok" if workers else "no workers", model_loaded=False, broker="ok", workers=workers), 200

    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None,
                        segments: SegmentSettings, sport: str | None) -> dict:
        """Submit a job and wait for it; the time limit counts from arrival, the wait for a worker included."""
        self.check_head(head)
        self.check_sport(sport, head)
        timeout_s = settings.processing_timeout_s
        deadline = time.monotonic() + timeout_s
        upload = await save_video(request, settings.job_upload_dir, settings.upload_limits)
        job = Job(video=upload.path, filename=upload.filename, top_k=top_k or settings.default_top_k, head=head,
                  segments=segments, sport=sport, time_limit_s=timeout_s)
        await run_in_threadpool(self.jobs.submit, job, expires_s=timeout_s)  # QueueFullError, BrokerUnavailable
        state = await self._wait(request, job.id, deadline)
        if state.error is not None:
            raise Refused(state.error["detail"], status_code=state.error["status_code"])
        log.info("recognized", extra={"request_id": request.state.request_id, "bytes": upload.size, "job_id": job.id,
                                      "worker": state.worker, "clips": len(state.result["clips"])})
        return state.result

    async def _wait(self, request: Request, job_id: str, deadline: float) -> JobState:
        """The job once finished; Refused if the client leaves (499), the service stops or the time limit
        passes (503), or Redis goes away (503). A job given up on is revoked if no worker has it yet."""
        cancel, drain = threading.Event(), self.drain
        with self.jobs.waiting(), drain.cancellable(cancel):
            async with cancelled_on_disconnect(request, cancel):
                while True:
                    state = await run_in_threadpool(self.jobs.get, job_id)  # BrokerUnavailable
                    if state is not None and state.status in ("done", "failed"):
                        return state
                    if cancel.is_set() or time.monotonic() > deadline:
                        await run_in_threadpool(self.jobs.revoke, job_id)
                        if cancel.is_set():
                            raise stopped_instead(Refused("the client went away", status_code=CLIENT_GONE), drain)
                        raise Busy(f"not finished within the {self.settings.processing_timeout_s:g} s time limit; "
                                   "try a shorter video, or later")
                    await asyncio.sleep(POLL_S)

    def in_flight(self) -> int:
        return self.jobs.active()


@contextlib.asynccontextmanager
async def serving_gateway(settings: Settings, drain: Drain, uploads: UploadStore,
                          upload_tokens: SignedTokens) -> AsyncIterator[Services]:
    """The gateway's services for as long as the app serves. Redis may be down at start-up: requests say so."""
    settings.job_upload_dir.mkdir(parents=True, exist_ok=True)
    celery, redis_client = make_celery(settings), registry.client(settings.jobs_broker_url)
    library = Library.open(settings)  # results are stored by the workers; listed and searched here
    media = Media.from_settings(settings)  # and their videos kept in MEDIA_DIR, played and cut here
    analyses = Analyses(settings, library, media)  # no model: it looks games up, the workers recognize
    jobs = QueuedJobs(celery, redis_client, lambda: settings.jobs_max_queued, ttl_s=settings.jobs_ttl_s,
                      settings=settings, answered=lambda job: analyses.stored_answer(job.video, Asked.of(job)))
    services = Services(settings=settings, drain=drain, jobs=jobs, library=library, media=media, analyses=analyses,
                        uploads=uploads, upload_tokens=upload_tokens,
                        recognitions=GatewayRecognitions(settings, jobs, redis_client, drain))
    metrics.JOBS_QUEUED.set_function(jobs.queued)  # jobs waiting for a worker, in Redis
    log.info("ready as a gateway", extra={"broker": _safe_url(settings.jobs_broker_url),
                                          "shared_upload_dir": str(settings.job_upload_dir)})
    try:
        yield services
    finally:
        jobs.close()
        library.close()


def _safe_url(url: str) -> str:
    """The broker URL without its password, for logs."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
