"""One live session: JPEG frames in over a WebSocket, a ranking out for every window.

    client -> server   binary messages, one JPEG frame each, at `fps` (a short side of 256 is plenty)
    server -> client   JSON text: {"type": "ready", ...} once, then {"type": "window", ...} for each window

The session itself (frames, windows, rankings, what is dropped) is `service.live`'s; this door speaks WebSocket:
tokens, the idle time, a stopping service, and every way a session ends early as a close code and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import WebSocket
from fastapi.concurrency import run_in_threadpool

from api.drain import Drain
from api.live.tokens import LiveTokens, TokenRefused
from api.middleware.metrics import LIVE_SESSIONS, LIVE_WINDOWS, LIVE_WINDOWS_DROPPED
from service.live import LiveRecognition, LiveStream
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


# What the service's refusals mean on a WebSocket.
_CLOSE_CODES = {413: TOO_BIG, 415: UNSUPPORTED, 422: BAD_REQUEST, 503: TRY_LATER}


def _closed(exc: Refused) -> Close:
    return Close(_CLOSE_CODES.get(exc.status_code, FAILED), exc.detail)


class LiveService:
    """What every session of this process shares (on `app.state.live`): the live recognition, tokens, the drain."""

    def __init__(self, recognition: LiveRecognition, *, tokens: LiveTokens, drain: Drain):
        self.recognition, self.tokens, self.drain = recognition, tokens, drain

    @property
    def open(self) -> int:
        return self.recognition.open

    @property
    def max_sessions(self) -> int:
        return self.recognition.max_sessions

    @contextlib.contextmanager
    def admitted(self):
        if self.drain.draining:
            raise Close(GOING_AWAY, "the service is stopping; reconnect in a moment")
        with self.recognition.admitted():
            LIVE_SESSIONS.inc()
            try:
                yield
            finally:
                LIVE_SESSIONS.dec()


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
        try:
            stream = live.recognition.stream(live.recognition.head(head, sport))
            with live.admitted():
                await LiveSession(websocket, live, stream).run()
        except Refused as exc:
            raise _closed(exc) from None
    except Close as close:
        log.info("live session closed", extra={"code": close.code, "reason": close.reason})
        await _close(websocket, close.code, close.reason)
    else:
        await _close(websocket, 1000, "")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.close(code, reason)


class LiveSession:
    def __init__(self, websocket: WebSocket, live: LiveService, stream: LiveStream):
        self.websocket, self.live, self.stream = websocket, live, stream
        self.settings = stream.settings
        self._window_ready = asyncio.Event()
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self._send(self.stream.ready())
        started = time.monotonic()
        tasks = {asyncio.create_task(self._receive()), asyncio.create_task(self._recognize())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        windows = self.stream.windows
        log.info("live session ended", extra={"frames": windows.frames_seen, "windows": windows.windows,
                                              "dropped": self.stream.latest.dropped,
                                              "s": round(time.monotonic() - started, 1)})
        for task in done:
            if task.exception() is not None:
                raise task.exception()

    async def _receive(self) -> None:
        """Frames into the stream until the client leaves; raises Close for bad input and idleness."""
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
            try:
                waiting, dropped = await run_in_threadpool(self.stream.push, data)
            except Refused as exc:
                raise _closed(exc) from None
            idle_until = time.monotonic() + s.idle_timeout_s
            if dropped:
                LIVE_WINDOWS_DROPPED.inc()
            if waiting:
                self._window_ready.set()

    async def _recognize(self) -> None:
        """The newest waiting window ranked, its messages to the client; one at a time."""
        while True:
            await self._window_ready.wait()
            self._window_ready.clear()
            if (window := self.stream.next_window()) is None:
                continue
            try:
                messages = await self.stream.rank(window)
            except Exception as exc:  # noqa: BLE001 - the client learns why, the service goes on
                log.exception("live recognition failed")
                raise Close(FAILED, f"recognition failed: {exc}") from None
            LIVE_WINDOWS.inc()
            try:
                for message in messages:
                    await self._send(message)
            except Exception:  # noqa: BLE001 - the client left: the session ends
                return

    async def _send(self, message: dict) -> None:
        async with self._send_lock:
            await self.websocket.send_json(message)
