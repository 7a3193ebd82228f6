"""Named dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated, Protocol

from fastapi import Depends, Header, HTTPException, Query, Request, status

from service.analysis import SegmentSettings
from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings, get_settings


class Recognitions(Protocol):
    """Where recognitions run: in this process (api/local.py) or on queue workers (api/gateway.py). The
    routes see only this, and the JobExecutor on `app.state.jobs`."""

    def check_head(self, head: str | None) -> None: ...  # Refused (422) for a head that is not served
    def check_sport(self, sport: str | None, head: str | None) -> None: ...  # Refused (422): unknown, or not for head
    def model(self) -> ModelInfo: ...
    def labels(self) -> Labels: ...
    def health(self) -> tuple[Health, int]: ...
    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None,
                        segments: SegmentSettings, sport: str | None) -> dict: ...
    def in_flight(self) -> int: ...  # recognitions and jobs a stopping process waits for


def get_recognitions(request: Request) -> Recognitions:
    recognitions = getattr(request.app.state, "recognitions", None)
    if recognitions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is still starting")
    return recognitions


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
