"""POST /recognize_action: a video in, ranked actions out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import RecognitionsDep, SettingsDep, accepting_work
from service.schemas import ErrorDetail, RecognitionResult
from api.uploads import FIELD_NAME
from common.results import clips_csv, download_name

router = APIRouter(tags=["recognition"])

CSV_RESPONSE = {"content": {"text/csv": {"schema": {"type": "string"}}},
                "description": "with ?format=csv: one row per clip (start_s, end_s, the top 3 labels and confidences)"}
Format = Annotated[Literal["json", "csv"], Query(description="json: the result; csv: its clips as a table")]


def csv_response(result: dict) -> Response:
    return Response(clips_csv(result), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{download_name(result, ".clips.csv")}"'})

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
    top_k: Annotated[int | None, Query(ge=1, le=400, description="how many whole-video actions to return")] = None,
    head: Annotated[str | None, Query(description="rank with this head, e.g. kinetics400 (default: the served head)")] = None,
    format: Format = "json",
):
    result = await recognitions.recognize(request, settings, top_k=top_k, head=head)
    return csv_response(result) if format == "csv" else result
