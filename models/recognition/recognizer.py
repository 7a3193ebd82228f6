"""Video file -> ranked actions for the whole video and for each clip. Shared by the API and the CLI."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.labels import KINETICS, kinetics_labels, logits_vocabulary, softmax, top_k
from models.recognition.batching import ClipBatcher
from models import sports
from models.recognition.heads import KineticsHead, SportHead, VideoHead
from models.recognition.parts import run_parts
from models.recognition.segments import SegmentSettings, find_segments
from models.recognition.shared_trunk import run_shared
from models.recognition.windows import (Cancelled, ClipRun, ClipSettings, ProcessingTimeout, Progress, WindowDone,
                                        run_clips)
from models.runtimes.extractor import Extractor
from models.sports import UnknownSportError
from models.video import TEST_TIME_VIEWS, Timeline, VideoLimits, write_grey_ramp

__all__ = ["ActionRecognizer", "Cancelled", "ClipRun", "ClipSettings", "ProcessingTimeout", "Progress",
           "UnknownHeadError", "run_clips", "run_video"]

CLIP_TOP_K = 3


def run_video(batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
              limits: VideoLimits = VideoLimits(), deadline: float | None = None,
              cancel: threading.Event | None = None, on_window: WindowDone | None = None) -> ClipRun:
    """I3D's logits and features for every window of `path`, computed as `clips.extraction` says, each told to
    `on_window` once done. Stops with ProcessingTimeout past `deadline`, Cancelled once `cancel` is set."""
    if clips.tta:
        return run_views(batcher, path, clips, on_progress, limits=limits, deadline=deadline, cancel=cancel,
                         on_window=on_window)
    if clips.extraction == "shared":
        return run_shared(batcher, path, clips, on_progress, limits=limits, deadline=deadline, cancel=cancel,
                          on_window=on_window)
    if clips.decode_workers > 1 and clips.view.plain:  # parts seek in the source; a view is decoded in one pass
        return run_parts(batcher, path, clips, on_progress, limits=limits, deadline=deadline, cancel=cancel,
                         on_window=on_window, workers=clips.decode_workers)
    return run_clips(batcher, path, clips, on_progress, limits=limits, deadline=deadline, cancel=cancel,
                     on_window=on_window)


def run_views(batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
              limits: VideoLimits = VideoLimits(), deadline: float | None = None,
              cancel: threading.Event | None = None, on_window: WindowDone | None = None) -> ClipRun:
    """Test-time views: the video run through each of `TEST_TIME_VIEWS` (the same windows), every window's
    logits and features averaged over them; windows are told to `on_window` once all views are done."""
    runs: list[ClipRun] = []
    count = len(TEST_TIME_VIEWS)
    for number, view in enumerate(TEST_TIME_VIEWS):
        progress = (lambda done, total, number=number: on_progress(number * total + done, count * total)) \
            if on_progress else None
        runs.append(run_video(batcher, path, dataclasses.replace(clips, tta=False, view=view), progress,
                              limits=limits, deadline=deadline, cancel=cancel))
    first, windows = runs[0], min(len(run.spans) for run in runs)
    logits = np.mean([run.logits[:windows] for run in runs], axis=0)
    features = np.mean([run.features[:windows] for run in runs], axis=0)
    if on_window:
        for index, span in enumerate(first.spans[:windows]):
            on_window(index, span, logits[index], first.info.timeline)
    return ClipRun(first.info, first.spans[:windows], logits, features, sum(run.decode_s for run in runs),
                   sum(run.infer_s for run in runs))


def window_entry(index: int, span: tuple[int, int], logits: np.ndarray, timeline: Timeline,
                 labels: tuple[str, ...] | None = None) -> dict:
    """One window of a result: where it is in the source (frames and seconds) and its top actions by the logits'
    `labels` (Kinetics-400's by default; a fine-tuned I3D's own)."""
    start_frame, end_frame, start_s, end_s = timeline.span(*span)
    return {"index": index, "start_s": round(start_s, 3), "end_s": round(end_s, 3), "start_frame": start_frame,
            "end_frame": end_frame, "actions": top_k(softmax(logits), labels or kinetics_labels(), CLIP_TOP_K)}


class UnknownHeadError(KeyError):
    """A request named a head that is not loaded."""


class ActionRecognizer:
    """One loaded extractor and its heads; `recognize(path)` returns the API's JSON-ready result.

    The logits' head (Kinetics-400, or a fine-tuned I3D's own labels) is always there; a trained head, if given, is
    the default. `recognize` is safe to call from many threads at once: their clips share one batcher. `close()`
    stops it.
    """

    def __init__(self, extractor: Extractor, *, head: VideoHead | None = None, clips: ClipSettings = ClipSettings(),
                 limits: VideoLimits = VideoLimits(), idle_unload_s: float | None = None, batch_wait_s: float = 0.02):
        self.extractor = extractor
        self.batcher = ClipBatcher(extractor, clips.batch_size, max_wait_s=batch_wait_s, idle_unload_s=idle_unload_s)
        self.limits = limits
        logits_head = KineticsHead(*logits_vocabulary(extractor.handle))
        self.heads: dict[str, VideoHead] = {logits_head.name: logits_head}
        if head is not None:
            if head.name in self.heads:
                raise ValueError(f"the trained head and the I3D's own ranking are both named {head.name!r}: give one "
                                 "another name (python -m models train --name, or finetune --name)")
            self.heads[head.name] = head
        self.head = head or logits_head
        self.logits_labels = logits_head.labels
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
        cancel: threading.Event | None = None,
        on_window: Callable[[dict], None] | None = None,
        segments: SegmentSettings = SegmentSettings(),
        sport: str | None = None,
    ) -> dict:
        """Rank the actions of the video at `path` with `head` (default: the trained head if any).

        Raises VideoDecodeError for a non-video, VideoLimitError past the limits, ProcessingTimeout past
        `deadline` (a `time.monotonic()` value), Cancelled once `cancel` is set (its clips not yet run are
        skipped), UnknownHeadError for a head that is not loaded.
        """
        self.ranking_head(head, sport)  # a head or sport that cannot be is refused before any work
        started = time.perf_counter()
        told = (lambda *window: on_window(window_entry(*window, self.logits_labels))) if on_window else None
        run = run_video(self.batcher, path, self.clips, on_progress, limits=self.limits, deadline=deadline,
                        cancel=cancel, on_window=told)
        return self.result(run, head=head, top_k_actions=top_k_actions,
                           filename=filename if filename is not None else Path(path).name,
                           total_s=time.perf_counter() - started, segments=segments, sport=sport)

    def ranking_head(self, head: str | None, sport: str | None = None) -> VideoHead:
        """`head` (default: the trained head if any), narrowed to `sport`'s labels if given; UnknownHeadError for
        a head that is not loaded, UnknownSportError for a sport that is not known or a head with its own labels."""
        if head is not None and head not in self.heads:
            raise UnknownHeadError(head)
        chosen = self.heads[head] if head else self.head
        if sport is None:
            return chosen
        if chosen.name != KINETICS:
            raise UnknownSportError(f"a sport narrows the Kinetics-400 labels, and the head {chosen.name!r} has its "
                                    + ("own: ask with head=kinetics400" if KINETICS in self.heads
                                       else "own (this I3D is fine-tuned): serve the base I3D for sports"))
        return SportHead(sports.sport(sport))

    def result(self, run: ClipRun, *, head: str | None, top_k_actions: int, filename: str, total_s: float,
               segments: SegmentSettings = SegmentSettings(), sport: str | None = None) -> dict:
        """The API's JSON for a video's windows: ranked by `head` (narrowed to `sport`) for the whole video, its
        segments (the moments of each action), each window's top actions, the video, the timings. A game
        recognized in parts on several workers is put together here too."""
        ranking_head, info = self.ranking_head(head, sport), run.info
        video_probs = ranking_head.video_probabilities(run.logits, run.features)
        clips = [window_entry(i, span, logits, info.timeline, self.logits_labels)
                 for i, (span, logits) in enumerate(zip(run.spans, run.logits))]
        return {
            "actions": top_k(video_probs, ranking_head.labels, top_k_actions),
            "head": ranking_head.name,
            "sport": sport,
            "segments": find_segments(ranking_head.window_probabilities(run.logits, run.features),
                                      [clip["start_s"] for clip in clips], [clip["end_s"] for clip in clips],
                                      ranking_head.labels, segments),
            "clips": clips,
            "video": {
                "filename": filename,
                "frames": info.frames,
                "fps": round(info.fps, 3),
                "duration_s": round(info.duration_s, 3),
                "width": info.width,
                "height": info.height,
            },
            "timings_ms": {
                "decode": round(run.decode_s * 1000, 1),
                "inference": round(run.infer_s * 1000, 1),
                "total": round(total_s * 1000, 1),
            },
        }

    def warm_up(self, scratch_dir: Path) -> ClipRun:
        """Run the whole path once (decoder, batcher, I3D, every head) on a one-clip video written to
        `scratch_dir` and deleted, so that the first request is no slower than later ones; returns its run."""
        handle, name = tempfile.mkstemp(prefix=".warm-up-", suffix=".avi", dir=scratch_dir)
        os.close(handle)
        try:
            run = run_video(self.batcher, write_grey_ramp(Path(name), self.clips.clip_len), self.clips)
            for head in self.heads.values():
                head.video_probabilities(run.logits, run.features)
                head.window_probabilities(run.logits, run.features)
        finally:
            Path(name).unlink(missing_ok=True)
        return run

    def close(self) -> None:
        self.batcher.close()
