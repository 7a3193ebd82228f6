"""One live session: JPEG frames in over a WebSocket, a ranking out for every window.

    client -> server   binary messages, one JPEG frame each, at `fps` (a short side of 256 is plenty)
    server -> client   JSON text: {"type": "ready", ...} once, then {"type": "window", ...} for each window

Each window goes through the model's shared batcher, so live sessions and uploads share batches. While one
window is on the model, only the newest next one waits (`models.recognition.live.LatestWindow`); older ones are dropped
and counted, so a slow model never queues video. Every way a session ends early is a close code and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from fastapi import WebSocket
from fastapi.concurrency import run_in_threadpool

from api.drain import Drain
from api.live.tokens import LiveTokens, TokenRefused
from api.metrics import LIVE_SESSIONS, LIVE_WINDOWS, LIVE_WINDOWS_DROPPED
from models import sports
from models.recognition.batching import ClipBatcher
from models.recognition.heads import SportHead, VideoHead
from models.recognition.live import FrameError, LatestWindow, LiveRanker, RollingWindows, decode_jpeg, window_message
from service.recognition import check_sport
from service.refusals import Refused

log = logging.getLogger("api.live")

# Close codes: the standard ones where they fit, else 4000 + the HTTP status that means the same.
GOING_AWAY = 1001  # the service is stopping
UNSUPPORTED = 1003  # a text message, or bytes that are not a JPEG within the pixel limit
TOO_BIG = 1009  # a message over LIVE_MAX_FRAME_KIB
FAILED = 1011  # the model failed
TRY_LATER = 1013  # LIVE_MAX_SESSIONS sessions are open, or no model here
BAD_TOKEN = 4401  # no token, or an invalid, expired or used one
IDLE = 4408  # no frame for LIVE_IDLE_TIMEOUT_S
BAD_REQUEST = 4422  # an unknown head or sport

_REASON_BYTES = 123  # the WebSocket protocol's limit for a close reason


class Close(Exception):
    """End the session with this close code and reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:_REASON_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class LiveSettings:
    fps: float
    clip_len: int
    hop: int
    max_frame_bytes: int
    max_pixels: int
    idle_timeout_s: float
    head_context: int


class LiveService:
    """What every session of this process shares (on `app.state.live`): tokens, the session count, the batcher."""

    def __init__(self, batcher: ClipBatcher, heads: dict[str, VideoHead], default_head: VideoHead,
                 settings: LiveSettings, *, tokens: LiveTokens, max_sessions: int, drain: Drain):
        self.batcher, self.heads, self.default_head = batcher, heads, default_head
        self.settings, self.tokens, self.max_sessions, self.drain = settings, tokens, max_sessions, drain
        self.open = 0

    @contextlib.contextmanager
    def admitted(self):
        if self.drain.draining:
            raise Close(GOING_AWAY, "the service is stopping; reconnect in a moment")
        if self.open >= self.max_sessions:
            raise Close(TRY_LATER, f"{self.open} live sessions are open, the most this service runs "
                                   "(LIVE_MAX_SESSIONS); try again later")
        self.open += 1
        LIVE_SESSIONS.inc()
        try:
            yield
        finally:
            self.open -= 1
            LIVE_SESSIONS.dec()

    def head(self, name: str | None, sport: str | None = None) -> VideoHead:
        if name is not None and name not in self.heads:
            raise Close(BAD_REQUEST, f"unknown head {name!r}; loaded: {', '.join(self.heads)}")
        chosen = self.heads[name] if name else self.default_head
        if sport is None:
            return chosen
        try:
            check_sport(sport, name, self.default_head.name, list(self.heads))
        except Refused as exc:
            raise Close(BAD_REQUEST, exc.detail[:120]) from None
        return SportHead(sports.sport(sport))


async def serve_session(websocket: WebSocket, live: LiveService | None, *, token: str | None,
                        head: str | None, sport: str | None = None) -> None:
    """Accept, check the token and the limits, run the session; every refusal is a close code and a reason."""
    await websocket.accept()
    try:
        if live is None:
            raise Close(TRY_LATER, "live recognition runs on an API process with the model, not on a gateway "
                                   "to queue workers")
        try:
            live.tokens.redeem(token)
        except TokenRefused as exc:
            raise Close(BAD_TOKEN, str(exc)) from None
        chosen = live.head(head, sport)
        with live.admitted():
            await LiveSession(websocket, live, chosen).run()
    except Close as close:
        log.info("live session closed", extra={"code": close.code, "reason": close.reason})
        await _close(websocket, close.code, close.reason)
    else:
        await _close(websocket, 1000, "")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.close(code, reason)


