"""Analysing a video: the one use case behind every door. The synchronous route, an in-process job, a queue
worker, a game merged from its parts and the gateway's look-up before it cuts a game all come here, and only
here is a video fingerprinted, looked up in the library, recognized, stored and kept:

    look_up (sha256, the library's answer) -> recognize (the shared model) -> store (library, then media)

Everything that goes wrong is a `Refused`; each door turns it into its own kind of answer."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.recognition.recognizer import ActionRecognizer
from models.recognition.segments import SegmentSettings
from service.library.media import Media
from service.library.store import Library, analysis, fingerprint
from service.recognition import JOB_HINT, ROUTE_HINT, job_time_limit_s, recognize_shared
from service.refusals import Busy, Refused
from service.settings import Settings

log = logging.getLogger("service.analysis")


@dataclass(frozen=True, kw_only=True)
class Asked:
    """What a request chose: how many actions, which head and sport, how moments are found, and the file's name."""
    top_k: int
    filename: str
    head: str | None = None
    sport: str | None = None
    segments: SegmentSettings = field(default_factory=SegmentSettings)

    @classmethod
    def of(cls, job) -> Asked:
        """What a job (`service.jobs.Job`) asks."""
        return cls(top_k=job.top_k, filename=job.filename, head=job.head, sport=job.sport, segments=job.segments)

    def options(self) -> dict:
        """As a queued task carries it (JSON)."""
        return {"top_k": self.top_k, "filename": self.filename, "head": self.head, "sport": self.sport,
                "segments": dataclasses.asdict(self.segments)}

    @classmethod
    def from_options(cls, options: dict) -> Asked:
        return cls(top_k=options["top_k"], filename=options["filename"], head=options.get("head"),
                   sport=options.get("sport"), segments=SegmentSettings(**options.get("segments", {})))


@dataclass(frozen=True)
class LookedUp:
    """A video's fingerprint, the settings its answer depends on, and the library's stored answer if any."""
    sha256: str
    size: int
    analysed: dict
    found: dict | None


class Analyses:
    """Analyses of videos for one process: the library, the media folder and (where a model is loaded) the
    recognizer. The gateway has no recognizer: it looks up and stores, queue workers recognize."""

    def __init__(self, settings: Settings, library: Library, media: Media, recognizer: ActionRecognizer | None = None):
        self.settings, self.library, self.media, self.recognizer = settings, library, media, recognizer

    def analysed(self, asked: Asked) -> dict:
        """The head and every setting that changes the result (`service.library.store.analysis`)."""
        return analysis(self.settings, head=asked.head, sport=asked.sport, top_k=asked.top_k, segments=asked.segments)

    def look_up(self, video: Path, asked: Asked) -> LookedUp:
        """The video's fingerprint and, with REUSE_RESULTS, the stored answer for its bytes asked this way: its
        media kept again if it had gone (the upload moved into the media folder). 503 when the library is away."""
        sha256, size = fingerprint(video)
        analysed = self.analysed(asked)
        found = self.library.answer(sha256, analysed, asked.filename) if self.settings.reuse_results else None
        if found is not None:
            self.media.keep(found, video, self.library)
        return LookedUp(sha256, size, analysed, found)

    def stored_answer(self, video: Path, asked: Asked) -> dict | None:
        """The stored answer, or None, also when the library is away: a game is then run on the workers, and
        stored once it is back."""
        if not self.settings.reuse_results:
            return None
        try:
            return self.look_up(video, asked).found
        except Refused as exc:
            log.warning("could not look a video up in the library", extra={"detail": exc.detail})
            return None

    def recognize(self, video: Path, asked: Asked, *, timeout_s: float | None = None, hint: str = JOB_HINT,
                  deadline: float | None = None, on_progress=None, on_window: Callable[[dict], None] | None = None,
                  cancel=None) -> dict:
        """The video on the shared model (its clips batched with others'), within `timeout_s` (default: a job's,
        which grows with the video). Refused: 422 not a video or over a limit, 503 too slow, 499 cancelled."""
        if self.recognizer is None:
            raise Busy("no model in this process")
        return recognize_shared(
            self.recognizer, video, top_k=asked.top_k, filename=asked.filename, head=asked.head,
            timeout_s=job_time_limit_s(self.settings, video) if timeout_s is None else timeout_s, hint=hint,
            deadline=deadline, on_progress=on_progress, on_window=on_window, cancel=cancel, segments=asked.segments,
            sport=asked.sport)

    def store(self, video: Path, looked: LookedUp, result: dict) -> dict:
        """`result` kept in the library (in one transaction: done only once stored), then the video in the media
        folder for playback and reels; returns the stored result, with its `video_id`."""
        stored = self.library.keep(result, sha256=looked.sha256, size=looked.size, analysed=looked.analysed)
        self.media.keep(stored, video, self.library)
        return stored

    def store_new(self, video: Path, asked: Asked, result: dict) -> dict:
        """A result made elsewhere (a game merged from its parts) stored as `store` does."""
        sha256, size = fingerprint(video)
        return self.store(video, LookedUp(sha256, size, self.analysed(asked), None), result)

    def analyse(self, video: Path, asked: Asked, *, timeout_s: float | None = None, hint: str = JOB_HINT,
                **progress) -> dict:
        """The whole use case: the stored answer, or a recognition stored. `progress`: on_progress, on_window,
        cancel, deadline as `recognize` takes them."""
        looked = self.look_up(video, asked)
        if looked.found is not None:
            return looked.found
        return self.store(video, looked, self.recognize(video, asked, timeout_s=timeout_s, hint=hint, **progress))


__all__ = ["Analyses", "Asked", "LookedUp", "ROUTE_HINT", "JOB_HINT", "SegmentSettings"]
