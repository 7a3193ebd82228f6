"""Short-lived, single-use tokens for opening a live session. A trusted caller (the frontend, with the API key)
asks `POST /live/sessions` for one and hands it to a browser, which never sees the API key.

A token is `<expiry ms>.<nonce>.<HMAC-SHA256>`: any process with the same secret (LIVE_TOKEN_SECRET) can check
it; without one each process makes its own at start-up. A token opens one session: reuse is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time


class TokenRefused(Exception):
    """Why a token does not open a session (sent as the close reason)."""


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class LiveTokens:
    def __init__(self, *, ttl_s: float, secret: str | None = None):
        self.ttl_s = ttl_s
        self._secret = secret.encode() if secret else secrets.token_bytes(32)
        self._used: dict[str, float] = {}  # nonce -> expiry, until it expires
        self._lock = threading.Lock()

    def issue(self, now: float | None = None) -> str:
        expires = (time.time() if now is None else now) + self.ttl_s
        payload = f"{int(expires * 1000)}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{_signature(self._secret, payload)}"

    def redeem(self, token: str | None, now: float | None = None) -> None:
        """Accept `token` once, or raise TokenRefused."""
        if not token:
            raise TokenRefused("no token: get one from POST /live/sessions and open /live?token=...")
        payload, _, signature = token.rpartition(".")
        expires_ms, _, nonce = payload.partition(".")
        if not (expires_ms.isdigit() and nonce and hmac.compare_digest(signature, _signature(self._secret, payload))):
            raise TokenRefused("invalid token")
        now = time.time() if now is None else now
        expires = int(expires_ms) / 1000
        if expires <= now:
            raise TokenRefused(f"the token expired {now - expires:.0f} s ago; get a new one")
        with self._lock:
            self._used = {n: at for n, at in self._used.items() if at > now}
            if nonce in self._used:
                raise TokenRefused("the token was already used; get a new one for each session")
            self._used[nonce] = expires
