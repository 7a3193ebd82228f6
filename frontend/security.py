"""CSRF protection for the upload forms and security headers on every page."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, request, session

CSRF_FIELD = "csrf_token"

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self' {websocket} {api}; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'")
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def csrf_token() -> str:
    """This session's token (made on first use), for templates."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_ok() -> bool:
    """The posted token (form field or X-CSRF-Token header) matches the session's."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token")
    return bool(expected and sent and hmac.compare_digest(expected, sent))


def websocket_origin(api_public_url: str) -> str:
    """`http://host:8000/x` -> `ws://host:8000`: where the live page's WebSocket may connect."""
    parts = urlsplit(api_public_url)
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"


def http_origin(api_public_url: str) -> str:
    """`http://host:8000/x` -> `http://host:8000`: where the upload page sends big files (resumable uploads)."""
    parts = urlsplit(api_public_url)
    return f"{parts.scheme}://{parts.netloc}"


def install(app: Flask) -> None:
    public = app.config["API_PUBLIC_URL"]
    headers = {"Content-Security-Policy": _CSP.format(websocket=websocket_origin(public), api=http_origin(public)),
               **_HEADERS}
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")

    @app.after_request
    def security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
