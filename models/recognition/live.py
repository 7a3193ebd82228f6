"""Live recognition: frames arrive one at a time (a camera, a stream, a WebSocket) and every `hop` frames the last
`clip_len` make a window for I3D. Shared by the API's live sessions (api/live/) and `python -m models live`.

`run_live` reads a camera, a file or a stream for the command line. Memory stays bounded however slow the model is: the rolling buffer holds `clip_len` frames, and at most one
window waits for the model while another runs; a newer window replaces the waiting one (it is dropped).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.labels import top_k
from models.recognition.heads import VideoHead
from models.recognition.segments import LiveMoments
from models.video import prepare_frame

LIVE_TOP_K = 3
DEFAULT_FPS = 25.0  # Kinetics' frame rate: live sources are sampled at it


class FrameError(ValueError):
    """A live frame that is not a JPEG this service takes."""


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame (not DHT, JPG, DAC)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read without decoding; None when `data` is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        elif marker in _SOF_MARKERS:
            if i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        elif marker == 0xDA:  # image data before any frame header
            return None
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def decode_jpeg(data: bytes, *, max_pixels: int) -> np.ndarray:
    """One live frame, JPEG bytes -> the model's `(224, 224, 3) uint8 RGB`. Its size is read from the header
    first, so a small file cannot unpack into a huge image."""
    size = jpeg_size(data)
    if size is None:
        raise FrameError("not a JPEG image")
    width, height = size
    if not width or not height or width * height > max_pixels:
        raise FrameError(f"a {width}x{height} frame is over the limit of {max_pixels:,} pixels; "
                         "scale frames to a short side of 256")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FrameError("the JPEG did not decode")
    return prepare_frame(bgr)


@dataclass(frozen=True)
class Window:
    """Frames [start_frame, end_frame) of a live source, `frames: (clip_len, 224, 224, 3) uint8`, and when its
    last frame arrived (`time.monotonic()`)."""

    index: int
    start_frame: int
    end_frame: int
    closed_at: float
    frames: np.ndarray = field(repr=False)


class RollingWindows:
    """Prepared frames in (`models.video.prepare_frame`), a window out every `hop` frames once `clip_len` have come."""

    def __init__(self, clip_len: int = 64, hop: int = 32):
        if not 1 <= hop <= clip_len:
            raise ValueError(f"hop must be between 1 and clip_len ({clip_len}), got {hop}")
        self.clip_len, self.hop = clip_len, hop
        self.frames_seen = 0
        self.windows = 0
        self._buffer: deque[np.ndarray] = deque(maxlen=clip_len)

    def push(self, frame: np.ndarray) -> Window | None:
        self._buffer.append(frame)
        self.frames_seen += 1
        if self.frames_seen < self.clip_len or (self.frames_seen - self.clip_len) % self.hop:
            return None
        window = Window(self.windows, self.frames_seen - self.clip_len, self.frames_seen, time.monotonic(),
                        np.stack(self._buffer))
        self.windows += 1
        return window


class LatestWindow:
    """The one window waiting for the model: offering a new one drops the one still waiting."""

    def __init__(self):
        self.waiting: Window | None = None
        self.dropped = 0

    def offer(self, window: Window) -> None:
        if self.waiting is not None:
            self.dropped += 1
        self.waiting = window

    def take(self) -> Window | None:
        window, self.waiting = self.waiting, None
        return window


class LiveRanker:
    """I3D's outputs for successive windows -> the ranking to show for the newest. The logits' head (Kinetics-400)
    ranks each window alone (as the per-clip timeline of an upload does); a trained head ranks the last `context`
    windows as one sequence, the way it saw whole videos in training."""

    def __init__(self, head: VideoHead, *, context: int = 4, top: int = LIVE_TOP_K):
        self.head, self.top = head, top
        self.context = 1 if getattr(head, "per_window", False) else max(1, context)
        self._logits: deque[np.ndarray] = deque(maxlen=self.context)
        self._features: deque[np.ndarray] = deque(maxlen=self.context)
        self.moments = LiveMoments(head.labels)  # the segments of the stream, as they close

    def rank(self, logits: np.ndarray, features: np.ndarray) -> list[dict]:
        self._logits.append(logits)
        self._features.append(features)
        recent = np.stack(self._logits), np.stack(self._features)
        self.probabilities = self.head.window_probabilities(*recent)[-1]  # the newest window's, for the moments
        return top_k(self.head.video_probabilities(*recent), self.head.labels, self.top)

    def closed_moments(self, message: dict) -> list[dict]:
        """After the window of `message` was ranked: the segments it closes, as messages of their own."""
        return [{"type": "segment", **segment} for segment in
                self.moments.add(message["index"], message["start_s"], message["end_s"], self.probabilities)]


def window_message(window: Window, actions: list[dict], *, head: str, fps: float, infer_s: float,
                   dropped_windows: int, now: float | None = None) -> dict:
    """What a live client gets for one window (a WebSocket message, a line of `python -m models live`).
    `latency_ms`: from the arrival of the window's last frame to now, waiting for the model included."""
    now = time.monotonic() if now is None else now
    return {
        "type": "window",
        "index": window.index,
        "start_frame": window.start_frame,
        "end_frame": window.end_frame,
        "start_s": round(window.start_frame / fps, 3),
        "end_s": round(window.end_frame / fps, 3),
        "head": head,
        "actions": actions,
        "latency_ms": round((now - window.closed_at) * 1000, 1),
        "inference_ms": round(infer_s * 1000, 1),
        "dropped_windows": dropped_windows,
    }


