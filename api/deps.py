"""Named dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.settings import Settings, get_settings
from models.recognizer import ActionRecognizer


def get_recognizer(request: Request) -> ActionRecognizer:
    recognizer = getattr(request.app.state, "recognizer", None)
    if recognizer is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the model is not loaded yet")
    return recognizer


SettingsDep = Annotated[Settings, Depends(get_settings)]
RecognizerDep = Annotated[ActionRecognizer, Depends(get_recognizer)]
