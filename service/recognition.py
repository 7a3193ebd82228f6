"""One recognition on the shared model, for the synchronous route, in-process jobs and queue workers alike,
and the refusals it can end in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from models import sports
from models.containers import SUPPORTED, sniff_container
from models.recognition.heads import KineticsHead
from models.recognition.recognizer import (ActionRecognizer, Cancelled, ClipSettings, ProcessingTimeout, Progress,
                                          UnknownHeadError)
from models.recognition.segments import SegmentSettings
from models.sports import UnknownSportError
from models.video import VideoDecodeError, VideoLimitError, clip_starts, probe
from service.metrics import CLIPS, RUNNING
from service.refusals import CLIENT_GONE, Busy, Refused
from service.schemas import SportInfo, Sports
from service.settings import Settings


def check_container(path: Path) -> None:
    """415 unless the bytes start like a video container we decode (the file name is not trusted)."""
    if sniff_container(path) is None:
        raise Refused(f"the upload is not a video container this service reads ({SUPPORTED})", status_code=415)


def check_head(heads: list[str], head: str | None) -> None:
    if head is not None and head not in heads:
        raise Refused(f"unknown head {head!r}; loaded: {', '.join(heads)}", status_code=422)


def check_sport(sport: str | None, head: str | None, default_head: str, heads: list[str] | None = None) -> None:
    """422 for a sport that is not known (the message lists them), or one asked of a head with its own labels (of
    `heads` loaded, when known: a fine-tuned I3D ranks no Kinetics-400 labels at all)."""
    if sport is None:
        return
    try:
        sports.sport(sport)
    except UnknownSportError as exc:
        raise Refused(str(exc), status_code=422) from None
    if (head or default_head) != KINETICS_HEAD:
        raise Refused(sport_refusal(head or default_head, heads), status_code=422)


def known_sports() -> Sports:
    """Every sport `?sport=` narrows a ranking to, with its Kinetics-400 labels."""
    return Sports(sports=[SportInfo(id=s.id, name=s.name, labels=list(s.labels)) for s in sports.sports().values()])


def sport_labels(sport: str) -> list[str]:
    """The Kinetics-400 labels of `sport`; 422 for a sport that is not known (the message lists them)."""
    try:
        return list(sports.sport(sport).labels)
    except UnknownSportError as exc:
        raise Refused(str(exc), status_code=422) from None


def sport_refusal(head: str, heads: list[str] | None) -> str:
    if heads is not None and KINETICS_HEAD not in heads:
        return (f"a sport narrows the Kinetics-400 labels, and this service's I3D ranks its own ({head!r}, "
                "fine-tuned): serve the base I3D for sports")
    return f"a sport narrows the Kinetics-400 labels, and the head {head!r} has its own: ask with head={KINETICS_HEAD}"


def expected_clips(path: Path, clips: ClipSettings) -> int:
    """Clips the video at `path` will give, from its container's length (0 when it does not say)."""
    try:
        info = probe(path)
    except VideoDecodeError:
        return 0
    frames = info.frames if clips.sampling.fps is None else round(info.duration_s * clips.sampling.fps)
    return len(clip_starts(frames, clips.clip_len, clips.stride))


def job_time_limit_s(settings: Settings, path: Path) -> float:
    """The time limit of a job on the video at `path`: PROCESSING_TIMEOUT_S, and more for a longer video."""
    try:
        duration_s = probe(path).duration_s
    except VideoDecodeError:
        duration_s = 0.0
    return settings.job_time_limit_s(duration_s)


KINETICS_HEAD = KineticsHead.name

ROUTE_HINT = "try a shorter video, or send it to POST /jobs, whose time limit grows with the video's length"
JOB_HINT = "a job's time limit grows with its video's length (JOB_SECONDS_PER_VIDEO_S)"


def recognize_shared(
    recognizer: ActionRecognizer, path: Path, *, top_k: int, filename: str, head: str | None, timeout_s: float,
    on_progress: Progress | None = None, deadline: float | None = None, cancel: threading.Event | None = None,
    hint: str = ROUTE_HINT, on_window: Callable[[dict], None] | None = None,
    segments: SegmentSettings = SegmentSettings(), sport: str | None = None,
) -> dict:
    """A recognition on the shared model (its clips are batched with those of concurrent requests),
    stopped at `deadline` (default: `timeout_s` from now), waiting for the model included, or once `cancel` is set.

    Raises Refused (422 not a video, over a limit or an unknown head or sport, 503 past the time limit, 499
    cancelled).
    """
    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    with RUNNING.track_inprogress():
        try:
            result = recognizer.recognize(path, top_k_actions=top_k, filename=filename, head=head,
                                          on_progress=on_progress, deadline=deadline, cancel=cancel,
                                          on_window=on_window, segments=segments, sport=sport)
        except VideoDecodeError as exc:
            raise Refused(f"not a readable video: {exc}", status_code=422) from None
        except VideoLimitError as exc:
            raise Refused(f"video over a limit: {exc}", status_code=422) from None
        except UnknownSportError as exc:
            raise Refused(str(exc), status_code=422) from None
        except UnknownHeadError as exc:  # a queue worker serving other heads than the gateway believed
            raise Refused(f"unknown head {exc.args[0]!r}; loaded: {', '.join(recognizer.heads)}", status_code=422) from None
        except ProcessingTimeout as exc:
            raise Busy(f"{exc} ({timeout_s:g} s); {hint}") from None
        except Cancelled as exc:
            raise Refused(f"the client went away: {exc}", status_code=CLIENT_GONE) from None
    CLIPS.inc(len(result["clips"]))
    return result
