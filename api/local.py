"""Recognitions in this process (no broker): the model, the line of waiting requests (api/admission.py) and
in-process jobs, all on `app.state`."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from api.connection import run_while_connected
from api.uploads import saved_upload
from service.analysis import ROUTE_HINT, Analyses, Asked, SegmentSettings
from service.model import ActionRecognizer, describe
from service.recognition import check_container, check_head, check_sport, expected_clips
from service.refusals import Busy
from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings

log = logging.getLogger("api.recognize")


class LocalRecognitions:
    def __init__(self, app: FastAPI):
        self.app = app

    @property
    def recognizer(self) -> ActionRecognizer:
        recognizer = getattr(self.app.state, "recognizer", None)
        if recognizer is None:
            raise Busy("the model is not loaded yet")
        return recognizer

    def check_head(self, head: str | None) -> None:
        check_head(list(self.recognizer.heads), head)

    def check_sport(self, sport: str | None, head: str | None) -> None:
        check_sport(sport, head, self.recognizer.head.name, list(self.recognizer.heads))

    def model(self) -> ModelInfo:
        return describe(self.recognizer)

    def labels(self) -> Labels:
        return Labels(head=self.recognizer.head.name, labels=list(self.recognizer.head.labels))

    def health(self) -> tuple[Health, int]:
        loaded = getattr(self.app.state, "recognizer", None) is not None
        return Health(status="ok" if loaded else "starting", model_loaded=loaded), 200

    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None,
                        segments: SegmentSettings, sport: str | None) -> dict:
        """Wait in line (503 when the line is full or the wait would pass the time limit), then run on the
        shared model; the time limit counts from arrival, the wait included."""
        recognizer = self.recognizer
        check_head(list(recognizer.heads), head)
        self.check_sport(sport, head)
        admission = self.app.state.admission
        timeout_s = settings.processing_timeout_s
        deadline = time.monotonic() + timeout_s
        async with admission.admit(timeout_s) as ticket, \
                saved_upload(request, settings.upload_dir, settings.upload_limits) as upload:
            check_container(upload.path)
            analyses: Analyses = self.app.state.analyses
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
                on_progress=ticket.progress, cancel=cancel), self.app.state.drain)
            result = await run_in_threadpool(analyses.store, upload.path, looked, result)
        admission.rate.record(len(result["clips"]), result["timings_ms"]["inference"] / 1000)
        top = result["actions"][0]["label"] if result["actions"] else None
        log.info("recognized", extra={"request_id": request.state.request_id, "bytes": upload.size,
                                      "clips": len(result["clips"]), "top": top, "ms": result["timings_ms"]["total"]})
        return result

    def in_flight(self) -> int:
        state = self.app.state
        live = getattr(state, "live", None)  # a stopping service closes live sessions (1001) within a second
        return state.admission.in_flight() + state.jobs.active() + (live.open if live else 0)
