"""Running a recognition on the shared model, for the synchronous route and for jobs alike."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from fastapi import HTTPException, Request, status

from api.metrics import CLIPS, RUNNING
from models.containers import SUPPORTED, sniff_container
from models.recognizer import ActionRecognizer, ProcessingTimeout, Progress
from models.video import VideoDecodeError, VideoLimitError


class RecognitionRefused(Exception):
    """What a recognition failure means for the client: an HTTP status and a readable detail."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


def check_container(path: Path) -> None:
    """415 unless the bytes start like a video container we decode (the file name is not trusted)."""
    if sniff_container(path) is None:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"the upload is not a video container this service reads ({SUPPORTED})")


@contextlib.asynccontextmanager
async def admitted(request: Request, settings):
    """Bounded concurrency: past `max_concurrent_requests` synchronous recognitions, 503 with Retry-After
    at once instead of an unbounded queue. (Runs on the event loop, so a plain counter is safe.)"""
    state = request.app.state
    if getattr(state, "in_flight", 0) >= settings.max_concurrent_requests:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"busy: {settings.max_concurrent_requests} recognitions are in progress; try again shortly",
                            headers={"Retry-After": str(settings.retry_after_s)})
    state.in_flight = getattr(state, "in_flight", 0) + 1
    try:
        yield
    finally:
        state.in_flight -= 1


def check_head(recognizer: ActionRecognizer, head: str | None) -> None:
    if head is not None and head not in recognizer.heads:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown head {head!r}; loaded: {', '.join(recognizer.heads)}"
        )


def recognize_shared(
    recognizer: ActionRecognizer, path: Path, *, top_k: int, filename: str, head: str | None, timeout_s: float,
    on_progress: Progress | None = None,
) -> dict:
    """A recognition on the shared model (its clips are batched with those of concurrent requests),
    stopped after `timeout_s`, waiting for the model included.

    Raises RecognitionRefused (422 not a video or over a limit, 503 past the time limit).
    """
    deadline = time.monotonic() + timeout_s
    with RUNNING.track_inprogress():
        try:
            result = recognizer.recognize(path, top_k_actions=top_k, filename=filename, head=head,
                                          on_progress=on_progress, deadline=deadline)
        except VideoDecodeError as exc:
            raise RecognitionRefused(422, f"not a readable video: {exc}") from None
        except VideoLimitError as exc:
            raise RecognitionRefused(422, f"video over a limit: {exc}") from None
        except ProcessingTimeout as exc:
            raise RecognitionRefused(503, f"{exc} ({timeout_s:g} s); try a shorter video") from None
    CLIPS.inc(len(result["clips"]))
    return result
