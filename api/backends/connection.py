"""Work tied to a request's connection: cancelled when the client leaves, or when a stopping service gives up
on it (api/drain.py), which then answers 503 rather than "client gone"."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api.drain import Drain
from service.refusals import CLIENT_GONE, Busy, Refused

T = TypeVar("T")


async def run_while_connected(request: Request, work: Callable[[threading.Event], T], drain: Drain) -> T:
    """`work(cancel)` in a worker thread; `cancel` is set when the client disconnects (or this is cancelled),
    so that the clips nobody will read are skipped, and when a stopping service gives up on the work (503).
    The request's body must have been read."""
    cancel = threading.Event()
    try:
        async with cancelled_on_disconnect(request, cancel):
            with drain.cancellable(cancel):
                return await run_in_threadpool(work, cancel)
    except Refused as exc:
        raise stopped_instead(exc, drain) from None
    finally:
        cancel.set()


@contextlib.asynccontextmanager
async def cancelled_on_disconnect(request: Request, cancel: threading.Event) -> AsyncIterator[None]:
    """Set `cancel` if the client disconnects during the block. The request's body must have been read."""
    async def watch() -> None:  # after the body, the only message left to receive is the disconnect
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel.set()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        watcher.cancel()


def stopped_instead(exc: Refused, drain: Drain) -> Refused:
    """A recognition cancelled by the service's own stop answers 503 (not "client gone")."""
    if exc.status_code == CLIENT_GONE and drain.stopping:
        return Busy("the service stopped before this recognition finished; send it again")
    return exc
