"""Named dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated, Protocol

from fastapi import Depends, Header, HTTPException, Request, status

from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings, get_settings


class Recognitions(Protocol):
    """Where recognitions run: in this process (api/local.py) or on queue workers (api/gateway.py). The
    routes see only this, and the JobExecutor on `app.state.jobs`."""

    def check_head(self, head: str | None) -> None: ...  # Refused (422) for a head that is not served
    def model(self) -> ModelInfo: ...
    def labels(self) -> Labels: ...
    def health(self) -> tuple[Health, int]: ...
    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None) -> dict: ...
    def in_flight(self) -> int: ...  # recognitions and jobs a stopping process waits for


def get_recognitions(request: Request) -> Recognitions:
    recognitions = getattr(request.app.state, "recognitions", None)
    if recognitions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is still starting")
    return recognitions


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_api_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """When API_KEY is set, the X-API-Key header must carry it (compared in constant time)."""
    if settings.api_key and not (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "X-API-Key"})


def accepting_work(request: Request, settings: SettingsDep) -> None:
    """New recognitions and jobs: 503 with Retry-After while the service drains (api/drain.py)."""
    request.app.state.drain.refuse_new_work(settings.retry_after_s)


RecognitionsDep = Annotated[Recognitions, Depends(get_recognitions)]
