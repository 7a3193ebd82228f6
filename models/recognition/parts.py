"""A long video's windows decoded in parts at once (`DECODE_WORKERS`): the same windows, the same frames, the
same logits as one pass over it, only sooner where cores wait for one decoder.

The video is indexed from its packets (`models.video.index_stream`), so its exact length in model frames and
its keyframes are known before decoding. Its windows (`clip_starts`) are dealt out to parts of about PART_S
seconds; each part decodes from the keyframe before its first window to the end of its last one
(`iter_model_frames`: the very frames one pass gives there) and sends its windows to the shared batcher.
Parts run on `workers` threads, each with its own decoder; windows come back in any order and are told to
`on_window` in order. A part is a shorter recognition with an offset: queue workers run parts of a game the
same way (`run_part`).
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.recognition.batching import ClipBatcher, ClipResult
from models.recognition.windows import (Cancelled, ClipRun, ClipSettings, Deadline, ProcessingTimeout, Progress,
                                        Stopped, TimedStream, WindowDone, run_clips)
from models.video import StreamIndex, Timeline, VideoInfo, VideoLimits, clip_starts, index_stream, iter_model_frames

PART_S = 60.0  # seconds of video a part covers, about: many more parts than threads, so that none waits long


@dataclass(frozen=True)
class Part:
    """Windows `starts` (model frames) of a video, decoded from model frame `first` to `end` (exclusive)."""

    index: int
    starts: tuple[int, ...]
    first: int
    end: int


def plan_parts(model_frames: int, clips: ClipSettings, rate: float, part_s: float = PART_S) -> list[Part]:
    """The video's windows, as one pass cuts them, dealt out to parts of about `part_s` seconds (a whole number
    of strides). `rate`: model frames a second."""
    starts = clip_starts(model_frames, clips.clip_len, clips.stride)
    step = max(1, round(part_s * rate / clips.stride)) * clips.stride
    parts: list[Part] = []
    for number in range(math.ceil((starts[-1] + 1) / step) if starts else 0):
        owned = tuple(s for s in starts if number * step <= s < (number + 1) * step)
        if owned:
            parts.append(Part(len(parts), owned, owned[0], min(owned[-1] + clips.clip_len, model_frames)))
    return parts


def default_decode_workers(cores: int | None = None) -> int:
    """Parts decoded at once: none beside the one pass on 2 cores (its decoder already uses both), half the
    cores on more (each part's decoder gets two), at most 8."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(8, cores // 2)) if cores > 2 else 1


def run_part(batcher: ClipBatcher, path: str | Path, index: StreamIndex, clips: ClipSettings, part: Part, *,
             limit: Deadline, on_result: Callable[[int, ClipResult], None], threads: int = 0,
             timeline: Timeline | None = None) -> float:
    """Decode `part` and run its windows through `batcher`, `on_result(start, result)` as each is done (from
    this thread, in order); returns the seconds spent decoding. Stops with Stopped as `limit` says."""
    timeline = timeline if timeline is not None else Timeline()
    frames = iter_model_frames(path, index, part.first, part.end, sampling=clips.sampling, timeline=timeline,
                               threads=threads)
    stream = TimedStream(frames)
    window: deque[np.ndarray] = deque(maxlen=clips.clip_len)
    wanted = deque(part.starts)
    pending: deque[tuple[int, Future]] = deque()
    ahead = 2 * batcher.batch_size
    frame_number = part.first
    try:
        while wanted and (frame := stream.next()) is not None:
            window.append(frame)
            frame_number += 1
            if frame_number == wanted[0] + clips.clip_len:
                limit.left(0)
                pending.append((wanted.popleft(), batcher.submit(np.stack(window))))
                while len(pending) >= ahead:
                    start, future = pending.popleft()
                    on_result(start, limit.wait(future, 0))
        while pending:
            start, future = pending.popleft()
            on_result(start, limit.wait(future, 0))
    finally:
        for _, future in pending:
            future.cancel()
        stream.close()
    return stream.seconds


def run_parts(
    batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
    limits: VideoLimits = VideoLimits(), deadline: float | None = None, cancel: threading.Event | None = None,
    on_window: WindowDone | None = None, workers: int = 2, part_s: float = PART_S,
) -> ClipRun:
    """`run_clips`, with the video's parts decoded on `workers` threads at once. A video that cannot be indexed
    (AVI, broken timestamps) or gives one part runs in one pass."""
    index = index_stream(path)
    if index is not None:
        limits.check_frame_size(index.width, index.height)
        limits.check_length(index.frames, index.fps)
    model_frames = index.model_frames(clips.sampling) if index is not None else 0
    parts = plan_parts(model_frames, clips, clips.sampling.fps or index.fps, part_s) if index is not None else []
    if len(parts) < 2 or model_frames < clips.clip_len:
        return run_clips(batcher, path, clips, on_progress, limits=limits, deadline=deadline, cancel=cancel,
                         on_window=on_window)
    starts = [s for part in parts for s in part.starts]
    frame_s = 1 / (clips.sampling.fps or index.fps)
    timeline = Timeline(frame_s)  # the video's, filled in as parts decode (two parts decode a few frames alike)
    timeline.source_index.extend([0] * model_frames)
    timeline.time_s.extend([0.0] * model_frames)
    results: dict[int, ClipResult] = {}
    told, decode_s = 0, 0.0
    lock = threading.Lock()
    stop = threading.Event()  # set when the caller cancels or a part fails: every part then stops
    limit = Deadline(deadline, stop)
    errors: list[BaseException] = []
    todo = deque(parts)
    threads_each = max(1, (os.cpu_count() or 1) // workers)

    def run_one(part: Part) -> float:
        part_timeline, copied = Timeline(frame_s), 0

        def on_result(start: int, result: ClipResult) -> None:
            nonlocal told, copied
            with lock:
                count = len(part_timeline)
                first = part.first + copied
                timeline.source_index[first : part.first + count] = part_timeline.source_index[copied:count]
                timeline.time_s[first : part.first + count] = part_timeline.time_s[copied:count]
                copied = count
                results[start] = result
                if on_progress:
                    on_progress(len(results), len(starts))
                while told < len(starts) and starts[told] in results:  # in order, however they come back
                    if on_window:
                        s = starts[told]
                        on_window(told, (s, s + clips.clip_len), results[s].logits, timeline)
                    told += 1

        return run_part(batcher, path, index, clips, part, limit=limit, on_result=on_result, threads=threads_each,
                        timeline=part_timeline)

    def work() -> None:
        nonlocal decode_s
        while not stop.is_set():
            with lock:
                if not todo:
                    return
                part = todo.popleft()
            try:
                seconds = run_one(part)
            except BaseException as exc:  # noqa: BLE001 - the first failure stops every part, then is raised
                with lock:
                    errors.append(exc)
                stop.set()
                return
            with lock:
                decode_s += seconds

    def watch_cancel() -> None:
        while not stop.wait(0.05):
            if cancel is not None and cancel.is_set():
                stop.set()

    pool = [threading.Thread(target=work, name=f"decode-part-{i}", daemon=True) for i in range(workers)]
    watcher = threading.Thread(target=watch_cancel, name="decode-parts-cancel", daemon=True)
    for thread in (watcher, *pool):
        thread.start()
    for thread in pool:
        thread.join()
    stop.set()
    watcher.join()
    if errors:
        batcher.give_up(len(starts) - len(results))
        raise _as_caller_sees(errors, cancel, len(results)) from None
    ordered = [results[s] for s in starts]
    if on_progress:
        on_progress(len(starts), len(starts))
    info = VideoInfo(index.frames, index.fps, index.width, index.height, model_frames=model_frames, timeline=timeline)
    return ClipRun(info, [(s, min(s + clips.clip_len, model_frames)) for s in starts],
                   np.stack([r.logits for r in ordered]), np.stack([r.features for r in ordered]), decode_s,
                   sum(r.infer_s for r in ordered))


def _as_caller_sees(errors: list[BaseException], cancel: threading.Event | None, done: int) -> BaseException:
    """What stopped the parts, as one pass would have said it: a part's own failure (a damaged video), the time
    limit, or the caller's cancel."""
    if failure := next((e for e in errors if not isinstance(e, Stopped)), None):
        return failure
    if timeout := next((e for e in errors if isinstance(e, ProcessingTimeout)), None):
        return timeout
    return Cancelled(f"cancelled after {done} clips")
