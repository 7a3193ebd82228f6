"""CORS: the API's routes for the origins in CORS_ORIGINS (off unless set), and apart from them the resumable
uploads, which pages on other origins (the frontend's) send straight here: UPLOAD_CORS_ORIGINS, every origin by
default, as those requests carry their key or token in a header and never a cookie."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

UPLOADS = "/uploads"
TUS_REQUEST_HEADERS = ["Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Token",
                       "Content-Type", "X-API-Key", "X-Request-ID"]
TUS_RESPONSE_HEADERS = ["Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Offset",
                        "Upload-Length", "Upload-Expires", "Retry-After"]


class CORSByPath:
    def __init__(self, app: ASGIApp, *, origins: list[str], upload_origins: list[str]):
        self.app = app
        self.routes = CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST"],
                                     allow_headers=["Content-Type", "X-API-Key", "X-Request-ID", "X-Filename"]) \
            if origins else app
        self.uploads = CORSMiddleware(app, allow_origins=upload_origins, allow_headers=TUS_REQUEST_HEADERS,
                                      allow_methods=["POST", "HEAD", "PATCH", "DELETE", "OPTIONS"],
                                      expose_headers=TUS_RESPONSE_HEADERS, max_age=3600) if upload_origins else app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        uploads = scope["type"] == "http" and (path == UPLOADS or path.startswith(UPLOADS + "/"))
        await (self.uploads if uploads else self.routes)(scope, receive, send)
