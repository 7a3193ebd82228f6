"""Service refusals as HTTP answers, in one place: their status code, `{"detail": ...}`, and on a 503 a
Retry-After (the refusal's own estimate, else RETRY_AFTER_S)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.refusals import Refused


def refused_response(request: Request, exc: Refused) -> JSONResponse:
    headers = None
    if exc.status_code == 503:
        headers = {"Retry-After": str(exc.retry_after_s or request.app.state.settings.retry_after_s)}
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)


def install_refusals(app: FastAPI) -> None:
    app.add_exception_handler(Refused, refused_response)
