"""POST /jobs, GET /jobs/{id}, its windows so far, and DELETE /jobs/{id}: recognition with progress, for long
videos, the page and curl."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from api.deps import RecognitionsDep, SegmentsDep, SettingsDep, SportQuery, accepting_work, get_services
from api.downloads import CSV_RESPONSE, Format, export_response, reel_name
from api.uploads.streaming import REQUEST_BODY, save_video
from service.jobs import Job
from service.schemas import ErrorDetail, JobStatus, JobWindows

router = APIRouter(prefix="/jobs", tags=["recognition"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobStatus,
    summary="Queue a recognition and follow its progress",
    description="Same inputs as `POST /recognize_action`. Answers 202 with the job's id at once; "
                "poll `GET /jobs/{id}`. 503 with Retry-After when the queue is full.",
    responses={code: {"model": ErrorDetail} for code in (400, 401, 413, 415, 422, 503)},
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[Depends(accepting_work)],
)
async def create_job(
    request: Request,
    recognitions: RecognitionsDep,
    settings: SettingsDep,
    segments: SegmentsDep,
    sport: SportQuery = None,
    top_k: Annotated[int | None, Query(ge=1, le=400)] = None,
    head: Annotated[str | None, Query()] = None,
):
    recognitions.check_head(head)
    recognitions.check_sport(sport, head)
    upload = await save_video(request, settings.job_upload_dir, settings.upload_limits)
    job = Job(video=upload.path, filename=upload.filename, top_k=top_k or settings.default_top_k, head=head,
              segments=segments, sport=sport)
    # QueueFullError, or ExecutorUnavailable (its broker is away): 503, and the file is deleted
    await run_in_threadpool(get_services(request).jobs.submit, job)
    return JSONResponse(job.public(), status.HTTP_202_ACCEPTED, headers={"Location": f"/jobs/{job.id}"})


@router.get("/{job_id}", response_model=JobStatus,
            responses={200: CSV_RESPONSE, 404: {"model": ErrorDetail}, 409: {"model": ErrorDetail},
                       503: {"model": ErrorDetail}})
def get_job(job_id: str, request: Request, format: Format = "json"):
    if format == "json":
        job = get_services(request).jobs.get(job_id)  # ExecutorUnavailable: 503
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
        return job.public()
    return export_response(_done(request, job_id)["result"], format)


def _done(request: Request, job_id: str) -> dict:
    """A finished job's public state: 404 for an unknown job, 409 until it is done (or when it failed)."""
    job = get_services(request).jobs.get(job_id)  # ExecutorUnavailable: 503
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    public = job.public()
    if public["status"] == "failed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the job failed, so it has no moments or clips: {public['error']['detail']}")
    if public["status"] != "done":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the job is {public['status']}; its moments and clips come when it is done")
    return public


@router.get("/{job_id}/highlights", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}, "description": "the reel, H.264 MP4 with the audio"}}
            | {code: {"model": ErrorDetail} for code in (404, 409, 410, 422, 503, 507)},
            summary="A highlight reel: every moment of the actions asked for, padded, in one MP4")
def get_highlights(
    job_id: str,
    request: Request,
    label: Annotated[list[str], Query(min_length=1, description="an action with moments in the result; repeat it "
                                                                "for several (their moments in time order)")],
    pad_s: Annotated[float, Query(ge=0, le=30, description="seconds shown before and after each moment; moments "
                                                           "whose padding meets are one piece")] = 2.0,
):
    result = _done(request, job_id)["result"]
    media = get_services(request).media  # Refused: 410, 422, 503, 507
    reel, cut = media.reel(result["video"]["sha256"], result["video_id"], result, label, pad_s)
    return FileResponse(reel, media_type="video/mp4", filename=reel_name(result, label), headers={"X-Reel-Cut": cut})


@router.get("/{job_id}/windows", response_model=JobWindows, responses={404: {"model": ErrorDetail}, 503: {"model": ErrorDetail}},
            summary="The windows a job has done so far, while it runs")
def get_job_windows(job_id: str, request: Request, since: Annotated[int, Query(ge=0)] = 0):
    jobs = get_services(request).jobs
    windows = jobs.windows(job_id, since)  # ExecutorUnavailable: 503
    job = jobs.get(job_id)
    if windows is None or job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    return {"id": job_id, "status": job.status, "windows": windows, "next": since + len(windows)}


@router.delete("/{job_id}", response_model=JobStatus, status_code=status.HTTP_202_ACCEPTED,
               responses={404: {"model": ErrorDetail}, 503: {"model": ErrorDetail}},
               summary="Cancel a job: at once while it waits, within a second while it runs")
def cancel_job(job_id: str, request: Request):
    job = get_services(request).jobs.cancel(job_id)  # ExecutorUnavailable: 503
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    return job.public()
