"""Prometheus metrics (`GET /metrics`) and the per-request middleware that records them and a request id."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("api.requests")

REQUESTS = Counter("action_api_requests_total", "HTTP requests", ["method", "route", "status"])
ERRORS = Counter("action_api_errors_total", "HTTP requests answered 4xx or 5xx", ["route", "status"])
LATENCY = Histogram(
    "action_api_request_seconds", "Time to answer, upload included", ["route"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640),
)
WAITING = Gauge("action_api_recognitions_waiting", "Synchronous recognitions admitted and waiting for their turn")
ESTIMATED_WAIT = Gauge("action_api_estimated_wait_seconds", "Work admitted, in seconds at the measured clips/s")
LIVE_SESSIONS = Gauge("action_api_live_sessions", "Live sessions open")
LIVE_WINDOWS = Counter("action_api_live_windows_total", "Live windows recognized")
LIVE_WINDOWS_DROPPED = Counter("action_api_live_windows_dropped_total",
                               "Live windows dropped because a newer one came while the model was busy")
ADMISSION_WAIT = Histogram(
    "action_api_admission_wait_seconds", "Time from arrival to the start of recognition, upload included",
    buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640),
)

router = APIRouter(tags=["service"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def install_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(elapsed)
        if response.status_code >= 400:
            ERRORS.labels(route, str(response.status_code)).inc()
        response.headers["X-Request-ID"] = request_id
        if route != "/metrics":
            log.info("request", extra={"request_id": request_id, "method": request.method, "route": route,
                                       "status": response.status_code, "ms": round(elapsed * 1000, 1)})
        return response
