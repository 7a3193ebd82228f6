"""Recognitions in this process (no broker): the model, the line of waiting requests (api/admission.py),
in-process jobs and live sessions; `serving_locally` builds them for as long as the app serves."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api.admission import Admission
from api.backends.connection import run_while_connected, stopped_instead
from api.drain import Drain
from api.live.session import LiveService
from api.live.tokens import LiveTokens
from api.services import Services
from api.uploads.resumable.store import UploadStore
from api.uploads.streaming import saved_upload, sweep_uploads
from api.uploads.tokens import SignedTokens
from service import metrics
from service.analysis import ROUTE_HINT, Analyses, Asked, SegmentSettings
from service.jobs import InProcessJobs, Job
from service.library.media import Media
from service.library.store import Library
from service.live import LiveRecognition, LiveSettings
from service.model import ActionRecognizer, describe, open_recognizer
from service.recognition import check_container, check_head, check_sport, expected_clips
from service.refusals import Busy, Refused
from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings

log = logging.getLogger("api.recognize")


class LocalRecognitions:
    def __init__(self, recognizer: ActionRecognizer, analyses: Analyses, admission: Admission, drain: Drain,
                 jobs: InProcessJobs, live: LiveService):
        self.recognizer, self.analyses, self.admission, self.drain = recognizer, analyses, admission, drain
        self.jobs, self.live = jobs, live

    def check_head(self, head: str | None) -> None:
        check_head(list(self.recognizer.heads), head)

    def check_sport(self, sport: str | None, head: str | None) -> None:
        check_sport(sport, head, self.recognizer.head.name, list(self.recognizer.heads))

    def model(self) -> ModelInfo:
        return describe(self.recognizer)

    def labels(self) -> Labels:
        return Labels(head=self.recognizer.head.name, labels=list(self.recognizer.head.labels))

    def health(self) -> tuple[Health, int]:
        return Health(status="ok", model_loaded=True), 200

    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None,
                        segments: SegmentSettings, sport: str | None) -> dict:
        """Wait in line (503 when the line is full or the wait would pass the time limit), then run on the
        shared model; the time limit counts from arrival, the wait included."""
        recognizer = self.recognizer
        check_head(list(recognizer.heads), head)
        self.check_sport(sport, head)
        admission = self.admission
        timeout_s = settings.processing_timeout_s
        deadline = time.monotonic() + timeout_s
        async with admission.admit(timeout_s) as ticket, \
                saved_upload(request, settings.upload_dir, settings.upload_limits) as upload:
            check_container(upload.path)
            analyses = self.analyses
            asked = Asked(top_k=top_k or settings.default_top_k, filename=upload.filename, head=head, sport=sport,
                          segments=segments)
            looked = await run_in_threadpool(analyses.look_up, upload.path, asked)
            if looked.found is not None:
                log.info("answered from the library", extra={"request_id": request.state.request_id,
                                                             "video_id": looked.found["video_id"]})
                return looked.found
            ticket.clips_left = (await run_in_threadpool(expected_clips, upload.path, recognizer.clips)
                                 or ticket.clips_left)
            if admission.rate.clips_per_s and ticket.clips_left / admission.rate.clips_per_s > timeout_s:
                raise Busy(f"this video would take about {ticket.clips_left / admission.rate.clips_per_s:.0f} s here, "
                           f"past this route's {timeout_s:g} s time limit; {ROUTE_HINT}")
            try:
                await admission.turn(ticket, deadline)
            except TimeoutError:
                raise Busy(f"waited in line past the {timeout_s:g} s time limit; try again later") from None
            result = await run_while_connected(request, lambda cancel: analyses.recognize(
                upload.path, asked, timeout_s=timeout_s, hint=ROUTE_HINT, deadline=deadline,
                on_progress=ticket.progress, cancel=cancel), self.drain)
            result = await run_in_threadpool(analyses.store, upload.path, looked, result)
        admission.rate.record(len(result["clips"]), result["timings_ms"]["inference"] / 1000)
        top = result["actions"][0]["label"] if result["actions"] else None
        log.info("recognized", extra={"request_id": request.state.request_id, "bytes": upload.size,
                                      "clips": len(result["clips"]), "top": top, "ms": result["timings_ms"]["total"]})
        return result

    def in_flight(self) -> int:  # a stopping service closes live sessions (1001) within a second
        return self.admission.in_flight() + self.jobs.active() + self.live.open


@contextlib.asynccontextmanager
async def serving_locally(settings: Settings, drain: Drain, uploads: UploadStore,
                          upload_tokens: SignedTokens) -> AsyncIterator[Services]:
    """The model, the batcher, admission, jobs, the library and live sessions, for as long as the app serves."""
    swept = sweep_uploads(settings.upload_dir)
    if swept:
        log.info("removed uploads left over from an earlier run", extra={"count": swept})
    recognizer = open_recognizer(settings)
    extractor, clips = recognizer.extractor, recognizer.clips
    admission = Admission(running=lambda: settings.max_concurrent_requests, waiting=lambda: settings.queue_depth,
                          fallback_retry_after_s=lambda: settings.retry_after_s)
    if settings.warm_up:
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        warm = recognizer.warm_up(settings.upload_dir)
        admission.rate.record(len(warm.spans), warm.infer_s)  # a first clips/s for wait estimates
    library = Library.open(settings)
    media = Media.from_settings(settings)
    media.sweep(library)  # MEDIA_MAX_GB may have been lowered
    analyses = Analyses(settings, library, media, recognizer)

    def run_job(job: Job) -> dict:
        try:
            with drain.cancellable(job.cancel):  # DELETE /jobs/{id} sets it too
                return analyses.analyse(job.video, Asked.of(job), on_progress=job.progress,
                                        on_window=job.windows.append, cancel=job.cancel)
        except Refused as exc:
            raise stopped_instead(exc, drain) from None

    jobs = InProcessJobs(run_job, max_queued=settings.jobs_max_queued, ttl_s=settings.jobs_ttl_s,
                         workers=settings.jobs_workers)
    live = LiveService(
        LiveRecognition(recognizer, LiveSettings.of(settings, recognizer), max_sessions=settings.live_max_sessions),
        tokens=LiveTokens(ttl_s=settings.live_token_ttl_s, secret=settings.live_token_secret), drain=drain)
    services = Services(settings=settings, drain=drain, jobs=jobs, library=library, media=media, analyses=analyses,
                        uploads=uploads, upload_tokens=upload_tokens, recognizer=recognizer, admission=admission,
                        live=live, recognitions=LocalRecognitions(recognizer, analyses, admission, drain, jobs, live))
    metrics.JOBS_QUEUED.set_function(jobs.queued)
    metrics.CLIPS_QUEUED.set_function(recognizer.batcher.queued)
    metrics.CLIPS_CANCELLED.set_function(lambda: recognizer.batcher.stats.cancelled)
    metrics.CLIPS_INFERRED.set_function(lambda: recognizer.batcher.stats.clips)
    metrics.MODEL_LOADED.set_function(lambda: float(extractor.loaded))
    if extractor.gpu_memory_bytes() is not None:
        metrics.GPU_MEMORY.set_function(extractor.gpu_memory_bytes)
    log.info("ready", extra={"runtime": extractor.runtime, "device": extractor.device, "precision": extractor.precision,
                             "stem": extractor.stem, "xla": extractor.xla, "extraction": clips.extraction_id,
                             "batch_size": clips.batch_size})
    try:
        yield services
    finally:
        jobs.close()
        library.close()
        recognizer.close()
        extractor.close()
