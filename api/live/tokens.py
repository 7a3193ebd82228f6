"""Single-use tokens for opening a live session: the frontend asks `POST /live/sessions` for one (with the API
key) and hands it to the browser. Signed with LIVE_TOKEN_SECRET, so any API process with it can check one."""

from __future__ import annotations

from api.uploads.tokens import SignedTokens, TokenRefused

__all__ = ["LiveTokens", "TokenRefused"]


class LiveTokens(SignedTokens):
    def __init__(self, *, ttl_s: float, secret: str | None = None):
        super().__init__(scope="live", ttl_s=ttl_s, secret=secret, single_use=True,
                         where_to_get="get one from POST /live/sessions and open /live?token=...")
