"""Windows run clip by clip (`EXTRACTION=windows`, the default): each 64-frame window is its own I3D pass."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.recognition.batching import ClipBatcher, ClipResult
from models.video import PLAIN_VIEW, Sampling, Timeline, VideoInfo, VideoLimits, View, clip_starts, frames_id, iter_clips


@dataclass(frozen=True)
class ClipSettings:
    """How a video becomes windows: `clip_len` frames every `stride` of the frames `sampling` keeps (25 a second
    by default). `extraction` "shared" pools them from one trunk pass (`models.recognition.shared_trunk`),
    in chunks of `chunk_frames` with `context` frames each side, re-running clip by clip the windows whose
    top-1 probability is under `recompute_below`."""

    clip_len: int = 64
    stride: int = 32
    batch_size: int = 1
    extraction: str = "windows"
    chunk_frames: int = 384
    context: int = 64
    recompute_below: float = 0.0
    sampling: Sampling = Sampling()
    decode_workers: int = 1  # parts of a long video decoded at once (`models.recognition.parts`); same windows
    view: View = PLAIN_VIEW  # training's other views of a video (`models.video.View`); serving sees the plain one
    tta: bool = False  # rank from the average of the test-time views (three crops, mirrored and not): 6x the work

    @property
    def extraction_id(self) -> str:
        """How features are computed, beyond clip length and stride: "windows", "shared", or
        "shared:recompute<0.5". In the feature cache key and a trained head's config, so a head never sees
        features prepared differently from its training. (Chunk size and context do not change them.)"""
        if self.extraction == "windows":
            return "windows"
        return f"shared:recompute<{self.recompute_below:g}" if self.recompute_below > 0 else "shared"

    @property
    def frames_id(self) -> str:
        """How frames are decoded and sampled, e.g. "pyav-swscale/25fps": in the feature cache key and a trained
        head's config too, for the same reason."""
        return frames_id(self.sampling)

    @classmethod
    def for_extraction(cls, extraction_id: str, **settings) -> ClipSettings:
        """The settings whose `extraction_id` is `extraction_id` (a trained head's), with `settings` besides."""
        mode, _, recompute = extraction_id.partition(":recompute<")
        return cls(extraction=mode, recompute_below=float(recompute or 0), **settings)


class Stopped(RuntimeError):
    """A recognition stopped before its end; the runner counts its windows not done with `ClipBatcher.give_up`."""


class ProcessingTimeout(Stopped):
    """A recognition ran past its time limit."""


class Cancelled(Stopped):
    """The caller gave up on a recognition (its client went away)."""


@dataclass(frozen=True)
class Deadline:
    """A `time.monotonic()` limit (None: none) and a cancel event (None: none) for waiting on the batcher.
    On either, the runner stops and cancels its clips that have not started."""

    at: float | None = None
    cancel: threading.Event | None = None

    def left(self, done: int) -> float | None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"cancelled after {done} clips")
        if self.at is None:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise ProcessingTimeout(f"processing took longer than the limit, after {done} clips")
        return left

    def wait(self, future: Future, done: int):
        while True:
            left = self.left(done)
            try:  # in slices, so that a cancel is seen within a fraction of a second
                return future.result(timeout=_CANCEL_POLL_S if left is None else min(left, _CANCEL_POLL_S))
            except FutureTimeout:
                continue


_CANCEL_POLL_S = 0.1


class TimedStream:
    """`next()` of a decoding iterator (None at its end), with the seconds spent in it summed in `seconds`."""

    def __init__(self, stream):
        self.stream, self.seconds = stream, 0.0

    def next(self):
        started = time.perf_counter()
        try:
            return next(self.stream, None)
        finally:
            self.seconds += time.perf_counter() - started

    def close(self) -> None:
        self.stream.close()


@dataclass
class ClipRun:
    """Everything I3D said about one video: `logits: (N, 400)`, `features: (N, 1024)`, clip spans in the frames
    the model saw (`info.timeline` maps them to source frames and seconds)."""

    info: VideoInfo
    spans: list[tuple[int, int]]
    logits: np.ndarray
    features: np.ndarray
    decode_s: float
    infer_s: float


Progress = Callable[[int, int], None]  # (clips done, clips expected in all)
# (index, span in model frames, logits (400,), the video's timeline so far), window by window in order
WindowDone = Callable[[int, tuple[int, int], np.ndarray, Timeline], None]


def run_clips(
    batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
    limits: VideoLimits = VideoLimits(), deadline: float | None = None, cancel: threading.Event | None = None,
    on_window: WindowDone | None = None,
) -> ClipRun:
    """Decode `path` clip by clip and run I3D on each clip through `batcher`, telling `on_window` of each
    window as it is done. Raises VideoDecodeError for a non-video.

    Decoding runs ahead of inference by up to two batches, so the next clips are decoded and
    preprocessed while the current ones are in I3D, and at most that many decoded clips are held.
    `on_progress(done, total)` is called as clips finish; `total` comes from the container's frame
    count until decoding ends, then it is exact.
    """
    info = VideoInfo(0, 0.0, 0, 0)
    spans: list[tuple[int, int]] = []
    results: list[ClipResult] = []
    pending: deque[tuple[tuple[int, int], Future]] = deque()
    ahead = 2 * batcher.batch_size
    limit = Deadline(deadline, cancel)

    def finish_one() -> None:
        span, future = pending[0]
        results.append(limit.wait(future, len(results)))
        spans.append(span)
        pending.popleft()
        if on_window:
            on_window(len(spans) - 1, span, results[-1].logits, info.timeline)
        if on_progress:
            expected = len(clip_starts(info.model_frames, clips.clip_len, clips.stride))
            on_progress(len(spans), max(expected, len(spans) + len(pending)))

    stream = TimedStream(iter_clips(path, clip_len=clips.clip_len, stride=clips.stride, info=info, limits=limits,
                                    sampling=clips.sampling, view=clips.view))
    try:
        while (clip := stream.next()) is not None:
            limit.left(len(results))  # after the first clip is decoded, so that a stop knows the video's length
            pending.append(((clip.start_frame, clip.end_frame), batcher.submit(clip.frames)))
            while len(pending) >= ahead:
                finish_one()
        while pending:
            finish_one()
    except Stopped:
        expected = len(clip_starts(info.model_frames, clips.clip_len, clips.stride))
        batcher.give_up(max(expected, len(results) + len(pending)) - len(results))
        raise
    finally:
        for _, future in pending:  # stopped, or an error: skip what has not started
            future.cancel()
        stream.close()
    if on_progress:
        on_progress(len(spans), len(spans))
    return ClipRun(info, spans, np.stack([r.logits for r in results]), np.stack([r.features for r in results]),
                   stream.seconds, sum(r.infer_s for r in results))
