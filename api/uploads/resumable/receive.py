"""A PATCH's body, written into a resumable upload at the upload's offset."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import HTTPException, Request, status
from starlette.requests import ClientDisconnect

from api.uploads.resumable.store import Holder, Upload, UploadStore
from api.uploads.streaming import DiskGuard
from service.settings import UploadLimits

MiB = 1024 * 1024
SAVE_EVERY = 32 * MiB  # bytes between two saves of the offset: a killed process loses at most this much
STOP_POLL_S = 0.25  # how often a writer looks whether a newer request asked for the upload


def _timed_out(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_408_REQUEST_TIMEOUT, detail, headers={"Connection": "close"})


async def receive(request: Request, upload: Upload, store: UploadStore, holder: Holder, limits: UploadLimits) -> str:
    """Write the request's body at `upload.offset`, advancing it; returns why it ended: "body" (all of it came),
    "stopped" (a newer request asked for the upload) or "gone" (the client went away). Refused: more bytes than
    the upload's length (413), a body that stalls or drags on (408), a disk filling up (507). However it ends, the
    offset of what was written is saved."""
    loop = asyncio.get_running_loop()
    started = last = loop.time()
    chunks = aiter(request.stream())
    pending = asyncio.ensure_future(anext(chunks))
    unsaved = 0
    with open(store.data_path(upload.id), "r+b") as file:
        file.truncate(upload.offset)  # bytes past the saved offset (a killed process wrote them) are not trusted
        file.seek(upload.offset)
        guard = DiskGuard(file, store.directory, limits.disk_reserve_bytes)
        try:
            while True:
                # wait for the next piece a little at a time (never cancelling the read): a stalled client must
                # not keep a newer request out
                done, _ = await asyncio.wait({pending}, timeout=STOP_POLL_S)
                if holder.asked_to_stop():
                    return "stopped"
                now = loop.time()
                if now - started > limits.timeout_s:
                    raise _timed_out(f"the upload request took longer than {limits.timeout_s:g} s; resume it")
                if not done:
                    if now - last > limits.idle_timeout_s:
                        raise _timed_out(f"the upload stalled: nothing arrived for {limits.idle_timeout_s:g} s")
                    continue
                try:
                    chunk = pending.result()
                except StopAsyncIteration:
                    return "body"
                except ClientDisconnect:
                    return "gone"
                last = now
                if upload.offset + len(chunk) > upload.length:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                        f"more bytes than the upload's length of {upload.length}")
                guard.write(chunk)
                upload.offset += len(chunk)
                unsaved += len(chunk)
                if unsaved >= SAVE_EVERY:
                    file.flush()
                    store.save(upload)
                    unsaved = 0
                pending = asyncio.ensure_future(anext(chunks))
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                pending.exception()  # retrieved, so asyncio does not log it
            file.flush()
            store.save(upload)
