"""Running a recognition on the shared model, for the synchronous route and for jobs alike."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from api.drain import Drain
from api.metrics import CLIPS, RUNNING
from api.uploads import SavedUpload, UploadLimits, save_upload
from models.containers import SUPPORTED, sniff_container
from models.recognition.recognizer import ActionRecognizer, Cancelled, ClipSettings, ProcessingTimeout, Progress
from models.video import VideoDecodeError, VideoLimitError, clip_starts, open_video

T = TypeVar("T")


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


async def save_video(request: Request, upload_dir: Path, limits: UploadLimits) -> SavedUpload:
    """The request's video saved to a file the caller owns; 415 (and no file) unless it looks like a video."""
    upload = await save_upload(request, upload_dir, limits)
    try:
        check_container(upload.path)
    except HTTPException:
        upload.path.unlink(missing_ok=True)
        raise
    return upload


CLIENT_GONE = 499  # nginx's "client closed request": logged, never read


def expected_clips(path: Path, clips: ClipSettings) -> int:
    """Clips the video at `path` will give, from its container's frame count (0 when it does not say)."""
    try:
        capture, info = open_video(path)
    except VideoDecodeError:
        return 0
    capture.release()
    return len(clip_starts(info.frames, clips.clip_len, clips.stride))


async def run_while_connected(request: Request, work: Callable[[threading.Event], T], drain: Drain) -> T:
    """`work(cancel)` in a worker thread; `cancel` is set when the client disconnects (or this is cancelled),
    so that the clips nobody will read are skipped, and when a stopping service gives up on the work (503).
    The request's body must have been read."""
    cancel = threading.Event()
    try:
        async with cancelled_on_disconnect(request, cancel):
            with drain.cancellable(cancel):
                return await run_in_threadpool(work, cancel)
    except RecognitionRefused as exc:
        raise stopped_instead(exc, drain) from None
    finally:
        cancel.set()


@contextlib.asynccontextmanager
async def cancelled_on_disconnect(request: Request, cancel: threading.Event) -> AsyncIterator[None]:
    """Set `cancel` if the client disconnects during the block. The request's body must have been read."""
    async def watch() -> None:  # after the body, the only message left to receive is the disconnect
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel.set()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        watcher.cancel()


def stopped_instead(exc: RecognitionRefused, drain: Drain) -> RecognitionRefused:
    """A recognition cancelled by the service's own stop answers 503 (not "client gone")."""
    if exc.status_code == CLIENT_GONE and drain.stopping:
        return RecognitionRefused(503, "the service stopped before this recognition finished; send it again")
    return exc


def check_head(heads: list[str], head: str | None) -> None:
    if head is not None and head not in heads:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown head {head!r}; loaded: {', '.join(heads)}")


def recognize_shared(
    recognizer: ActionRecognizer, path: Path, *, top_k: int, filename: str, head: str | None, timeout_s: float,
    on_progress: Progress | None = None, deadline: float | None = None, cancel: threading.Event | None = None,
) -> dict:
    """A recognition on the shared model (its clips are batched with those of concurrent requests),
    stopped at `deadline` (default: `timeout_s` from now), waiting for the model included, or once `cancel` is set.

    Raises RecognitionRefused (422 not a video or over a limit, 503 past the time limit, 499 cancelled).
    """
    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    with RUNNING.track_inprogress():
        try:
            result = recognizer.recognize(path, top_k_actions=top_k, filename=filename, head=head,
                                          on_progress=on_progress, deadline=deadline, cancel=cancel)
        except VideoDecodeError as exc:
            raise RecognitionRefused(422, f"not a readable video: {exc}") from None
        except VideoLimitError as exc:
            raise RecognitionRefused(422, f"video over a limit: {exc}") from None
        except ProcessingTimeout as exc:
            raise RecognitionRefused(503, f"{exc} ({timeout_s:g} s); try a shorter video") from None
        except Cancelled as exc:
            raise RecognitionRefused(CLIENT_GONE, f"the client went away: {exc}") from None
    CLIPS.inc(len(result["clips"]))
    return result
