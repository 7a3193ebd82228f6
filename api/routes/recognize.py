"""POST /recognize_action: a video in, ranked actions out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import RecognitionsDep, SegmentsDep, SettingsDep, SportQuery, accepting_work
from api.downloads import CSV_RESPONSE, Format, export_response
from api.uploads.streaming import REQUEST_BODY
from service.schemas import ErrorDetail, RecognitionResult

router = APIRouter(tags=["recognition"])

@router.post(
    "/recognize_action",
    response_model=RecognitionResult,
    summary="Recognize the actions in a video",
    description=(
        "Send the video as multipart field `video` (`curl -F video=@clip.mp4`) or as the raw body with "
        "`Content-Type: video/*`. The video is cut into clips (64 frames, stride 32 by default), each clip "
        "goes through I3D, and the result ranks actions for the whole video and lists the top 3 per clip. "
        "Beyond MAX_CONCURRENT_REQUESTS running at once, requests wait in line (QUEUE_DEPTH); 503 with "
        "Retry-After only when the line is full or the wait would pass the time limit, or while the service stops. "
        "With a broker (JOBS_BROKER_URL) the video goes to a queue worker and this waits for it: same answers."
    ),
    responses={200: CSV_RESPONSE} | {code: {"model": ErrorDetail} for code in (400, 401, 413, 415, 422, 503)},
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[Depends(accepting_work)],
)
async def recognize_action(
    request: Request,
    recognitions: RecognitionsDep,
    settings: SettingsDep,
    segments: SegmentsDep,
    sport: SportQuery = None,
    top_k: Annotated[int | None, Query(ge=1, le=400, description="how many whole-video actions to return")] = None,
    head: Annotated[str | None, Query(description="rank with this head, e.g. kinetics400 (default: the served head)")] = None,
    format: Format = "json",
):
    result = await recognitions.recognize(request, settings, top_k=top_k, head=head, segments=segments, sport=sport)
    return result if format == "json" else export_response(result, format)
