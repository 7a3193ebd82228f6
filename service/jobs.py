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

from models.recognition.segments import SegmentSettings
from service.refusals import INTERNAL_ERROR, Busy, JobCancelled, Refused

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
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    clips_done: int = 0
    clips_total: int | None = None
    started: float | None = None  # time.time() when it began to run
    result: dict | None = None
    error: dict | None = None
    worker: str | None = None  # the queue worker that ran it (with a broker)
    parts: list[dict] | None = None  # a game on several queue workers: each part's span, worker and state

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (None until a window is done, and once it has ended)."""
        if self.status != "running" or not self.started or not self.clips_done or not self.clips_total:
            return None
        elapsed = time.time() - self.started
        return round(elapsed / self.clips_done * max(0, self.clips_total - self.clips_done), 1)

    def public(self) -> dict:
        body = {"id": self.id, "status": self.status,
                "progress": {"clips_done": self.clips_done, "clips_total": self.clips_total, "eta_s": self.eta_s}}
        for name in ("result", "error", "worker", "parts"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body


@dataclass(kw_only=True)
class Job(JobState):
    video: Path  # the job owns this file and deletes it once run
    filename: str
    top_k: int
    head: str | None
    segments: SegmentSettings = field(default_factory=SegmentSettings)  # how its moments are found
    sport: str | None = None  # narrows the Kinetics-400 labels to one sport's
    time_limit_s: float | None = None  # a synchronous request's; None: a job's, which grows with its video
    created: float = field(default_factory=time.time)
    finished: float | None = None
    windows: list[dict] = field(default_factory=list)  # the windows done so far, in order
    cancel: threading.Event = field(default_factory=threading.Event)  # stops it: DELETE /jobs/{id}, or a stopping service
    cancelled: bool = False  # DELETE /jobs/{id} asked for it

    def progress(self, done: int, total: int) -> None:
        self.clips_done, self.clips_total = done, total


Runner = Callable[[Job], dict]  # runs the job (its `progress`, `windows` and `cancel` included); Refused on failure


class JobExecutor(Protocol):
    def submit(self, job: Job) -> None: ...  # QueueFullError, ExecutorUnavailable; any error deletes the job's file
    def get(self, job_id: str) -> JobState | None: ...  # ExecutorUnavailable
    def windows(self, job_id: str, since: int) -> list[dict] | None: ...  # windows done from `since`; None: no job
    def cancel(self, job_id: str) -> JobState | None: ...  # cancelled now if queued, within a second if running
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

    def windows(self, job_id: str, since: int) -> list[dict] | None:
        job = self.get(job_id)
        return None if job is None else job.windows[since:]

    def cancel(self, job_id: str) -> Job | None:
        """A queued job ends now (its file deleted); a running one stops at its next window or decoded clip."""
        job = self.get(job_id)
        with self._lock:  # against a worker thread taking it up at this moment
            if job is None or job.status not in ("queued", "running"):
                return job
            job.cancelled = True
            job.cancel.set()
            waiting, job.status = job.status == "queued", "cancelled"
        if waiting:
            self._finish(job, cancelled=True)
        return job

    def queued(self) -> int:
        return self._queue.qsize()

    def active(self) -> int:
        """Jobs queued or running (a cancelled one until it has stopped)."""
        with self._lock:
            return sum(job.finished is None for job in self._jobs.values())

    def close(self) -> None:
        """Stop after the running jobs; jobs still queued are failed and their files deleted."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish(job, error=Busy("the service stopped before this job ran").error())
        for worker in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=600)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if job.cancelled:  # cancelled while it waited: finished there
                    continue
                job.status, job.started = "running", time.time()
            try:
                result = self._run(job)
                self._finish(job, result=result, cancelled=job.cancelled)  # cancelled as it ended: cancelled
            except Refused as exc:  # the job's own failure, as a synchronous request would have been answered
                self._finish(job, error=exc.error(), cancelled=job.cancelled)
            except Exception:
                log.exception("job failed", extra={"job_id": job.id})
                self._finish(job, error=INTERNAL_ERROR.error())

    def _finish(self, job: Job, *, result: dict | None = None, error: dict | None = None,
                cancelled: bool = False) -> None:
        job.video.unlink(missing_ok=True)
        if cancelled:
            job.status, job.error = "cancelled", JobCancelled().error()
        else:
            job.result, job.error = result, error
            job.status = "done" if error is None else "failed"
        job.finished = time.time()

    def _expire(self) -> None:
        cutoff = time.time() - self._ttl_s
        with self._lock:
            for job_id in [j.id for j in self._jobs.values() if j.finished is not None and j.finished < cutoff]:
                del self._jobs[job_id]
