"""FastAPI app: `python -m api` (or `uvicorn api.main:app`). The model is loaded once, in the lifespan; with\nJOBS_BROKER_URL set the app is a gateway to queue workers instead (api/gateway.py)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import metrics as http_metrics
from api.admission import Admission
from api.connection import stopped_instead
from api.cors import CORSByPath
from api.deps import require_api_key
from api.drain import Drain
from api.header_limit import HeaderLimit
from api.live.session import LiveService
from api.live.tokens import LiveTokens
from api.local import LocalRecognitions
from api.refusals import install_refusals
from api.resumable.lifecycle import serving_uploads
from api.routes import jobs, library, live, meta, recognize, uploads
from api.sole_process import sole_process
from api.uploads import sweep_uploads
from common.logs import configure_logging
from service import metrics
from service.jobs import InProcessJobs, Job
from service.library.media import Media
from service.analysis import Analyses, Asked
from service.library.store import Library
from service.live import LiveRecognition, LiveSettings
from service.model import open_recognizer
from service.refusals import Refused
from service.settings import Settings, get_settings

log = logging.getLogger("api")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = app.dependency_overrides.get(get_settings, get_settings)()  # tests override it
    configure_logging(settings.log_level)
    if settings.jobs_broker_url:  # a gateway: no model here, any number of processes
        from api.gateway import serving_gateway

        async with serving_gateway(app, settings), serving_uploads(app, settings):
            yield
        return
    with sole_process(settings.upload_dir):  # refuses a second process before loading anything
        async with _serving(app, settings), serving_uploads(app, settings):
            yield


@asynccontextmanager
async def _serving(app: FastAPI, settings: Settings):
    """The model, the batcher, admission and jobs, for as long as the app serves."""
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
            with app.state.drain.cancellable(job.cancel):  # DELETE /jobs/{id} sets it too
                return analyses.analyse(job.video, Asked.of(job), on_progress=job.progress,
                                        on_window=job.windows.append, cancel=job.cancel)
        except Refused as exc:
            raise stopped_instead(exc, app.state.drain) from None

    app.state.recognizer = recognizer
    app.state.analyses = analyses
    app.state.library = library
    app.state.media = media
    app.state.admission = admission
    app.state.jobs = InProcessJobs(run_job, max_queued=settings.jobs_max_queued, ttl_s=settings.jobs_ttl_s,
                                   workers=settings.jobs_workers)
    app.state.recognitions = LocalRecognitions(app)
    app.state.live = LiveService(
        LiveRecognition(recognizer, LiveSettings.of(settings, recognizer), max_sessions=settings.live_max_sessions),
        tokens=LiveTokens(ttl_s=settings.live_token_ttl_s, secret=settings.live_token_secret), drain=app.state.drain)
    metrics.JOBS_QUEUED.set_function(app.state.jobs.queued)
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
        yield
    finally:
        app.state.jobs.close()
        library.close()
        app.state.live = None
        app.state.recognizer = None
        recognizer.close()
        extractor.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; CORS is read from `settings` here (everything else in the lifespan)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Action recognition API",
        summary="Ranked actions in a video, for the whole video and for each 64-frame clip (I3D, Kinetics-400).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.drain = Drain(lambda: settings.drain_timeout_s)  # begun by api/serve.py on SIGTERM
    app.include_router(recognize.router, dependencies=[Depends(require_api_key)])
    app.include_router(jobs.router, dependencies=[Depends(require_api_key)])
    app.include_router(library.router, dependencies=[Depends(require_api_key)])
    app.include_router(uploads.router)  # the key or a browser's token from POST /uploads/tokens (which needs the key)
    app.include_router(live.router)  # its WebSocket takes a token from POST /live/sessions, which needs the key
    app.include_router(meta.router)
    app.include_router(http_metrics.router)
    http_metrics.install_middleware(app)
    install_refusals(app)
    app.add_middleware(CORSByPath, origins=settings.cors_origins, upload_origins=settings.upload_cors_origins)
    app.add_middleware(HeaderLimit, max_bytes=settings.max_header_kib * 1024)  # outermost: before anything else
    return app


app = create_app()
