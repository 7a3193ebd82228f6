"""Video decoding and clip slicing, shared by serving and training.

Frames are decoded with OpenCV one at a time, prepared to `(224, 224, 3) uint8 RGB` at once (short side
256, centre crop 224) and kept only while a clip still needs them: memory is one clip's worth of
uint8 frames however long the video is. Clips become floats in [-1, 1] only when they are batched
for the network (`to_model_input`).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
DEFAULT_FPS = 25.0  # used when the container does not say


class VideoDecodeError(ValueError):
    """The file cannot be opened as a video, or has no decodable frame."""


class VideoLimitError(ValueError):
    """The video is longer or larger than the service accepts; the message names the limit."""


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be at most; None is no limit. Checked on the container's word, then while decoding."""

    max_frames: int | None = None
    max_duration_s: float | None = None
    max_pixels: int | None = None

    def check_frame_size(self, width: int, height: int) -> None:
        if self.max_pixels and width * height > self.max_pixels:
            raise VideoLimitError(f"the video is {width}x{height}; at most {self.max_pixels:,} pixels a frame are accepted")

    def check_length(self, frames: int, fps: float) -> None:
        if self.max_frames and frames > self.max_frames:
            raise VideoLimitError(f"the video has more than {self.max_frames:,} frames, the limit")
        if self.max_duration_s and fps and frames / fps > self.max_duration_s:
            raise VideoLimitError(f"the video is longer than {self.max_duration_s:g} s, the limit")


@dataclass
class VideoInfo:
    """What the container says, with `frames` corrected to what was decoded once decoding ends."""

    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


@dataclass
class Clip:
    """`frames: (clip_len, 224, 224, 3) uint8 RGB` covering source frames [start_frame, end_frame)."""

    index: int
    start_frame: int
    end_frame: int
    frames: np.ndarray = field(repr=False)


def prepare_frame(bgr: np.ndarray) -> np.ndarray:
    """`(H, W, 3) uint8 BGR` -> `(224, 224, 3) uint8 RGB`: short side to 256, centre crop 224."""
    height, width = bgr.shape[:2]
    scale = RESIZE_SHORT_SIDE / min(height, width)
    new_w, new_h = max(CROP_SIZE, round(width * scale)), max(CROP_SIZE, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bgr, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - CROP_SIZE) // 2, (new_w - CROP_SIZE) // 2
    crop = resized[top : top + CROP_SIZE, left : left + CROP_SIZE]
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


INPUT_SCALE, INPUT_OFFSET = np.float32(1 / 127.5), np.float32(1.0)  # uint8 -> [-1, 1]


def to_model_input(clips: np.ndarray) -> np.ndarray:
    """`clips: (N, T, 224, 224, 3) uint8` -> float32 in [-1, 1], the I3D training convention."""
    return clips.astype(np.float32) * INPUT_SCALE - INPUT_OFFSET


def clip_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    """First frame of each clip: every `stride` frames, plus a last clip that ends at the last frame.

    A video shorter than one clip gives one clip at 0 (its frames are looped to fill it).
    """
    if num_frames <= 0:
        return []
    if num_frames <= clip_len:
        return [0]
    starts = list(range(0, num_frames - clip_len + 1, stride))
    if starts[-1] + clip_len < num_frames:
        starts.append(num_frames - clip_len)
    return starts


def _check_slicing(clip_len: int, stride: int) -> None:
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoDecodeError("the file could not be opened as a video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS
    info = VideoInfo(
        frames=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
        fps=float(fps),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    return capture, info


def _decoded_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        if frame.ndim == 2:  # some codecs decode greyscale
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        yield prepare_frame(frame)


def iter_frames(path: str | Path, *, info: VideoInfo | None = None, limits: VideoLimits = VideoLimits()
                ) -> Iterator[np.ndarray]:
    """Decode `path` and yield its prepared frames, `(224, 224, 3) uint8 RGB`, checking `limits` as it goes.

    Pass `info` to have it filled from the container, and its `frames` set to the number actually decoded
    once the iterator is exhausted. Raises VideoDecodeError when the file opens as no video or no frame
    decodes, VideoLimitError when it exceeds `limits`.
    """
    capture, opened = open_video(path)
    if info is not None:
        info.fps, info.width, info.height, info.frames = opened.fps, opened.width, opened.height, opened.frames
    try:
        limits.check_frame_size(opened.width, opened.height)
        limits.check_length(opened.frames, opened.fps)
    except VideoLimitError:
        capture.release()
        raise
    count = 0
    try:
        for frame in _decoded_frames(capture):
            count += 1
            if count % 256 == 0:  # containers can lie about their length
                limits.check_length(count, opened.fps)
            yield frame
    finally:
        capture.release()
    if count == 0:
        raise VideoDecodeError("no decodable video frame")
    if info is not None:
        info.frames = count


def loop_to_length(frames: list[np.ndarray], length: int) -> np.ndarray:
    """A video shorter than one clip, `frames` looped to `(length, 224, 224, 3)`."""
    return np.stack([frames[i % len(frames)] for i in range(length)])


def iter_clips(
    path: str | Path, *, clip_len: int = 64, stride: int = 32, info: VideoInfo | None = None,
    limits: VideoLimits = VideoLimits(),
) -> Iterator[Clip]:
    """Decode `path` and yield its clips in order, as `clip_starts` places them, while decoding.

    `info` and the errors are as `iter_frames` says.
    """
    _check_slicing(clip_len, stride)
    window: deque[np.ndarray] = deque(maxlen=clip_len)  # the last clip_len prepared frames
    count = 0
    next_start = 0
    index = 0
    with contextlib.closing(iter_frames(path, info=info, limits=limits)) as frames:  # closing releases the file
        for frame in frames:
            window.append(frame)
            count += 1
            if count == next_start + clip_len:
                yield Clip(index, next_start, count, np.stack(window))
                index += 1
                next_start += stride
    if count < clip_len:  # shorter than one clip: loop it
        yield Clip(0, 0, count, loop_to_length(list(window), clip_len))
    elif (next_start - stride) + clip_len < count:  # tail: a last clip ending at the last frame
        yield Clip(index, count - clip_len, count, np.stack(window))


def read_frames(path: str | Path, *, max_frames: int | None = None) -> np.ndarray:
    """All prepared frames of a (short) video, `(T, 224, 224, 3) uint8`. For tools and tests, not serving."""
    capture, _ = open_video(path)
    try:
        frames = []
        for frame in _decoded_frames(capture):
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        capture.release()
    if not frames:
        raise VideoDecodeError("no decodable video frame")
    return np.stack(frames)


def write_grey_ramp(path: Path, num_frames: int, *, size=(320, 240), fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """A synthetic video whose frame i is a flat grey of value 3 * (i % 80) (tests tell frames apart by it;
    the service warms up on one)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc}")
    for i in range(num_frames):
        writer.write(np.full((size[1], size[0], 3), 3 * (i % 80), np.uint8))
    writer.release()
    return path
