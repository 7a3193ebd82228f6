"""Live recognition: JPEG frames of a stream in, a ranking for every window out, on the model's shared batcher
(so live sessions and uploads share batches). While one window is on the model only the newest next one waits
(`models.recognition.live.LatestWindow`); older ones are dropped and counted, so a slow model never queues video.

The door (api/live/) speaks WebSocket and turns each `Refused` here into a close code."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from models import sports
from models.recognition.heads import SportHead, VideoHead
from models.recognition.live import FrameError, LatestWindow, LiveRanker, RollingWindows, Window, decode_jpeg, window_message
from models.recognition.recognizer import ActionRecognizer
from service.recognition import check_head, check_sport
from service.refusals import Busy, Refused
from service.settings import Settings


@dataclass(frozen=True)
class LiveSettings:
    fps: float
    clip_len: int
    hop: int
    max_frame_bytes: int
    max_pixels: int
    idle_timeout_s: float
    head_context: int

    @classmethod
    def of(cls, settings: Settings, recognizer: ActionRecognizer) -> LiveSettings:
        clips = recognizer.clips
        return cls(fps=settings.live_fps, clip_len=clips.clip_len, hop=settings.live_hop or clips.stride,
                   max_frame_bytes=settings.live_max_frame_kib * 1024, max_pixels=settings.max_video_pixels,
                   idle_timeout_s=settings.live_idle_timeout_s, head_context=settings.live_head_context)


class LiveRecognition:
    """What every live session of this process shares: the model's batcher and heads, the settings, the count of
    open sessions (at most `max_sessions`)."""

    def __init__(self, recognizer: ActionRecognizer, settings: LiveSettings, *, max_sessions: int):
        self.batcher, self.heads, self.default_head = recognizer.batcher, recognizer.heads, recognizer.head
        self.settings, self.max_sessions = settings, max_sessions
        self.open = 0

    def head(self, name: str | None, sport: str | None = None) -> VideoHead:
        """The head a session ranks with; 422 for an unknown head or sport, or a sport the head cannot narrow."""
        check_head(list(self.heads), name)
        check_sport(sport, name, self.default_head.name, list(self.heads))
        return SportHead(sports.sport(sport)) if sport else self.heads[name] if name else self.default_head

    @contextlib.contextmanager
    def admitted(self):
        """One more session open for the block; 503 when `max_sessions` are."""
        if self.open >= self.max_sessions:
            raise Busy(f"{self.open} live sessions are open, the most this service runs (LIVE_MAX_SESSIONS); "
                       "try again later")
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1

    def stream(self, head: VideoHead) -> LiveStream:
        return LiveStream(self, head)


class LiveStream:
    """One session: frames into a rolling buffer, each window ranked with the last few (a trained head) and the
    moments of the stream told once they close."""

    def __init__(self, live: LiveRecognition, head: VideoHead):
        self.live, self.head, self.settings = live, head, live.settings
        self.windows = RollingWindows(self.settings.clip_len, self.settings.hop)
        self.latest = LatestWindow()
        self.ranker = LiveRanker(head, context=self.settings.head_context)

    def ready(self) -> dict:
        """The first message: what the session expects and runs."""
        s = self.settings
        return {"type": "ready", "fps": s.fps, "clip_len": s.clip_len, "hop": s.hop, "head": self.head.name,
                "labels": len(self.head.labels), "max_frame_bytes": s.max_frame_bytes,
                "idle_timeout_s": s.idle_timeout_s}

    def push(self, data: bytes) -> tuple[bool, bool]:
        """One JPEG frame in: (a window is waiting for the model, an older waiting one was dropped for it).
        413 for a frame over LIVE_MAX_FRAME_KIB, 415 for one that is not a JPEG within the pixel limit."""
        s = self.settings
        if len(data) > s.max_frame_bytes:
            raise Refused(f"a frame of {len(data):,} bytes is over the {s.max_frame_bytes // 1024} KiB limit; scale "
                          "frames to a short side of 256", status_code=413)
        try:
            frame = decode_jpeg(data, max_pixels=s.max_pixels)
        except FrameError as exc:
            raise Refused(str(exc), status_code=415) from None
        window = self.windows.push(frame)
        if window is None:
            return False, False
        dropped = self.latest.waiting is not None
        self.latest.offer(window)
        return True, dropped

    def next_window(self) -> Window | None:
        return self.latest.take()

    async def rank(self, window: Window) -> list[dict]:
        """The window through the shared batcher (urgent: before queued upload clips): its message, then any moment
        it closed. Cancelling this cancels the clip too (skipped if its batch has not started)."""
        result = await asyncio.wrap_future(self.live.batcher.submit(window.frames, urgent=True))
        actions = await asyncio.to_thread(self.ranker.rank, result.logits, result.features)
        message = window_message(window, actions, head=self.head.name, fps=self.settings.fps, infer_s=result.infer_s,
                                 dropped_windows=self.latest.dropped)
        return [message, *self.ranker.closed_moments(message)]
