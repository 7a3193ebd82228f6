"""Requests whose headers are too large in all are refused with 431 before any route runs.

uvicorn (h11) itself closes a connection whose header block passes a larger cap (api/serve.py sets it), so
memory stays bounded even for a client that never finishes its headers.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class HeaderLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])  # "name: value\r\n"
            if size > self.max_bytes:
                response = JSONResponse(
                    {"detail": f"the request's headers are {size} bytes, over the {self.max_bytes // 1024} KiB limit"},
                    status_code=431, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
