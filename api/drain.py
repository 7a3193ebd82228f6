"""Graceful stop. On the first SIGTERM or SIGINT the API keeps its port open but takes no new work: new
recognitions and jobs get 503 with Retry-After (so a load balancer or the page sends them elsewhere or
later), and `/health` says "stopping". What was admitted goes on for at most DRAIN_TIMEOUT_S; then, or at
a second signal, the work still running is cancelled and answers 503. `api/serve.py` drives this.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from fastapi import HTTPException, status


class Drain:
    def __init__(self, timeout_s: Callable[[], float]):
        self.timeout_s = timeout_s
        self.since: float | None = None  # monotonic time of the first signal
        self.stopping = False  # set once the work still running is being cancelled
        self._cancels: set[threading.Event] = set()
        self._lock = threading.Lock()

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def overdue(self) -> bool:
        return self.since is not None and time.monotonic() - self.since >= self.timeout_s()

    def stop_work(self) -> None:
        """Cancel everything still running (its clips not yet on the model are skipped)."""
        self.begin()
        with self._lock:
            self.stopping = True
            for cancel in self._cancels:
                cancel.set()

    @contextlib.contextmanager
    def cancellable(self, cancel: threading.Event) -> Iterator[threading.Event]:
        """Register `cancel` (set by `stop_work`) for the block; set at once when the work is already stopping."""
        with self._lock:
            if self.stopping:
                cancel.set()
            self._cancels.add(cancel)
        try:
            yield cancel
        finally:
            with self._lock:
                self._cancels.discard(cancel)

    def refuse_new_work(self, retry_after_s: int) -> None:
        """503 while draining: a route dependency calls this before reading the body."""
        if self.draining:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                "the service is stopping and takes no new work; send it again in a moment",
                                headers={"Retry-After": str(retry_after_s), "Connection": "close"})

