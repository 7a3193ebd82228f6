"""What a job on a queue worker shares through Redis besides Celery's own state: the windows it has done so
far (a list, for `GET /jobs/{id}/windows`) and whether it was cancelled (`DELETE /jobs/{id}`). Both keys
expire with the job's result (JOBS_TTL_S)."""

from __future__ import annotations

import json
import threading

import redis

PREFIX = "action-recognition:job:"
CANCEL_POLL_S = 0.5


def windows_key(job_id: str, part: int | None = None) -> str:
    return f"{PREFIX}{job_id}:windows" + ("" if part is None else f":{part}")


def cancel_key(job_id: str) -> str:
    return f"{PREFIX}{job_id}:cancel"


def read_windows(redis_client: redis.Redis, job_id: str, since: int, parts: int = 0) -> list[dict]:
    """The windows done from `since` on; of a job in `parts` parts, those in order up to the first not done."""
    if not parts:
        return [json.loads(item) for item in redis_client.lrange(windows_key(job_id), since, -1)]
    with redis_client.pipeline() as pipe:
        for part in range(parts):
            pipe.lrange(windows_key(job_id, part), 0, -1)
        done = {window["index"]: window for items in pipe.execute() for window in map(json.loads, items)}
    out = []
    while since + len(out) in done:
        out.append(done[since + len(out)])
    return out


def request_cancel(redis_client: redis.Redis, job_id: str, ttl_s: int) -> None:
    redis_client.set(cancel_key(job_id), "1", ex=ttl_s)


def cancel_requested(redis_client: redis.Redis, job_id: str) -> bool:
    return bool(redis_client.exists(cancel_key(job_id)))


class JobChannel:
    """The worker's side for one job: `window(entry)` appends a finished window (sent in small batches),
    `cancel` is set within CANCEL_POLL_S of a cancel request. Use as a context manager."""

    def __init__(self, redis_client: redis.Redis, job_id: str, ttl_s: int, part: int | None = None):
        self._redis, self._job_id, self._ttl_s, self._part = redis_client, job_id, ttl_s, part
        self.cancel = threading.Event()
        self._pending: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name=f"job-{job_id[:8]}-channel", daemon=True)

    def __enter__(self) -> JobChannel:
        if cancel_requested(self._redis, self._job_id):
            self.cancel.set()
        self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._watcher.join(timeout=5)
        self._flush()

    def window(self, entry: dict) -> None:
        with self._lock:
            self._pending.append(json.dumps(entry))

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            key = windows_key(self._job_id, self._part)
            with self._redis.pipeline() as pipe:
                pipe.rpush(key, *pending).expire(key, self._ttl_s).execute()

    def _watch(self) -> None:
        while not self._stop.wait(CANCEL_POLL_S):
            try:
                self._flush()
                if cancel_requested(self._redis, self._job_id):
                    self.cancel.set()
            except redis.RedisError:
                pass  # Redis away for a moment: the next poll tries again
