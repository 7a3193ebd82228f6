"""GET /health, /labels, /model, /sports: what is running, and what it can be asked."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from api.deps import RecognitionsDep
from service.recognition import known_sports
from service.schemas import Health, Labels, ModelInfo, Sports

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "stopping, or (gateway) the broker is unreachable"}})
def health(request: Request):
    """200 "ok" when serving; 503 "stopping" once a SIGTERM has begun the drain (load balancers stop sending).
    A gateway (JOBS_BROKER_URL) also says whether Redis answers and how many workers are alive."""
    services = request.app.state.services
    if services is None:
        return Health(status="starting", model_loaded=False)
    body, code = services.recognitions.health()
    if request.app.state.drain.draining:
        body, code = body.model_copy(update={"status": "stopping"}), status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(exclude_none=True), code)


@router.get("/labels", response_model=Labels)
def labels(recognitions: RecognitionsDep) -> Labels:
    return recognitions.labels()


@router.get("/model", response_model=ModelInfo)
def model(recognitions: RecognitionsDep) -> ModelInfo:
    return recognitions.model()


@router.get("/sports", response_model=Sports, summary="The sports ?sport= narrows a ranking to, and their labels")
def list_sports() -> Sports:
    return known_sports()
