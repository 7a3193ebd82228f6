"""POST /recognize_action: a video in, ranked actions out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import RecognitionsDep, SegmentsDep, SettingsDep, SportQuery, accepting_work
from service.schemas import ErrorDetail, RecognitionResult
from api.uploads import FIELD_NAME
from common.exports import chapters_vtt, edit_decision_list, spotting
from common.results import clips_csv, download_name

router = APIRouter(tags=["recognition"])

CSV_RESPONSE = {"content": {"text/csv": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}},
                            "text/plain": {"schema": {"type": "string"}}},
                "description": "csv: a row per segment, then per clip; vtt: WebVTT chapters of the segments; edl: a "
                               "CMX 3600 edit decision list of them; spotting: their peaks as SoccerNet's "
                               "results_spotting.json"}
Format = Annotated[Literal["json", "csv", "vtt", "edl", "spotting"], Query(
    description="json: the result; csv: its moments and clips as a table; vtt: chapters; edl: an edit decision "
                "list; spotting: SoccerNet's results_spotting.json")]
# format: (make it, media type, file name suffix)
EXPORTS = {"csv": (clips_csv, "text/csv; charset=utf-8", ".clips.csv"),
           "vtt": (chapters_vtt, "text/vtt; charset=utf-8", ".chapters.vtt"),
           "edl": (edit_decision_list, "text/plain; charset=utf-8", ".moments.edl"),
           "spotting": (spotting, "application/json", ".results_spotting.json")}


def export_response(result: dict, format: str) -> Response:
    """The result in `format` (not json) as a download named after its video."""
    make, media_type, suffix = EXPORTS[format]
    return Response(make(result), media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download_name(result, suffix)}"'})

REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FIELD_NAME],
                "properties": {FIELD_NAME: {"type": "string", "format": "binary", "description": "MP4, AVI, MKV, ..."}},
            }
        },
        "video/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


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
