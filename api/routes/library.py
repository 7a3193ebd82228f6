"""The library: GET /videos, GET and DELETE /videos/{id}, its video, thumbnails and highlight reels, GET /search and
a reel of a search's moments: every stored recognition, across videos."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api.deps import get_services
from api.downloads import reel_name
from common.results import download_name
from service.recognition import sport_labels
from service.library.media import Media
from service.library.store import Library
from service.schemas import ErrorDetail

router = APIRouter(tags=["library"])

Limit = Annotated[int, Query(ge=1, le=200, description="how many on this page")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="how many to skip")]
Since = Annotated[datetime | None, Query(description="stored at or after (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="stored before (ISO 8601)")]
SportQuery = Annotated[str | None, Query(description="a sport's labels instead (GET /sports lists them)")]
PadS = Annotated[float, Query(ge=0, le=30, description="seconds shown before and after each moment")]
ERRORS = {code: {"model": ErrorDetail} for code in (401, 404, 422, 503)}
REEL_ERRORS = {code: {"model": ErrorDetail} for code in (401, 404, 410, 422, 503, 507)}
MP4 = {200: {"content": {"video/mp4": {}}, "description": "the reel, H.264 MP4 with the audio"}}


def _library(request: Request) -> Library:
    return get_services(request).library  # 503 while the service starts


def _media(request: Request) -> Media:
    return get_services(request).media


def _with_links(video: dict) -> dict:
    """A stored video's summary with where to get its stored result, poster and video (while kept)."""
    base = f"/videos/{video['video_id']}"
    return {**video, "result_url": base, "thumbnail_url": f"{base}/thumbnail",
            "video_url": f"{base}/video" if video["has_video"] else None}


async def _bytes_of(request: Request, video_id: str) -> tuple[str, str]:
    found = await run_in_threadpool(_library(request).bytes_of, video_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")
    return found


def _labels(label: list[str] | None, sport: str | None) -> list[str] | None:
    """The labels asked for: `label` (repeated), or a sport's; 422 for an unknown sport."""
    if sport is None:
        return label or None
    return [*(label or []), *sport_labels(sport)]  # Refused: 422


@router.get("/videos", responses=ERRORS, summary="The stored videos, newest first")
async def list_videos(request: Request, limit: Limit = 20, offset: Offset = 0, since: Since = None, until: Until = None,
                      label: Annotated[list[str] | None, Query(description="only videos with a moment of this")] = None,
                      sport: SportQuery = None):
    total, videos = await run_in_threadpool(_library(request).videos, limit=limit, offset=offset,
                                            labels=_labels(label, sport), since=since, until=until)
    return {"total": total, "limit": limit, "offset": offset, "videos": [_with_links(video) for video in videos]}


@router.get("/videos/{video_id}", responses=ERRORS, summary="A stored video's result")
async def get_video(video_id: str, request: Request):
    result = await run_in_threadpool(_library(request).get, video_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")
    return result


@router.delete("/videos/{video_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS,
               summary="Delete a stored video: its result, moments, kept video, thumbnails and reels")
async def delete_video(video_id: str, request: Request):
    library = _library(request)
    sha, _ = await _bytes_of(request, video_id)
    if not await run_in_threadpool(library.delete, video_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")
    still_used = await run_in_threadpool(library.analysed, sha)  # the same bytes, analysed another way
    await run_in_threadpool(lambda: _media(request).forget(sha, video_id, bytes_still_used=still_used))


@router.get("/videos/{video_id}/video", response_class=FileResponse, responses=REEL_ERRORS,
            summary="The stored video itself, for playback (byte ranges) or download")
async def get_video_file(video_id: str, request: Request):
    sha, name = await _bytes_of(request, video_id)
    source = _media(request).source(sha)
    if source is None:
        raise HTTPException(status.HTTP_410_GONE, "the video is no longer kept in the library (KEEP_VIDEOS, and "
                                                  "MEDIA_MAX_GB lets the oldest go); its analysis stays")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"  # the stored name, not the whole result
    return FileResponse(source, media_type=kind, content_disposition_type="inline",
                        filename=download_name({"video": {"filename": name}}, "." + name.rpartition(".")[2]))


@router.get("/videos/{video_id}/thumbnail", response_class=FileResponse, responses=ERRORS,
            summary="A JPEG still: the frame at `at` while the video is kept, else its poster")
async def get_thumbnail(video_id: str, request: Request,
                        at: Annotated[float | None, Query(ge=0, le=86_400, description="seconds into the video")] = None):
    sha, _ = await _bytes_of(request, video_id)
    media = _media(request)
    still = await run_in_threadpool(media.poster if at is None else lambda s: media.thumbnail(s, at), sha)
    if still is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this video has no still (it could not be read)")
    return FileResponse(still, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/videos/{video_id}/highlights", response_class=FileResponse, responses=MP4 | REEL_ERRORS,
            summary="A stored video's highlight reel: every moment of the actions asked for, padded, in one MP4")
def get_video_highlights(video_id: str, request: Request,
                         label: Annotated[list[str], Query(min_length=1, description="an action with moments in the "
                                                                                     "result (repeat for several)")],
                         pad_s: PadS = 2.0):
    result = _library(request).get(video_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such video in the library")
    reel, cut = _media(request).reel(result["video"]["sha256"], video_id, result, label, pad_s)  # Refused: 4xx, 503
    return FileResponse(reel, media_type="video/mp4", filename=reel_name(result, label), headers={"X-Reel-Cut": cut})


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
    for moment in moments:
        moment["thumbnail_url"] = f"/videos/{moment['video_id']}/thumbnail?at={moment['peak_s']:.1f}"
    return {"total": total, "limit": limit, "offset": offset, "moments": moments}


@router.get("/search/highlights", response_class=FileResponse, responses=MP4 | REEL_ERRORS,
            summary="One reel of a search's moments across videos: the most confident first, as many as fit in max_s")
def search_highlights(request: Request, since: Since = None, until: Until = None, pad_s: PadS = 1.0,
                      label: Annotated[list[str] | None, Query(description="an action (repeat for several)")] = None,
                      sport: SportQuery = None,
                      min_confidence: Annotated[float, Query(ge=0, le=1, description="moments at least this sure")] = 0.0,
                      max_s: Annotated[float, Query(ge=1, le=600, description="the reel's longest length")] = 120.0):
    labels = _labels(label, sport)
    if not labels:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a reel of a search needs a label (or a sport)")
    moments = _library(request).reel_moments(labels=labels, min_confidence=min_confidence, since=since, until=until,
                                             pad_s=pad_s, max_s=max_s)
    if not moments:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "no moment of those actions in a video the library "
                                                                   "still keeps (GET /search lists every moment)")
    reel = _media(request).search_reel([(m["sha256"], m["start_s"], m["end_s"]) for m in moments])  # Refused: 410...
    name = reel_name({"video": {"filename": "search"}}, labels)
    return FileResponse(reel, media_type="video/mp4", filename=name, headers={"X-Reel-Moments": str(len(moments))})
