"""GET /health, /labels, /model: what is running."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from api.deps import RecognizerDep, SettingsDep
from api.schemas import Health, Labels, ModelInfo

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "stopping"}})
def health(request: Request):
    """200 "ok" when serving; 503 "stopping" once a SIGTERM has begun the drain (load balancers stop sending)."""
    loaded = getattr(request.app.state, "recognizer", None) is not None
    if request.app.state.drain.draining:
        return JSONResponse(Health(status="stopping", model_loaded=loaded).model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE)
    return Health(status="ok" if loaded else "starting", model_loaded=loaded)


@router.get("/labels", response_model=Labels)
def labels(recognizer: RecognizerDep) -> Labels:
    return Labels(head=recognizer.head.name, labels=list(recognizer.head.labels))


@router.get("/model", response_model=ModelInfo)
def model(recognizer: RecognizerDep, settings: SettingsDep) -> ModelInfo:
    extractor = recognizer.extractor
    return ModelInfo(
        extractor=extractor.extractor_id,
        handle=extractor.handle,
        head=recognizer.head.name,
        heads=list(recognizer.heads),
        labels=len(recognizer.head.labels),
        runtime=extractor.runtime,
        precision=extractor.precision,
        stem=extractor.stem,
        device=extractor.device,
        xla=extractor.xla,
        loaded=extractor.loaded,
        clip_length=recognizer.clips.clip_len,
        clip_stride=recognizer.clips.stride,
        extraction=recognizer.clips.extraction_id,
        batch_size=recognizer.clips.batch_size,
    )
