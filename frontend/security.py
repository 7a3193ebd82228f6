"""CSRF protection for the upload forms and security headers on every page."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

CSRF_FIELD = "csrf_token"

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "media-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
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


def install(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")

    @app.after_request
    def security_headers(response):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response
