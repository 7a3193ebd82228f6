"""POST /recognize_action: a video in, ranked actions out."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from api.admission import Busy
from api.deps import RecognizerDep, SettingsDep, accepting_work
from api.service import (
    RecognitionRefused, check_container, check_head, expected_clips, recognize_shared, run_while_connected,
)
from api.schemas import ErrorDetail, RecognitionResult
from api.uploads import FIELD_NAME, saved_upload

router = APIRouter(tags=["recognition"])
log = logging.getLogger("api.recognize")

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
        "Retry-After only when the line is full or the wait would pass the time limit, or while the service stops."
    ),
    responses={code: {"model": ErrorDetail} for code in (400, 401, 413, 415, 422, 503)},
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[Depends(accepting_work)],
)
async def recognize_action(
    request: Request,
    recognizer: RecognizerDep,
    settings: SettingsDep,
    top_k: Annotated[int | None, Query(ge=1, le=400, description="how many whole-video actions to return")] = None,
    head: Annotated[str | None, Query(description="rank with this head, e.g. kinetics400 (default: the served head)")] = None,
) -> dict:
    check_head(recognizer, head)
    admission = request.app.state.admission
    timeout_s = settings.processing_timeout_s
    deadline = time.monotonic() + timeout_s  # the time limit counts from arrival, the wait in line included
    try:
        async with admission.admit(timeout_s) as ticket, \
                saved_upload(request, settings.upload_dir, settings.upload_limits) as upload:
            check_container(upload.path)
            ticket.clips_left = await run_in_threadpool(expected_clips, upload.path, recognizer.clips) or ticket.clips_left
            try:
                await admission.turn(ticket, deadline)
            except TimeoutError:
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                    f"waited in line past the {timeout_s:g} s time limit; try again later",
                                    headers={"Retry-After": str(settings.retry_after_s)}) from None
            result = await run_while_connected(request, lambda cancel: recognize_shared(
                recognizer, upload.path, top_k=top_k or settings.default_top_k, filename=upload.filename, head=head,
                timeout_s=timeout_s, deadline=deadline, on_progress=ticket.progress, cancel=cancel),
                request.app.state.drain)
    except Busy as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.detail,
                            headers={"Retry-After": str(exc.retry_after_s)}) from None
    except RecognitionRefused as exc:
        headers = {"Retry-After": str(settings.retry_after_s)} if exc.status_code == 503 else None
        raise HTTPException(exc.status_code, exc.detail, headers=headers) from None
    admission.rate.record(len(result["clips"]), result["timings_ms"]["inference"] / 1000)
    top = result["actions"][0]["label"] if result["actions"] else None
    log.info("recognized", extra={"request_id": request.state.request_id, "bytes": upload.size,
                                  "clips": len(result["clips"]), "top": top, "ms": result["timings_ms"]["total"]})
    return result
