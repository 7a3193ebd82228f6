"""Overlapping windows computed once (`EXTRACTION=shared`): I3D's trunk runs over long stretches of frames,
and each 64-frame window is pooled from the shared temporal feature map.

I3D is convolutional in time up to Mixed_5c, whose positions are 8 frames apart. A window of `clip_len`
frames starting at frame `s` (a multiple of 8) covers positions `s/8 .. s/8 + clip_len/8 - 1`. The
network's own head then applies: a 2x7x7 VALID average pool and the mean over time (so each position is
weighted 2, its first and last 1, over `2 * (positions - 1)`), then the logits layer. It is not
bit-identical to running the window alone: window edges see real neighbouring frames instead of SAME's
zero padding.

Long videos run in chunks: `chunk_frames` kept, `context` more frames each side computed and dropped, so
memory is flat in the video's length. Every length fed to the trunk is a multiple of 8 (the end is padded
by repeating the last frame), or SAME padding would shift every position by a frame. A window that does
not start on a multiple of 8 (the last one, ending at the last frame) and a video shorter than one window
run clip by clip, as `windows` runs them. With `recompute_below`, windows whose shared top-1 probability
is under it are run again clip by clip (their frames are still at hand when they are pooled).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.i3d.trunk import TRUNK_STRIDE, pool_windows
from models.recognition.batching import ClipBatcher, ClipResult
from models.recognition.windows import ClipRun, ClipSettings, Deadline, Progress, Stopped, TimedStream, WindowDone
from models.video import VideoInfo, VideoLimits, clip_starts, iter_frames, loop_to_length

EXTRACTIONS = ("windows", "shared")


@dataclass(frozen=True)
class Chunk:
    """Trunk input frames [start, end) (end may pass the video's last frame: repeat-padded); positions for
    frames [keep_start, keep_end) are kept. All multiples of 8."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def check_shared_slicing(clip_len: int, stride: int, chunk_frames: int, context: int) -> None:
    """Raise ValueError for settings that windows cannot be pooled from."""
    for name, value in (("clip_len", clip_len), ("stride", stride), ("chunk_frames", chunk_frames), ("context", context)):
        if value <= 0 or value % TRUNK_STRIDE:
            raise ValueError(f"EXTRACTION=shared needs {name} to be a positive multiple of {TRUNK_STRIDE}, got {value}")
    if clip_len < 2 * TRUNK_STRIDE:
        raise ValueError(f"EXTRACTION=shared needs clip_len of at least {2 * TRUNK_STRIDE}")
    if context < clip_len:
        raise ValueError(f"EXTRACTION=shared needs context ({context}) of at least clip_len ({clip_len})")


def round_up(frames: int) -> int:
    return -(-frames // TRUNK_STRIDE) * TRUNK_STRIDE


def chunk_at(keep_start: int, *, chunk_frames: int, context: int, video_frames: int | None) -> Chunk:
    """The chunk keeping [keep_start, keep_start + chunk_frames); `video_frames` None: the video goes on past it."""
    keep_end = keep_start + chunk_frames
    end = keep_end + context
    if video_frames is not None:
        keep_end = min(keep_end, round_up(video_frames))
        end = min(end, round_up(video_frames))
    return Chunk(max(0, keep_start - context), end, keep_start, keep_end)


def pad_to_stride(frames: np.ndarray, length: int) -> np.ndarray:
    """`frames: (T, H, W, 3)` -> `(length, H, W, 3)`, the last frame repeated (length >= T)."""
    missing = length - len(frames)
    if missing <= 0:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], missing, axis=0)])


