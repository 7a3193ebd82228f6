"""The model as the settings describe it: opened the same way by the API process and by a queue worker. The doors
name its type from here (`ActionRecognizer`), never from models/."""

from __future__ import annotations

import logging

from service.schemas import ModelInfo
from service.settings import Settings
from models.recognition.heads import LstmHead
from models.recognition.recognizer import ActionRecognizer, ClipSettings
from models.recognition.parts import default_decode_workers
from models.recognition.shared_trunk import check_shared_slicing
from models.runtimes.factory import default_batch_size, open_extractor

log = logging.getLogger("service.model")


def open_recognizer(settings: Settings) -> ActionRecognizer:
    """I3D, the clip settings and the served head; impossible settings are refused here, not on a request.
    The caller closes `recognizer` and then `recognizer.extractor`."""
    log.info("loading I3D", extra={"handle": settings.model_handle})
    extractor = open_extractor(settings.model_handle, runtime=settings.runtime, precision=settings.precision,
                               xla=settings.xla)
    clips = ClipSettings(clip_len=settings.clip_length, stride=settings.clip_stride,
                         batch_size=settings.batch_size or default_batch_size(extractor.device),
                         extraction=settings.extraction, recompute_below=settings.recompute_below,
                         chunk_frames=settings.shared_chunk_frames, sampling=settings.sampling,
                         decode_workers=settings.decode_workers or default_decode_workers(), tta=settings.tta)
    if clips.extraction == "shared":
        check_shared_slicing(clips.clip_len, clips.stride, clips.chunk_frames, clips.context)
        extractor.logits_weights()
    head = None
    if settings.head_path:  # refuses a head trained on other features or clip settings
        head = LstmHead(settings.head_path, extractor_id=extractor.extractor_id, feature_dim=extractor.feature_dim,
                        clip_len=clips.clip_len, stride=clips.stride, extraction=clips.extraction_id,
                        frames=clips.frames_id)
        log.info("serving a trained head", extra={"head": head.name, "labels": len(head.labels)})
    return ActionRecognizer(extractor, head=head, clips=clips, limits=settings.video_limits,
                            idle_unload_s=settings.model_idle_unload_s, batch_wait_s=settings.batch_wait_ms / 1000)


def describe(recognizer: ActionRecognizer) -> ModelInfo:
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
        frames=recognizer.clips.frames_id,
        decode_workers=recognizer.clips.decode_workers,
        batch_size=recognizer.clips.batch_size,
    )