class SourceError(RuntimeError):
    """A live source that cannot be opened."""


@dataclass(frozen=True)
class LiveSource:
    """A camera (`0`), a video file or a stream URL (`rtsp://`, `http://`), opened with OpenCV."""

    capture: cv2.VideoCapture
    fps: float
    is_file: bool
    name: str


def open_source(source: str) -> LiveSource:
    is_file = Path(source).is_file()
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # the error below says it better
    try:
        capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if not capture.isOpened():
        capture.release()
        if source.isdigit():
            raise SourceError(f"cannot open camera {source} (is one attached, and may this user read /dev/video{source}?)")
        raise SourceError(f"cannot open {'file' if is_file else 'stream or file'} {source!r}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    return LiveSource(capture, fps if 1 <= fps <= 240 else DEFAULT_FPS, is_file, source)


def run_live(source: LiveSource, batcher, ranker: LiveRanker, *, clip_len: int = 64, hop: int = 32,
             realtime: bool | None = None, stop: threading.Event | None = None) -> Iterator[dict]:
    """Window messages for `source`, as the model gets through them. Frames are read on their own thread as the
    source gives them. A camera or a stream (or a file with `realtime`, paced at its frame rate) drops windows
    when the model is slower; a file read as fast as it decodes gives every window."""
    realtime = not source.is_file if realtime is None else realtime
    stop = stop or threading.Event()
    windows, latest, changed = RollingWindows(clip_len, hop), LatestWindow(), threading.Condition()
    finished = threading.Event()

    def read() -> None:
        started = time.monotonic()
        try:
            while not stop.is_set():
                ok, frame = source.capture.read()
                if not ok or frame is None:
                    return
                if source.is_file and realtime:
                    time.sleep(max(0.0, started + windows.frames_seen / source.fps - time.monotonic()))
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                if (window := windows.push(prepare_frame(frame))) is None:
                    continue
                with changed:
                    if not realtime:  # every window: wait for the model instead of dropping
                        changed.wait_for(lambda: latest.waiting is None or stop.is_set())
                    latest.offer(window)
                    changed.notify_all()
        finally:
            with changed:
                finished.set()
                changed.notify_all()

    reader = threading.Thread(target=read, name="live-source", daemon=True)
    reader.start()
    try:
        while True:
            with changed:
                changed.wait_for(lambda: latest.waiting is not None or finished.is_set())
                window = latest.take()
                changed.notify_all()
            if window is None:
                yield from ({"type": "segment", **segment} for segment in ranker.moments.finish())
                return
            result = batcher.submit(window.frames, urgent=True).result()
            message = window_message(window, ranker.rank(result.logits, result.features), head=ranker.head.name,
                                     fps=source.fps, infer_s=result.infer_s, dropped_windows=latest.dropped)
            yield message
            yield from ranker.closed_moments(message)
    finally:
        stop.set()
        with changed:
            changed.notify_all()
        reader.join(timeout=10)
        source.capture.release()