def top1_probability(logits: np.ndarray) -> np.ndarray:
    """`(N, C)` logits -> `(N,)` softmax probability of each row's top class."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return 1.0 / np.exp(shifted).sum(axis=-1)


@dataclass
class _PendingChunk:
    chunk: Chunk
    frames: np.ndarray  # (chunk.end - chunk.start, 224, 224, 3) uint8, repeat-padded at the video's end
    future: Future


def run_shared(
    batcher: ClipBatcher, path: str | Path, clips: ClipSettings, on_progress: Progress | None = None, *,
    limits: VideoLimits = VideoLimits(), deadline: float | None = None, cancel: threading.Event | None = None,
    on_window: WindowDone | None = None,
) -> ClipRun:
    """`run_clips`'s result for `path`, its windows pooled from shared trunk passes (see the module's doc).

    Decoding runs one chunk ahead of the trunk: the next chunk is decoded while the current one runs.
    """
    check_shared_slicing(clips.clip_len, clips.stride, clips.chunk_frames, clips.context)
    kernel, bias = batcher.extractor.logits_weights()
    info = VideoInfo(0, 0.0, 0, 0)
    limit = Deadline(deadline, cancel)
    positions: list[np.ndarray] = []  # (n, 1024) blocks, in order from position 0
    windows: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # start frame -> (logits, features)
    infer_s = 0.0
    pending: _PendingChunk | None = None
    done_decoding = False

    def expected_windows() -> int:
        return len(clip_starts(info.model_frames, clips.clip_len, clips.stride))

    def finish(job: _PendingChunk) -> None:
        """Keep the chunk's positions, pool every window they complete, re-run the unsure ones clip by clip."""
        nonlocal infer_s
        trunk = limit.wait(job.future, len(windows))
        infer_s += trunk.infer_s
        first = (job.chunk.keep_start - job.chunk.start) // TRUNK_STRIDE
        positions.append(trunk.positions[first : first + (job.chunk.keep_end - job.chunk.keep_start) // TRUNK_STRIDE])
        known = sum(len(block) for block in positions) * TRUNK_STRIDE
        last = min(known, info.model_frames) if done_decoding else known  # `known` may run into the end's padding
        starts = list(range(len(windows) * clips.stride, last - clips.clip_len + 1, clips.stride))
        if starts:
            logits, features = pool_windows(np.concatenate(positions), starts, clips.clip_len, kernel, bias)
            unsure = [i for i, p in enumerate(top1_probability(logits)) if p < clips.recompute_below]
            rerun = {i: batcher.submit(job.frames[starts[i] - job.chunk.start :][: clips.clip_len]) for i in unsure}
            try:
                for i, future in rerun.items():
                    result = limit.wait(future, len(windows))
                    logits[i], features[i] = result.logits, result.features
                    infer_s += result.infer_s
            finally:
                for future in rerun.values():  # stopped, or an error: skip what has not started
                    future.cancel()
            for i, s in enumerate(starts):
                windows[s] = (logits[i], features[i])
                if on_window:
                    on_window(len(windows) - 1, (s, s + clips.clip_len), logits[i], info.timeline)
        if on_progress:
            on_progress(len(windows), max(expected_windows(), len(windows)))

    def run_one(frames: np.ndarray) -> ClipResult:
        future = batcher.submit(frames)
        try:
            return limit.wait(future, len(windows))
        finally:
            future.cancel()

    def submit(chunk: Chunk, buffer: list[np.ndarray], buffer_start: int) -> None:
        nonlocal pending
        frames = pad_to_stride(np.stack(buffer[chunk.start - buffer_start : chunk.end - buffer_start]),
                               chunk.end - chunk.start)
        if pending is not None:  # the trunk is idle only while the last chunk's windows are pooled
            finish(pending)
        pending = _PendingChunk(chunk, frames, batcher.submit_trunk(frames))

    buffer: list[np.ndarray] = []
    buffer_start = keep_start = 0
    stream = TimedStream(iter_frames(path, info=info, limits=limits, sampling=clips.sampling, view=clips.view))
    try:
        while (frame := stream.next()) is not None:
            limit.left(len(windows))  # after the first frame is decoded, so that a stop knows the video's length
            buffer.append(frame)
            chunk = chunk_at(keep_start, chunk_frames=clips.chunk_frames, context=clips.context, video_frames=None)
            if buffer_start + len(buffer) == chunk.end:  # this chunk's frames and right context are decoded
                submit(chunk, buffer, buffer_start)
                keep_start = chunk.keep_end
                drop = max(0, keep_start - clips.context) - buffer_start
                del buffer[:drop]
                buffer_start += drop
        done_decoding = True
        count = info.model_frames
        if count < clips.clip_len:  # shorter than one window: looped, as `windows` runs it
            result = run_one(loop_to_length(buffer, clips.clip_len))
            windows[0] = (result.logits, result.features)
            if on_window:
                on_window(0, (0, count), result.logits, info.timeline)
            infer_s += result.infer_s
        else:
            while keep_start < count:
                chunk = chunk_at(keep_start, chunk_frames=clips.chunk_frames, context=clips.context, video_frames=count)
                submit(chunk, buffer, buffer_start)
                keep_start = chunk.keep_end
            if pending is not None:
                finish(pending)
                pending = None
            tail = count - clips.clip_len
            if tail not in windows:  # the last window ends at the last frame, off the 8-frame grid
                result = run_one(np.stack(buffer[tail - buffer_start :]))
                windows[tail] = (result.logits, result.features)
                if on_window:
                    on_window(len(windows) - 1, (tail, count), result.logits, info.timeline)
                infer_s += result.infer_s
    except Stopped:
        batcher.give_up(max(expected_windows(), len(windows)) - len(windows))
        raise
    finally:
        if pending is not None:
            pending.future.cancel()
        stream.close()
    starts = sorted(windows)
    spans = [(s, min(s + clips.clip_len, info.model_frames)) for s in starts]
    if on_progress:
        on_progress(len(spans), len(spans))
    return ClipRun(info, spans, np.stack([windows[s][0] for s in starts]), np.stack([windows[s][1] for s in starts]),
                   stream.seconds, infer_s)
