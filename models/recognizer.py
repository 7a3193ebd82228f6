"""Video file -> ranked actions for the whole video and for each clip. Shared by the API and the CLI."""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.batching import ClipBatcher, ClipResult
from models.extractor import Extractor
from models.heads import KineticsHead, VideoHead
from models.labels import kinetics_labels, softmax, top_k
from models.video import VideoInfo, VideoLimits, clip_starts, iter_clips, write_grey_ramp

CLIP_TOP_K = 3


@dataclass(frozen=True)
class ClipSettings:
    clip_len: int = 64
    stride: int = 32
    batch_size: int = 1


class ProcessingTimeout(RuntimeError):
    """A recognition ran past its time limit."""


@dataclass
class ClipRun:
    """Everything I3D said about one video: `logits: (N, 400)`, `features: (N, 1024)`, clip spans in frames."""

    info: VideoInfo
    spans: list[tuple[int, int]]
    logits: np.ndarray
    features: np.ndarray
    decode_s: float
    infer_s: float


Progress = Callable[[int, int], None]  # (clips done, clips expected in all)


def run_clips(
    batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
    limits: VideoLimits = VideoLimits(), deadline: float | None = None,
) -> ClipRun:
    """Decode `path` clip by clip and run I3D on each clip through `batcher`. Raises VideoDecodeError
    for a non-video.

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
    decode_s = 0.0

    def remaining() -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProcessingTimeout(f"processing took longer than the limit, after {len(results)} clips")
        return left

    def finish_one() -> None:
        span, future = pending.popleft()
        try:
            results.append(future.result(timeout=remaining()))
        except FutureTimeout:
            raise ProcessingTimeout(f"processing took longer than the limit, after {len(results)} clips") from None
        spans.append(span)
        if on_progress:
            expected = len(clip_starts(info.frames, clips.clip_len, clips.stride))
            on_progress(len(spans), max(expected, len(spans) + len(pending)))

    stream = iter_clips(path, clip_len=clips.clip_len, stride=clips.stride, info=info, limits=limits)
    try:
        while True:
            remaining()
            started = time.perf_counter()
            clip = next(stream, None)
            decode_s += time.perf_counter() - started
            if clip is None:
                break
            pending.append(((clip.start_frame, clip.end_frame), batcher.submit(clip.frames)))
            while len(pending) >= ahead:
                finish_one()
        while pending:
            finish_one()
    finally:
        for _, future in pending:  # an error or the time limit: skip what has not started
            future.cancel()
        stream.close()
    if on_progress:
        on_progress(len(spans), len(spans))
    return ClipRun(info, spans, np.stack([r.logits for r in results]), np.stack([r.features for r in results]),
                   decode_s, sum(r.infer_s for r in results))


class UnknownHeadError(KeyError):
    """A request named a head that is not loaded."""


class ActionRecognizer:
    """One loaded extractor and its heads; `recognize(path)` returns the API's JSON-ready result.

    The Kinetics-400 head is always there; a trained head, if given, is the default. `recognize` is
    safe to call from many threads at once: their clips share one batcher. `close()` stops it.
    """

    def __init__(self, extractor: Extractor, *, head: VideoHead | None = None, clips: ClipSettings = ClipSettings(),
                 limits: VideoLimits = VideoLimits(), idle_unload_s: float | None = None, batch_wait_s: float = 0.02):
        self.extractor = extractor
        self.batcher = ClipBatcher(extractor, clips.batch_size, max_wait_s=batch_wait_s, idle_unload_s=idle_unload_s)
        self.limits = limits
        kinetics = KineticsHead()
        self.heads: dict[str, VideoHead] = {kinetics.name: kinetics}
        if head is not None:
            if head.name in self.heads:
                raise ValueError(f"a trained head cannot be named {head.name!r}")
            self.heads[head.name] = head
        self.head = head or kinetics
        self.clips = clips

    def recognize(
        self,
        path: str | Path,
        *,
        top_k_actions: int = 5,
        filename: str | None = None,
        head: str | None = None,
        on_progress: Progress | None = None,
        deadline: float | None = None,
    ) -> dict:
        """Rank the actions of the video at `path` with `head` (default: the trained head if any).

        Raises VideoDecodeError for a non-video, VideoLimitError past the limits, ProcessingTimeout past
        `deadline` (a `time.monotonic()` value), UnknownHeadError for a head that is not loaded.
        """
        if head is not None and head not in self.heads:
            raise UnknownHeadError(head)
        ranking_head = self.heads[head] if head else self.head
        started = time.perf_counter()
        run = run_clips(self.batcher, path, self.clips, on_progress, limits=self.limits, deadline=deadline)
        video_probs = ranking_head.video_probabilities(run.logits, run.features)
        clip_probs = softmax(run.logits)
        info = run.info
        kinetics = kinetics_labels()
        return {
            "actions": top_k(video_probs, ranking_head.labels, top_k_actions),
            "head": ranking_head.name,
            "clips": [
                {
                    "index": i,
                    "start_s": round(start / info.fps, 3),
                    "end_s": round(end / info.fps, 3),
                    "start_frame": start,
                    "end_frame": end,
                    "actions": top_k(probs, kinetics, CLIP_TOP_K),
                }
                for i, ((start, end), probs) in enumerate(zip(run.spans, clip_probs))
            ],
            "video": {
                "filename": filename if filename is not None else Path(path).name,
                "frames": info.frames,
                "fps": round(info.fps, 3),
                "duration_s": round(info.duration_s, 3),
                "width": info.width,
                "height": info.height,
            },
            "timings_ms": {
                "decode": round(run.decode_s * 1000, 1),
                "inference": round(run.infer_s * 1000, 1),
                "total": round((time.perf_counter() - started) * 1000, 1),
            },
        }

    def warm_up(self, scratch_dir: Path) -> None:
        """Run the whole path once (decoder, batcher, I3D, every head) on a one-clip video written to
        `scratch_dir` and deleted, so that the first request is no slower than later ones."""
        handle, name = tempfile.mkstemp(prefix=".warm-up-", suffix=".avi", dir=scratch_dir)
        os.close(handle)
        try:
            run = run_clips(self.batcher, write_grey_ramp(Path(name), self.clips.clip_len), self.clips)
            for head in self.heads.values():
                head.video_probabilities(run.logits, run.features)
        finally:
            Path(name).unlink(missing_ok=True)

    def close(self) -> None:
        self.batcher.close()
