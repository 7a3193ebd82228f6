"""Running a recognition on the shared model, for the synchronous route and for jobs alike."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import HTTPException, status

from api.metrics import CLIPS, RUNNING, WAITING
from models.recognizer import ActionRecognizer, Progress


def check_head(recognizer: ActionRecognizer, head: str | None) -> None:
    if head is not None and head not in recognizer.heads:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown head {head!r}; loaded: {', '.join(recognizer.heads)}"
        )


def recognize_serialized(
    recognizer: ActionRecognizer, lock: threading.Lock, path: Path, *, top_k: int, filename: str,
    head: str | None, on_progress: Progress | None = None,
) -> dict:
    """One forward pass at a time on the one model; raises VideoDecodeError for a non-video."""
    WAITING.inc()
    with lock:
        WAITING.dec()
        with RUNNING.track_inprogress():
            result = recognizer.recognize(path, top_k_actions=top_k, filename=filename, head=head,
                                          on_progress=on_progress)
    CLIPS.inc(len(result["clips"]))
    return result
