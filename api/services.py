"""What the routes use, as one typed object: built from the settings by the composition root (api/composition.py)
for as long as the app serves, and held on `app.state.services`. Routes take it as `ServicesDep`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from api.admission import Admission
from api.drain import Drain
from api.live.session import LiveService
from api.uploads.resumable.store import UploadStore
from api.uploads.tokens import SignedTokens
from service.analysis import Analyses, SegmentSettings
from service.jobs import JobExecutor
from service.library.media import Media
from service.library.store import Library
from service.model import ActionRecognizer
from service.schemas import Health, Labels, ModelInfo
from service.settings import Settings


class Recognitions(Protocol):
    """Where recognitions run: in this process (api/backends/local.py) or on queue workers
    (api/backends/gateway.py). The routes see only this, and the JobExecutor beside it."""

    def check_head(self, head: str | None) -> None: ...  # Refused (422) for a head that is not served
    def check_sport(self, sport: str | None, head: str | None) -> None: ...  # Refused (422): unknown, or not for head
    def model(self) -> ModelInfo: ...
    def labels(self) -> Labels: ...
    def health(self) -> tuple[Health, int]: ...
    async def recognize(self, request: Request, settings: Settings, *, top_k: int | None, head: str | None,
                        segments: SegmentSettings, sport: str | None) -> dict: ...
    def in_flight(self) -> int: ...  # recognitions and jobs a stopping process waits for


@dataclass(kw_only=True)
class Services:
    settings: Settings
    drain: Drain
    recognitions: Recognitions
    jobs: JobExecutor
    library: Library
    media: Media
    analyses: Analyses
    uploads: UploadStore
    upload_tokens: SignedTokens
    recognizer: ActionRecognizer | None = None  # in this process only: a gateway has no model
    admission: Admission | None = None  # the line of synchronous recognitions, in this process only
    live: LiveService | None = None  # live sessions need the model here
