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
from models.video import Clip, VideoInfo, iter_clips

CLIP_TOP_K = 3


@dataclass(frozen=True)
class ClipSettings:
    clip_len: int = 64
    stride: int = 32
    batch_size: int = 4


def batched(items: Iterable[Clip], size: int) -> Iterator[list[Clip]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class ActionRecognizer:
    """One loaded extractor and head; `recognize(path)` returns the API's JSON-ready result."""

    def __init__(self, extractor: I3DExtractor, *, head: VideoHead | None = None, clips: ClipSettings = ClipSettings()):
        self.extractor = extractor
        self.head = head or KineticsHead()
        self.clips = clips

    def recognize(
        self,
        path: str | Path,
        *,
        top_k_actions: int = 5,
        filename: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> dict:
        """Decode `path` clip by clip, run I3D in batches, rank. Raises VideoDecodeError for a non-video."""
        started = time.perf_counter()
        info = VideoInfo(0, 0.0, 0, 0)
        spans: list[tuple[int, int]] = []
        logits, features = [], []
        decode_s = infer_s = 0.0
        clip_stream = iter_clips(path, clip_len=self.clips.clip_len, stride=self.clips.stride, info=info)
        batches = batched(clip_stream, self.clips.batch_size)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            decode_s += t1 - t0
            if batch is None:
                break
            outputs = self.extractor(np.stack([clip.frames for clip in batch]))
            infer_s += time.perf_counter() - t1
            spans.extend((clip.start_frame, clip.end_frame) for clip in batch)
            logits.append(outputs.logits)
            features.append(outputs.features)
            if on_progress:
                on_progress(len(spans))
        clip_logits, clip_features = np.concatenate(logits), np.concatenate(features)
        video_probs = self.head.video_probabilities(clip_logits, clip_features)
        clip_probs = softmax(clip_logits)
        kinetics = kinetics_labels()
        return {
            "actions": top_k(video_probs, self.head.labels, top_k_actions),
            "head": self.head.name,
            "clips": [
                {
                    "index": i,
                    "start_s": round(start / info.fps, 3),
                    "end_s": round(end / info.fps, 3),
                    "start_frame": start,
                    "end_frame": end,
                    "actions": top_k(probs, kinetics, CLIP_TOP_K),
                }
                for i, ((start, end), probs) in enumerate(zip(spans, clip_probs))
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
                "decode": round(decode_s * 1000, 1),
                "inference": round(infer_s * 1000, 1),
                "total": round((time.perf_counter() - started) * 1000, 1),
            },
        }
