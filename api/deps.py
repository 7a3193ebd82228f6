"""Named dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from api.settings import Settings, get_settings
from models.recognizer import ActionRecognizer


def get_recognizer(request: Request) -> ActionRecognizer:
    recognizer = getattr(request.app.state, "recognizer", None)
    if recognizer is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the model is not loaded yet")
    return recognizer


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_api_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """When API_KEY is set, the X-API-Key header must carry it (compared in constant time)."""
    if settings.api_key and not (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "X-API-Key"})


def accepting_work(request: Request, settings: SettingsDep) -> None:
    """New recognitions and jobs: 503 with Retry-After while the service drains (api/drain.py)."""
    request.app.state.drain.refuse_new_work(settings.retry_after_s)


RecognizerDep = Annotated[ActionRecognizer, Depends(get_recognizer)]
