"""POST /jobs, GET /jobs/{id}, its windows so far, and DELETE /jobs/{id}: recognition with progress, for long
videos, the page and curl."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import RecognitionsDep, SegmentsDep, SettingsDep, SportQuery, accepting_work
from api.routes.recognize import CSV_RESPONSE, REQUEST_BODY, Format, export_response
from api.uploads import save_video
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
    await run_in_threadpool(request.app.state.jobs.submit, job)
    return JSONResponse(job.public(), status.HTTP_202_ACCEPTED, headers={"Location": f"/jobs/{job.id}"})


@router.get("/{job_id}", response_model=JobStatus,
            responses={200: CSV_RESPONSE, 404: {"model": ErrorDetail}, 409: {"model": ErrorDetail},
                       503: {"model": ErrorDetail}})
def get_job(job_id: str, request: Request, format: Format = "json"):
    job = request.app.state.jobs.get(job_id)  # ExecutorUnavailable: 503
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    public = job.public()
    if format == "json":
        return public
    if public["status"] == "failed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the job failed, so it has no moments or clips: {public['error']['detail']}")
    if public["status"] != "done":
        raise HTTPException(status.HTTP_409_CONFLICT, f"the job is {public['status']}; its moments and clips come when it is done")
    return export_response(public["result"], format)


@router.get("/{job_id}/windows", response_model=JobWindows, responses={404: {"model": ErrorDetail}, 503: {"model": ErrorDetail}},
            summary="The windows a job has done so far, while it runs")
def get_job_windows(job_id: str, request: Request, since: Annotated[int, Query(ge=0)] = 0):
    jobs = request.app.state.jobs
    windows = jobs.windows(job_id, since)  # ExecutorUnavailable: 503
    job = jobs.get(job_id)
    if windows is None or job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    return {"id": job_id, "status": job.status, "windows": windows, "next": since + len(windows)}


@router.delete("/{job_id}", response_model=JobStatus, status_code=status.HTTP_202_ACCEPTED,
               responses={404: {"model": ErrorDetail}, 503: {"model": ErrorDetail}},
               summary="Cancel a job: at once while it waits, within a second while it runs")
def cancel_job(job_id: str, request: Request):
    job = request.app.state.jobs.cancel(job_id)  # ExecutorUnavailable: 503
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (finished jobs expire)")
    return job.public()
