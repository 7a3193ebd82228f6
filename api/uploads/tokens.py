"""Short-lived signed tokens that a trusted caller (the frontend, with the API key) gets for a browser, which
never sees the key: one opens a live session (api/live/tokens.py), one lets a page upload resumably (/uploads).

A token is `<expiry ms>.<nonce>.<HMAC-SHA256 over its scope and both>`: any process with the same secret can check
it, and a token of one scope is no token of another. Without a secret each process makes its own at start-up."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time


class TokenRefused(Exception):
    """Why a token is not accepted (said to the client)."""


class SignedTokens:
    """Tokens of one `scope`, good for `ttl_s` seconds; `single_use` ones are accepted once."""

    def __init__(self, *, scope: str, ttl_s: float, secret: str | None = None, single_use: bool = False,
                 where_to_get: str = "ask for a new one"):
        self.scope, self.ttl_s, self.single_use, self.where_to_get = scope, ttl_s, single_use, where_to_get
        self._secret = secret.encode() if secret else secrets.token_bytes(32)
        self._used: dict[str, float] = {}  # nonce -> expiry, until it expires (single-use tokens)
        self._lock = threading.Lock()

    def _signature(self, payload: str) -> str:
        digest = hmac.new(self._secret, f"{self.scope}:{payload}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, now: float | None = None) -> str:
        expires = (time.time() if now is None else now) + self.ttl_s
        payload = f"{int(expires * 1000)}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._signature(payload)}"

    def redeem(self, token: str | None, now: float | None = None) -> None:
        """Accept `token` (once, if single-use), or raise TokenRefused."""
        if not token:
            raise TokenRefused(f"no token: {self.where_to_get}")
        payload, _, signature = token.rpartition(".")
        expires_ms, _, nonce = payload.partition(".")
        if not (expires_ms.isdigit() and nonce and hmac.compare_digest(signature, self._signature(payload))):
            raise TokenRefused("invalid token")
        now = time.time() if now is None else now
        expires = int(expires_ms) / 1000
        if expires <= now:
            raise TokenRefused(f"the token expired {now - expires:.0f} s ago; {self.where_to_get}")
        if not self.single_use:
            return
        with self._lock:
            self._used = {n: at for n, at in self._used.items() if at > now}
            if nonce in self._used:
                raise TokenRefused("the token was already used; get a new one for each session")
            self._used[nonce] = expires
