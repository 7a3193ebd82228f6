"""The composition root: the services for one app, built from its settings and torn down when it stops.

Without a broker one process holds the model (api/backends/local.py), and refuses a second process on its upload
folder before loading anything; with JOBS_BROKER_URL it is a gateway to queue workers (api/backends/gateway.py).
Resumable uploads, their tokens and sweeper are the same in both."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from api.backends.gateway import serving_gateway
from api.backends.local import serving_locally
from api.drain import Drain
from api.services import Services
from api.sole_process import sole_process
from api.uploads.resumable.lifecycle import serving_uploads
from service.settings import Settings


@contextlib.asynccontextmanager
async def composed(settings: Settings, drain: Drain) -> AsyncIterator[Services]:
    if settings.jobs_broker_url:  # no model here: any number of processes
        async with serving_uploads(settings) as uploads, serving_gateway(settings, drain, *uploads) as services:
            yield services
        return
    with sole_process(settings.upload_dir):  # before anything is loaded or swept
        async with serving_uploads(settings) as uploads, serving_locally(settings, drain, *uploads) as services:
            yield services
