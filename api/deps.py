"""Named dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status

from api.services import Recognitions, Services
from service.analysis import SegmentSettings
from service.settings import Settings


def get_services(request: Request) -> Services:
    """The app's services (api/services.py); 503 until its lifespan has built them."""
    services = request.app.state.services
    if services is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is still starting")
    return services


def get_recognitions(services: Annotated[Services, Depends(get_services)]) -> Recognitions:
    return services.recognitions


def get_settings(request: Request) -> Settings:
    """The settings this app was created with (`create_app(settings)`)."""
    return request.app.state.settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def segment_settings(
    min_confidence: Annotated[float | None, Query(gt=0, le=1, description="a segment's action reaches this "
                                                  "probability somewhere (default 0.2)")] = None,
    merge_gap_s: Annotated[float | None, Query(ge=0, le=600, description="segments of one action closer than this "
                                               "are one (default 2)")] = None,
    min_length_s: Annotated[float | None, Query(ge=0, le=3600, description="shorter segments are dropped "
                                                "(default 2)")] = None,
) -> SegmentSettings:
    """How a request's moments are found: the tuned defaults, with what the request changes (422 out of range)."""
    return SegmentSettings().changed(min_confidence=min_confidence, merge_gap_s=merge_gap_s, min_length_s=min_length_s)


SegmentsDep = Annotated[SegmentSettings, Depends(segment_settings)]
SportQuery = Annotated[str | None, Query(description="rank only this sport's labels, e.g. basketball (GET /sports "
                                                     "lists them; Kinetics-400 head only)")]


def require_api_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """When API_KEY is set, the X-API-Key header must carry it (compared in constant time)."""
    if settings.api_key and not (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "X-API-Key"})


def accepting_work(request: Request, settings: SettingsDep) -> None:
    """New recognitions and jobs: 503 with Retry-After while the service drains (api/drain.py)."""
    request.app.state.drain.refuse_new_work(settings.retry_after_s)


RecognitionsDep = Annotated[Recognitions, Depends(get_recognitions)]
