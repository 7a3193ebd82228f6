"""Video file -> ranked actions for the whole video and for each clip. Shared by the API and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from models.extractor import I3DExtractor
from models.heads import KineticsHead, VideoHead
from models.labels import kinetics_labels, softmax, top_k
from models.video import Clip, VideoInfo, VideoLimits, clip_starts, iter_clips

CLIP_TOP_K = 3


@dataclass(frozen=True)
class ClipSettings:
    clip_len: int = 64
    stride: int = 32
    batch_size: int = 1


def batched(items: Iterable[Clip], size: int) -> Iterator[list[Clip]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


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
    extractor: I3DExtractor, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
    limits: VideoLimits = VideoLimits(), deadline: float | None = None,
) -> ClipRun:
    """Decode `path` clip by clip and run I3D on batches of clips. Raises VideoDecodeError for a non-video.

    `on_progress(done, total)` is called after each batch; `total` comes from the container's frame
    count until decoding ends, then it is exact.
    """
    info = VideoInfo(0, 0.0, 0, 0)
    spans: list[tuple[int, int]] = []
    logits, features = [], []
    decode_s = infer_s = 0.0
    clip_stream = iter_clips(path, clip_len=clips.clip_len, stride=clips.stride, info=info, limits=limits)
    batches = batched(clip_stream, clips.batch_size)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise ProcessingTimeout(f"processing took longer than the limit, after {len(spans)} clips")
        t0 = time.perf_counter()
        batch = next(batches, None)
        t1 = time.perf_counter()
        decode_s += t1 - t0
        if batch is None:
            if on_progress:
                on_progress(len(spans), len(spans))
            break
        outputs = extractor(np.stack([clip.frames for clip in batch]))
        infer_s += time.perf_counter() - t1
        spans.extend((clip.start_frame, clip.end_frame) for clip in batch)
        logits.append(outputs.logits)
        features.append(outputs.features)
        if on_progress:
            expected = len(clip_starts(info.frames, clips.clip_len, clips.stride))
            on_progress(len(spans), max(expected, len(spans)))
    return ClipRun(info, spans, np.concatenate(logits), np.concatenate(features), decode_s, infer_s)


class UnknownHeadError(KeyError):
    """A request named a head that is not loaded."""


class ActionRecognizer:
    """One loaded extractor and its heads; `recognize(path)` returns the API's JSON-ready result.

    The Kinetics-400 head is always there; a trained head, if given, is the default.
    """

    def __init__(self, extractor: I3DExtractor, *, head: VideoHead | None = None, clips: ClipSettings = ClipSettings(),
                 limits: VideoLimits = VideoLimits()):
        self.extractor = extractor
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
        run = run_clips(self.extractor, path, self.clips, on_progress, limits=self.limits, deadline=deadline)
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
