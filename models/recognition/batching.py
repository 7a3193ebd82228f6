"""One inference thread shared by every caller: clips from concurrent videos are batched together.

Callers `submit` clips (uint8 frames) and get futures. The worker takes whatever is queued, up to
`batch_size` clips (waiting at most `max_wait_s` for a batch to fill), pads the batch to exactly
`batch_size` so the graph always sees one input shape, and runs I3D once. Trunk passes over long stretches of
frames (`submit_trunk`, for `EXTRACTION=shared`) run one at a time on the same thread. Urgent clips (live windows,
whose viewer is waiting) go before every clip queued without urgency. With `idle_unload_s` set, the model is unloaded
after that long without work and loaded again by the next clip.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from models.runtimes.extractor import Extractor

log = logging.getLogger(__name__)


@dataclass
class ClipResult:
    """What I3D said about one clip, and its share of the batch's compute time."""

    logits: np.ndarray  # (400,)
    features: np.ndarray  # (1024,)
    infer_s: float


@dataclass
class TrunkResult:
    """Mixed_5c averaged over space for a stretch of frames, `positions: (T/8, 1024)`, and its compute time."""

    positions: np.ndarray
    infer_s: float


@dataclass
class _Request:
    frames: np.ndarray  # (T, 224, 224, 3) uint8
    future: Future = field(default_factory=Future)
    trunk: bool = False


@dataclass
class BatcherStats:
    batches: int = 0
    clips: int = 0
    padded: int = 0  # zero clips added to fill batches
    trunks: int = 0  # trunk passes (EXTRACTION=shared)
    cancelled: int = 0  # windows whose recognition gave up on them (client gone, time limit): see `give_up`
    unloads: int = 0


_STOP = object()
_URGENT, _NORMAL, _LAST = 0, 1, 2  # queue order; the stop comes after every clip already queued


class ClipBatcher:
    def __init__(self, extractor: Extractor, batch_size: int = 1, *, max_wait_s: float = 0.02,
                 idle_unload_s: float | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.extractor, self.batch_size = extractor, batch_size
        self.max_wait_s, self.idle_unload_s = max_wait_s, idle_unload_s
        self.stats = BatcherStats()
        self._stats_lock = threading.Lock()  # for the counts callers add (`give_up`)
        self._queue: queue.PriorityQueue = queue.PriorityQueue()  # (order, sequence, request): FIFO within an order
        self._sequence = itertools.count()
        self._thread = threading.Thread(target=self._run, name="i3d-batcher", daemon=True)
        self._thread.start()

    def submit(self, frames: np.ndarray, *, urgent: bool = False) -> Future:
        """Queue one clip, `(T, 224, 224, 3) uint8`; the future gives a ClipResult (or the error). An urgent clip
        goes before the clips queued without urgency. Cancelling the future before its batch starts skips the clip."""
        return self._put(_Request(frames), _URGENT if urgent else _NORMAL)

    def submit_trunk(self, frames: np.ndarray) -> Future:
        """Queue one trunk pass over `(T, 224, 224, 3) uint8` frames, T a multiple of 8; the future gives a
        TrunkResult."""
        return self._put(_Request(frames, trunk=True), _NORMAL)

    def _put(self, request: _Request, order: int) -> Future:
        if not self._thread.is_alive():
            raise RuntimeError("the batcher is closed")
        self._queue.put((order, next(self._sequence), request))
        return request.future

    def give_up(self, windows: int) -> None:
        """Count `windows` of a recognition that stopped (its client went away, its time ran out) before they
        were done: whether never decoded, skipped in the queue or run for nothing, they are in `stats.cancelled`."""
        with self._stats_lock:
            self.stats.cancelled += windows

    def queued(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put((_LAST, next(self._sequence), _STOP))
        self._thread.join()

    def __enter__(self) -> ClipBatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_batch(self) -> list[_Request] | None:
        """Block for the first clip (unloading the model if idle too long), then gather up to a batch."""
        while True:
            try:
                first = self._queue.get(timeout=self.idle_unload_s)[2]
                break
            except queue.Empty:
                if self.extractor.loaded:
                    self.extractor.unload()
                    self.stats.unloads += 1
                    log.info("model unloaded after %.0f s idle", self.idle_unload_s)
        if first is _STOP:
            return None
        batch = [first]
        until = time.monotonic() + self.max_wait_s
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, until - time.monotonic()))[2]
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put((_LAST, next(self._sequence), _STOP))  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [request for request in batch if request.future.set_running_or_notify_cancel()]
            for request in (r for r in live if r.trunk):
                self._infer_trunk(request)
            if clips := [r for r in live if not r.trunk]:
                self._infer(clips)

    def _infer_trunk(self, request: _Request) -> None:
        started = time.perf_counter()
        try:
            positions = self.extractor.trunk_positions(request.frames[None])[0]
        except BaseException as exc:
            request.future.set_exception(exc)
            return
        self.stats.trunks += 1
        request.future.set_result(TrunkResult(positions, time.perf_counter() - started))

    def _infer(self, live: list[_Request]) -> None:
        frames = np.stack([request.frames for request in live])
        padding = self.batch_size - len(live)
        if padding:  # one input shape for every batch: no retracing, no XLA recompiles
            frames = np.concatenate([frames, np.zeros((padding, *frames.shape[1:]), frames.dtype)])
        started = time.perf_counter()
        try:
            outputs = self.extractor(frames)
        except BaseException as exc:  # the callers get the error; the worker keeps serving
            for request in live:
                request.future.set_exception(exc)
            return
        share = (time.perf_counter() - started) / len(live)
        self.stats.batches += 1
        self.stats.clips += len(live)
        self.stats.padded += padding
        for i, request in enumerate(live):
            request.future.set_result(ClipResult(outputs.logits[i], outputs.features[i], share))
