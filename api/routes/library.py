"""The library: GET /videos, GET and DELETE /videos/{id}, GET /search: every stored recognition, across videos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from models.sports import UnknownSportError
from models.sports import sport as sport_named
from service.library.store import Library
from service.schemas import ErrorDetail

router = APIRouter(tags=["library"])

Limit = Annotated[int, Query(ge=1, le=200, description="how many on this page")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="how many to skip")]
Since = Annotated[datetime | None, Query(description="stored at or after (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="stored before (ISO 8601)")]
SportQuery = Annotated[str | None, Query(description="a sport's labels instead (GET /sports lists them)")]
ERRORS = {code: {"model": ErrorDetail} for code in (401, 404, 422, 503)}


def _library(request: Request) -> Library:
    library = getattr(request.app.state, "library", None)
    if library is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is still starting")
    return library


def _labels(label: list[str] | None, sport: str | None) -> list[str] | None:
    """The labels asked for: `label` (repeated), or a sport's; 422 for an unknown sport."""
    if sport is None:
        return label or None
    try:
        return [*(label or []), *sport_named(sport).labels]
    except UnknownSportError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.get("/videos", responses=ERRORS, summary="The stored videos, newest first")
async def list_videos(request: Request, limit: Limit = 20, offset: Offset = 0, since: Since = None, until: Until = None,
                      label: Annotated[list[str] | None, Query(description="only videos with a moment of this")] = None,
                      sport: SportQuery = None):
    total, videos = await run_in_threadpool(_library(request).videos, limit=limit, offset=offset,
                                            labels=_labels(label, sport), since=since, until=until)
    return {"total": total, "limit": limit, "offset": offset, "videos": videos}


@router.get("/videos/{video_id}", responses=ERRORS, summary="A stored video's result")
async def get_video(video_id: str, request: Request):
    result = await run_in_threadpool(_library(request).get, video_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")
    return result


@router.delete("/videos/{video_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS,
               summary="Delete a stored video: its result and moments")
async def delete_video(video_id: str, request: Request):
    if not await run_in_threadpool(_library(request).delete, video_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")


@router.get("/search", responses=ERRORS, summary="Moments of an action across every stored video")
async def search(request: Request, limit: Limit = 50, offset: Offset = 0, since: Since = None, until: Until = None,
                 label: Annotated[list[str] | None, Query(description="an action (repeat for several)")] = None,
                 sport: SportQuery = None,
                 min_confidence: Annotated[float, Query(ge=0, le=1, description="moments at least this sure")] = 0.0):
    labels = _labels(label, sport)
    if not labels:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "search needs a label (or a sport)")
    total, moments = await run_in_threadpool(_library(request).search, labels=labels, min_confidence=min_confidence,
                                             since=since, until=until, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "moments": moments}
