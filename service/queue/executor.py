"""The job executor over Celery and Redis: jobs go to queue workers (workers/), their state is read back from
Redis, so any number of API processes answer for any job."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from service.jobs import ExecutorUnavailable, Job, JobState, QueueFullError
from service.queue import game, progress
from service.queue.celery_app import PART_TASK, QUEUE, TASK
from service.refusals import INTERNAL_ERROR, Busy, JobCancelled
from service.settings import Settings

BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)


class BrokerUnavailable(ExecutorUnavailable):
    def __init__(self, exc: BaseException):
        super().__init__(f"the job broker (Redis) is not reachable: {exc}; try again shortly")


class QueuedJobs:
    """JobExecutor over Celery: `submit` queues (503 past JOBS_MAX_QUEUED waiting), `get` reads Redis.

    A job is written as QUEUED before its task is sent, so an id Redis has never seen, or whose result has
    expired (JOBS_TTL_S), is unknown (404) rather than Celery's everlasting PENDING."""

    def __init__(self, celery: Celery, redis_client: redis.Redis, max_queued, *, ttl_s: int = 3600,
                 settings: Settings | None = None, answered: Callable[[Job], dict | None] | None = None):
        self._celery, self._redis, self._max_queued, self._ttl_s = celery, redis_client, max_queued, ttl_s
        self._settings = settings  # with them, a job on a video longer than JOB_PART_S runs in parts
        self._answered = answered  # a game's stored answer (the library), looked up before it is cut into parts
        self._waiting = 0  # synchronous requests of this process waiting for their job (the drain waits for them)
        self._lock = threading.Lock()

    def submit(self, job: Job, *, expires_s: float | None = None) -> None:
        try:
            waiting = self._redis.llen(QUEUE)
            if waiting >= self._max_queued():
                raise QueueFullError(f"{waiting} jobs are already waiting for a worker")
            planned = (game.plan_job(self._settings, job.video)
                       if self._settings is not None and job.time_limit_s is None else None)
            if planned is not None and self._answered is not None and (found := self._answered(job)) is not None:
                self._celery.backend.store_result(job.id, {"result": found, "worker": "library"}, "SUCCESS")
                return  # a worker asked for one video looks it up itself; a game's parts would not
            self._celery.backend.store_result(job.id, {"clips_done": 0, "clips_total": None}, "QUEUED")
            options = {"top_k": job.top_k, "head": job.head, "filename": job.filename, "time_limit_s": job.time_limit_s,
                       "segments": dataclasses.asdict(job.segments), "sport": job.sport}
            if planned is None:
                self._celery.send_task(TASK, args=[job.id, job.video.name, options], task_id=job.id, queue=QUEUE,
                                       expires=expires_s)
                return
            index, parts = planned
            settings = self._settings
            game.save_index(job.video, index)
            game.store_plan(self._redis, job.id, upload=job.video.name, index=index, parts=parts,
                            ttl_s=int(settings.redeliver_after_s + settings.jobs_ttl_s), options={
                                **options, "sampling": settings.sampling.fps, "clip_length": settings.clip_length,
                                "clip_stride": settings.clip_stride})
            for part in parts:
                self._celery.send_task(PART_TASK, args=[job.id, part.index], task_id=game.part_task_id(job.id, part.index),
                                       queue=QUEUE)
        except QueueFullError:
            job.video.unlink(missing_ok=True)
            raise
        except BROKER_ERRORS as exc:
            job.video.unlink(missing_ok=True)
            game.index_file(job.video).unlink(missing_ok=True)
            raise BrokerUnavailable(exc) from None

    def get(self, job_id: str) -> JobState | None:
        try:
            meta = self._celery.backend.get_task_meta(job_id)
            cancelled = meta["status"] != "PENDING" and progress.cancel_requested(self._redis, job_id)
            plan = game.read_plan(self._redis, job_id) if meta["status"] != "PENDING" else None
            if plan is None:
                return _job_state(job_id, meta["status"], meta.get("result"), cancelled=cancelled)
            metas = [self._celery.backend.get_task_meta(game.part_task_id(job_id, number))
                     for number in range(len(plan["parts"]))]
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None
        answer = meta.get("result") if meta["status"] == "SUCCESS" and isinstance(meta.get("result"), dict) else None
        return game.job_state(job_id, plan, metas, answer, cancelled)

    def windows(self, job_id: str, since: int) -> list[dict] | None:
        state = self.get(job_id)
        if state is None:
            return None
        try:
            return progress.read_windows(self._redis, job_id, since, parts=len(state.parts or ()))
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None

    def cancel(self, job_id: str) -> JobState | None:
        """Cancelled at once while it waits (a worker skips it, deleting its upload); a running job's worker
        sees the request within a second and stops at its next window."""
        state = self.get(job_id)
        if state is None or state.status not in ("queued", "running"):
            return state
        try:
            progress.request_cancel(self._redis, job_id, self._ttl_s)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(exc) from None
        self.revoke(job_id)
        for number in range(len(state.parts or ())):  # a part not started is skipped; a running one sees the request
            self.revoke(game.part_task_id(job_id, number))
        return self.get(job_id)

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


def _job_state(job_id: str, state: str, info, *, cancelled: bool = False) -> JobState | None:
    info = info if isinstance(info, dict) else {}
    running = {"clips_done": info.get("clips_done", 0), "clips_total": info.get("clips_total"),
               "started": info.get("started"), "worker": info.get("worker") or info.get("hostname")}
    if state == "PENDING":
        return None  # never written: unknown, or expired
    if state == "SUCCESS" and "result" in info:
        clips = len(info["result"]["clips"])
        return JobState(id=job_id, status="done", clips_done=clips, clips_total=clips, result=info["result"],
                        worker=info.get("worker"))
    if cancelled:  # asked to stop and not done: cancelled, whether a worker still winds it down or not
        return JobState(id=job_id, status="cancelled", error=JobCancelled().error(), **running)
    if state in ("QUEUED", "RETRY"):
        return JobState(id=job_id, status="queued")
    if state in ("STARTED", "PROGRESS"):
        return JobState(id=job_id, status="running", **running)
    if state == "SUCCESS" and "error" in info:
        return JobState(id=job_id, status="failed", error=info["error"], worker=info.get("worker"))
    if state == "REVOKED":
        return JobState(id=job_id, status="failed", error=Busy("no worker took this job before its time limit").error())
    return JobState(id=job_id, status="failed", error=INTERNAL_ERROR.error())
