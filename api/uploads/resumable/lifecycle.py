"""Resumable uploads in the app: the store, the tokens browsers upload with, and a sweeper that deletes
uploads that expired (at start-up, then every few minutes; each new upload sweeps first too)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from api.uploads.resumable.store import UploadStore
from api.uploads.tokens import SignedTokens
from service.settings import Settings

log = logging.getLogger("api.uploads")


async def _sweeping(store: UploadStore, every_s: float) -> None:
    while True:
        try:
            swept = store.sweep()  # a folder listing and a few small reads: no thread needed
            if swept:
                log.info("removed expired resumable uploads", extra={"count": swept})
        except OSError as exc:  # a folder that went away for a moment: try again next time
            log.warning("sweeping resumable uploads failed", extra={"detail": str(exc)})
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def serving_uploads(settings: Settings) -> AsyncIterator[tuple[UploadStore, SignedTokens]]:
    """The store of resumable uploads and the tokens browsers upload with, swept while the app serves."""
    store = UploadStore(settings.job_upload_dir / "resumable", ttl_s=settings.resumable_ttl_s)
    tokens = SignedTokens(scope="upload", ttl_s=settings.upload_token_ttl_s,
                          secret=settings.upload_token_secret or settings.live_token_secret
                          or settings.api_key,  # the same in every process: any of them checks one
                          where_to_get="get a new one from POST /uploads/tokens")
    sweeper = asyncio.create_task(_sweeping(store, every_s=min(300.0, max(1.0, settings.resumable_ttl_s / 4))))
    try:
        yield store, tokens
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
