"""The app: `create_app(settings)` wires routes and middleware; its lifespan builds the services from those
settings (api/composition.py: the model loaded once, or a gateway to queue workers) and frees them on stop.
Every app has its own settings and services, so tests build as many as they like."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.composition import composed
from api.deps import require_api_key
from api.drain import Drain
from api.middleware import metrics as http_metrics
from api.middleware.cors import CORSByPath
from api.middleware.header_limit import HeaderLimit
from api.middleware.refusals import install_refusals
from api.routes import jobs, library, live, meta, recognize, uploads
from common.logs import configure_logging
from service.settings import Settings

log = logging.getLogger("api")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    async with composed(settings, app.state.drain) as services:
        app.state.services = services
        try:
            yield
        finally:
            app.state.services = None


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Action recognition API",
        summary="Ranked actions in a video, for the whole video and for each 64-frame clip (I3D, Kinetics-400).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = None  # until the lifespan has built them: routes answer 503 "starting"
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
