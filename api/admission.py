"""Admission of synchronous recognitions: a few run at once, the others wait their turn in a bounded line.

A request is refused (503 with Retry-After) only when the line is full, or when the wait it would face,
estimated from the clips ahead of it and the clips/s measured on this machine, is past its time limit.
Everything here runs on the event loop, so plain counters are safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from api.middleware.metrics import ADMISSION_WAIT, ESTIMATED_WAIT, WAITING
from service.refusals import Busy

TYPICAL_CLIPS = 8.0  # clips assumed for a request whose video is not read yet, until requests say otherwise


@dataclass(eq=False)
class Ticket:
    """One admitted request: the clips it still has to run (an estimate until its video is read)."""

    arrived: float = field(default_factory=time.monotonic)
    clips_left: float = TYPICAL_CLIPS
    running: bool = False

    def progress(self, done: int, total: int) -> None:  # called from the recognition's thread: a float store
        self.clips_left = max(0, total - done)


class ClipRate:
    """Clips/s measured on recognitions (clips over their inference time), smoothed."""

    def __init__(self, smoothing: float = 0.3):
        self.smoothing = smoothing
        self.clips_per_s: float | None = None
        self.clips_per_request: float = TYPICAL_CLIPS

    def record(self, clips: int, inference_s: float) -> None:
        if clips <= 0 or inference_s <= 0:
            return
        rate = clips / inference_s
        self.clips_per_s = rate if self.clips_per_s is None else (
            self.smoothing * rate + (1 - self.smoothing) * self.clips_per_s)
        self.clips_per_request = self.smoothing * clips + (1 - self.smoothing) * self.clips_per_request


class Admission:
    """`admit()` a request (or raise Busy), then `turn(ticket)` waits for one of the running slots, first come
    first served. Limits are read on each call (`running()`, `waiting()`), so settings can change live."""

    def __init__(self, *, running, waiting, fallback_retry_after_s, rate: ClipRate | None = None):
        self._max_running, self._max_waiting, self._fallback = running, waiting, fallback_retry_after_s
        self.rate = rate or ClipRate()
        self._tickets: set[Ticket] = set()
        self._line: deque[tuple[Ticket, asyncio.Future]] = deque()
        self._running = 0
        WAITING.set_function(self.waiting)
        ESTIMATED_WAIT.set_function(lambda: self.estimated_wait_s() or 0.0)

    def in_flight(self) -> int:
        """Requests admitted and not yet answered: uploading, waiting or running."""
        return len(self._tickets)

    def waiting(self) -> int:
        return sum(not ticket.running for ticket in self._tickets)

    def estimated_wait_s(self) -> float | None:
        """Seconds until the work already admitted is done, or None before any clips/s was measured."""
        if not self.rate.clips_per_s:
            return None
        return sum(ticket.clips_left for ticket in self._tickets) / self.rate.clips_per_s

    def _retry_after(self, seconds: float | None) -> int:
        return self._fallback() if seconds is None else max(1, math.ceil(seconds))

    @contextlib.asynccontextmanager
    async def admit(self, timeout_s: float) -> AsyncIterator[Ticket]:
        """A ticket for a new request, held until the block ends; Busy when the line is full or too long."""
        if len(self._tickets) >= self._max_running() + self._max_waiting():
            soonest = min((t.clips_left for t in self._tickets if t.running), default=self.rate.clips_per_request)
            seconds = soonest / self.rate.clips_per_s if self.rate.clips_per_s else None
            raise Busy(f"busy: {self.waiting()} recognitions are waiting, the most this service queues; "
                       "try again shortly", retry_after_s=self._retry_after(seconds))
        wait = self.estimated_wait_s()
        if wait is not None and wait > timeout_s:
            raise Busy(f"busy: the recognitions ahead would take about {wait:.0f} s, past the {timeout_s:g} s time "
                       "limit; try again later", retry_after_s=self._retry_after(wait - timeout_s))
        ticket = Ticket(clips_left=self.rate.clips_per_request)
        self._tickets.add(ticket)
        try:
            yield ticket
        finally:
            self._tickets.discard(ticket)
            if ticket.running:
                self._running -= 1
                self._wake()

    async def turn(self, ticket: Ticket, deadline: float) -> None:
        """Wait for a running slot (FIFO) until `deadline` (monotonic); TimeoutError past it."""
        if self._running < self._max_running() and not self._line:
            self._start(ticket)
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (ticket, waiter)
        self._line.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            if entry in self._line:
                self._line.remove(entry)
            elif ticket.running:  # got the slot just as it gave up: the ticket's release hands it on
                pass
            raise

    def _start(self, ticket: Ticket) -> None:
        self._running += 1
        ticket.running = True
        ADMISSION_WAIT.observe(time.monotonic() - ticket.arrived)

    def _wake(self) -> None:
        while self._line and self._running < self._max_running():
            ticket, waiter = self._line.popleft()
            if not waiter.done():
                self._start(ticket)
                waiter.set_result(None)
