"""Which workers are alive and what model they serve: each worker refreshes one short-lived Redis key.

The gateway reads it for /health (how many workers), /model and /labels (it loads no model itself) and to
refuse an unknown head before queueing. A worker that dies simply stops refreshing its key.
"""

from __future__ import annotations

import json
import logging
import threading

import redis

PREFIX = "action-recognition:worker:"
EVERY_S = 5
TTL_S = 3 * EVERY_S

log = logging.getLogger("service.queue.registry")


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)


def alive(redis_client: redis.Redis) -> dict[str, dict]:
    """hostname -> what that worker announced ({"model": ModelInfo fields, "labels": [...]}), by name."""
    keys = sorted(redis_client.scan_iter(match=PREFIX + "*", count=100))
    values = redis_client.mget(keys) if keys else []
    return {key.decode()[len(PREFIX):]: json.loads(value) for key, value in zip(keys, values) if value}


class Heartbeat:
    """Announce `describe()` under `hostname` every EVERY_S seconds until `stop()`; a Redis that is away is
    retried at the next beat."""

    def __init__(self, redis_client: redis.Redis, hostname: str, describe):
        self._redis, self._key, self._describe = redis_client, PREFIX + hostname, describe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _beat(self) -> None:
        while True:
            try:
                self._redis.set(self._key, json.dumps(self._describe()), ex=TTL_S)
            except redis.RedisError as exc:
                log.warning("could not announce this worker", extra={"error": str(exc)})
            if self._stop.wait(EVERY_S):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._redis.delete(self._key)
        except redis.RedisError:
            pass