class LiveSession:
    def __init__(self, websocket: WebSocket, live: LiveService, head: VideoHead):
        self.websocket, self.live, self.head = websocket, live, head
        settings = live.settings
        self.settings = settings
        self.windows = RollingWindows(settings.clip_len, settings.hop)
        self.latest = LatestWindow()
        self.ranker = LiveRanker(head, context=settings.head_context)
        self._window_ready = asyncio.Event()
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        s = self.settings
        await self._send({"type": "ready", "fps": s.fps, "clip_len": s.clip_len, "hop": s.hop, "head": self.head.name,
                          "labels": len(self.head.labels), "max_frame_bytes": s.max_frame_bytes,
                          "idle_timeout_s": s.idle_timeout_s})
        started = time.monotonic()
        tasks = {asyncio.create_task(self._receive()), asyncio.create_task(self._recognize())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("live session ended", extra={"frames": self.windows.frames_seen, "windows": self.windows.windows,
                                              "dropped": self.latest.dropped, "s": round(time.monotonic() - started, 1)})
        for task in done:
            if task.exception() is not None:
                raise task.exception()

    async def _receive(self) -> None:
        """Frames into the rolling buffer until the client leaves; raises Close for bad input and idleness."""
        s = self.settings
        idle_until = time.monotonic() + s.idle_timeout_s
        while True:
            if self.live.drain.draining:
                raise Close(GOING_AWAY, "the service is stopping; reconnect in a moment")
            left = idle_until - time.monotonic()
            if left <= 0:
                raise Close(IDLE, f"no frame for {s.idle_timeout_s:g} s")
            try:  # in slices, so that a stopping service is noticed
                message = await asyncio.wait_for(self.websocket.receive(), timeout=min(left, 1.0))
            except TimeoutError:
                continue
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                raise Close(UNSUPPORTED, "send each frame as a binary message holding one JPEG image")
            if len(data) > s.max_frame_bytes:
                raise Close(TOO_BIG, f"a frame of {len(data):,} bytes is over the {s.max_frame_bytes // 1024} KiB "
                                     "limit; scale frames to a short side of 256")
            try:
                frame = await run_in_threadpool(decode_jpeg, data, max_pixels=s.max_pixels)
            except FrameError as exc:
                raise Close(UNSUPPORTED, str(exc)) from None
            idle_until = time.monotonic() + s.idle_timeout_s
            if (window := self.windows.push(frame)) is not None:
                if self.latest.waiting is not None:
                    LIVE_WINDOWS_DROPPED.inc()
                self.latest.offer(window)
                self._window_ready.set()

    async def _recognize(self) -> None:
        """The newest waiting window through the shared batcher, its ranking to the client; one at a time."""
        while True:
            await self._window_ready.wait()
            self._window_ready.clear()
            if (window := self.latest.take()) is None:
                continue
            try:  # cancelling this task cancels the clip too (skipped if its batch has not started)
                result = await asyncio.wrap_future(self.live.batcher.submit(window.frames, urgent=True))
                actions = await run_in_threadpool(self.ranker.rank, result.logits, result.features)
            except Exception as exc:  # noqa: BLE001 - the client learns why, the service goes on
                log.exception("live recognition failed")
                raise Close(FAILED, f"recognition failed: {exc}") from None
            LIVE_WINDOWS.inc()
            message = window_message(window, actions, head=self.head.name, fps=self.settings.fps,
                                     infer_s=result.infer_s, dropped_windows=self.latest.dropped)
            try:
                await self._send(message)
                for segment in self.ranker.closed_moments(message):
                    await self._send(segment)
            except Exception:  # noqa: BLE001 - the client left: the session ends
                return

    async def _send(self, message: dict) -> None:
        async with self._send_lock:
            await self.websocket.send_json(message)
