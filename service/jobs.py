"""Recognition jobs with progress: `POST /jobs` answers 202 at once, `GET /jobs/{id}` tells how far it is.

The executor is one small interface (`JobExecutor`); `InProcessJobs` runs jobs on worker threads from a
bounded queue and forgets finished jobs after a while. With a broker, the queue executor sends them
to queue workers instead, behind the same interface (`service.queue.executor.QueuedJobs`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from service.refusals import Busy, Refused

log = logging.getLogger("service.jobs")


class QueueFullError(Busy):
    """No room for another job: 503, and try again shortly."""

    def __init__(self, why: str):
        super().__init__(f"busy: {why}; try again shortly")


class ExecutorUnavailable(Busy):
    """The executor cannot take or tell jobs right now (its broker is away): 503, and try again."""


@dataclass(kw_only=True)
class JobState:
    """What `GET /jobs/{id}` tells of a job."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"  # queued -> running -> done | failed
    clips_done: int = 0
    clips_total: int | None = None
    result: dict | None = None
    error: dict | None = None
    worker: str | None = None  # the queue worker that ran it (with a broker)

    def public(self) -> dict:
        body = {"id": self.id, "status": self.status,
                "progress": {"clips_done": self.clips_done, "clips_total": self.clips_total}}
        for name in ("result", "error", "worker"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body


@dataclass(kw_only=True)
class Job(JobState):
    video: Path  # the job owns this file and deletes it once run
    filename: str
    top_k: int
    head: str | None
    created: float = field(default_factory=time.time)
    finished: float | None = None


Runner = Callable[[Job, Callable[[int, int], None]], dict]


class JobExecutor(Protocol):
    def submit(self, job: Job) -> None: ...  # QueueFullError, ExecutorUnavailable; any error deletes the job's file
    def get(self, job_id: str) -> JobState | None: ...  # ExecutorUnavailable
    def active(self) -> int: ...  # queued or running
    def close(self) -> None: ...


class InProcessJobs:
    """`workers` threads, a queue of at most `max_queued` jobs, finished jobs kept for `ttl_s` seconds.
    (Jobs running at once share the model: their clips are batched together.)"""

    def __init__(self, run: Runner, *, max_queued: int = 16, ttl_s: float = 3600, workers: int = 1):
        self._run, self._ttl_s = run, ttl_s
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queued)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._work, name=f"recognition-jobs-{i}", daemon=True)
                         for i in range(workers)]
        for worker in self._workers:
            worker.start()

    def submit(self, job: Job) -> None:
        self._expire()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            job.video.unlink(missing_ok=True)
            raise QueueFullError(f"{self._queue.maxsize} jobs are already waiting") from None
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        self._expire()
        with self._lock:
            return self._jobs.get(job_id)

    def queued(self) -> int:
        return self._queue.qsize()

    def active(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return sum(job.status in ("queued", "running") for job in self._jobs.values())

    def close(self) -> None:
        """Stop after the running jobs; jobs still queued are failed and their files deleted."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish(job, error={"status_code": 503, "detail": "the service stopped before this job ran"})
        for worker in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=600)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.status = "running"

            def progress(done: int, total: int, job: Job = job) -> None:
                job.clips_done, job.clips_total = done, total

            try:
                self._finish(job, result=self._run(job, progress))
            except Refused as exc:  # the job's own failure, as a synchronous request would have been answered
                self._finish(job, error=exc.error())
            except Exception:
                log.exception("job failed", extra={"job_id": job.id})
                self._finish(job, error={"status_code": 500, "detail": "internal error while recognizing"})

    def _finish(self, job: Job, *, result: dict | None = None, error: dict | None = None) -> None:
        job.video.unlink(missing_ok=True)
        job.result, job.error = result, error
        job.status = "done" if error is None else "failed"
        job.finished = time.time()

    def _expire(self) -> None:
        cutoff = time.time() - self._ttl_s
        with self._lock:
            for job_id in [j.id for j in self._jobs.values() if j.finished is not None and j.finished < cutoff]:
                del self._jobs[job_id]
