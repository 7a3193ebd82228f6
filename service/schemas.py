"""Response schemas (they also document the API at /docs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Action(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1, description="probability under the head that ranked it")


class ClipResult(BaseModel):
    index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int = Field(description="exclusive")
    actions: list[Action] = Field(description="top 3 Kinetics-400 actions of this clip")


class SegmentResult(BaseModel):
    label: str
    start_s: float = Field(description="where the action starts, in the video's seconds")
    end_s: float
    peak_s: float = Field(description="its strongest instant: the centre of the window where the action is most probable")
    confidence: float = Field(ge=0, le=1, description="the action's mean probability over the segment's windows")
    windows: list[int] = Field(description="its first and last windows: indices into `clips`")


class VideoMeta(BaseModel):
    filename: str
    frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    sha256: str | None = Field(None, description="the file's SHA-256: the same bytes are kept once in the library")


class RecognitionResult(BaseModel):
    actions: list[Action] = Field(description="whole-video ranking, most likely first")
    head: str = Field(description="which head ranked `actions`, e.g. kinetics400")
    sport: str | None = Field(None, description="the sport asked for (null: none): `actions` and `segments` hold its "
                                                "labels only")
    segments: list[SegmentResult] = Field(description="the moments: where each action happens, sorted by start "
                                                      "(labels of the head that ranked `actions`; they may overlap)")
    clips: list[ClipResult]
    video: VideoMeta
    timings_ms: dict[str, float]
    video_id: str | None = Field(None, description="where the library keeps it: GET /videos/{video_id}")
    cached: bool = Field(False, description="true: the same bytes asked the same way were answered from the library")


class SportInfo(BaseModel):
    id: str = Field(description="what ?sport= takes")
    name: str
    labels: list[str] = Field(description="its Kinetics-400 labels")


class Sports(BaseModel):
    sports: list[SportInfo]


class Health(BaseModel):
    status: str
    model_loaded: bool = Field(description="this process holds the model (false on a gateway)")
    broker: str | None = Field(None, description="gateway only: ok, or unreachable")
    workers: int | None = Field(None, description="gateway only: queue workers alive")


class ModelInfo(BaseModel):
    extractor: str
    handle: str
    head: str = Field(description="the head that ranks whole videos by default")
    heads: list[str] = Field(description="heads a request may choose with ?head=")
    labels: int
    runtime: str = Field(description="tensorflow or openvino, chosen by hardware unless RUNTIME is set")
    precision: str = Field(description="float32, bfloat16, float16 or int8, chosen by hardware unless PRECISION is set")
    stem: str = Field(description="plain, or space_to_depth (the same function, faster on AMX)")
    device: str
    xla: bool
    loaded: bool = Field(description="false after an idle unload; the next recognition loads it again")
    clip_length: int
    clip_stride: int
    extraction: str = Field(description='windows (each clip its own I3D pass), or shared (pooled from one trunk pass; '
                                        '"shared:recompute<P" re-runs windows less sure than P clip by clip)')
    batch_size: int
    frames: str = Field(description='how frames are decoded and sampled for the model: "pyav-swscale/25fps" (MODEL_FPS)')
    decode_workers: int = Field(1, description="parts of a long video decoded at once (DECODE_WORKERS)")


class Labels(BaseModel):
    head: str
    labels: list[str]


class ErrorDetail(BaseModel):
    detail: str


class JobProgress(BaseModel):
    clips_done: int
    clips_total: int | None = Field(description="estimated from the container until decoding ends")
    eta_s: float | None = Field(None, description="seconds left at the pace so far, while it runs")


class JobError(BaseModel):
    status_code: int
    detail: str


class JobPart(BaseModel):
    start_s: float
    end_s: float
    worker: str | None = Field(description="the queue worker running (or that ran) it")
    state: str = Field(description="queued, running, done, failed or cancelled")


class JobStatus(BaseModel):
    id: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: JobProgress
    result: RecognitionResult | None = None
    error: JobError | None = None
    worker: str | None = Field(None, description="with a broker: the queue worker that ran (or runs) it")
    parts: list[JobPart] | None = Field(None, description="with a broker, a video longer than JOB_PART_S: its parts, "
                                                          "each run by a queue worker at once")


class JobWindows(BaseModel):
    id: str
    status: str
    windows: list[ClipResult] = Field(description="the windows done so far, from `since`, in order")
    next: int = Field(description="pass as `since` to get only the windows done after these")


class UploadToken(BaseModel):
    token: str = Field(description="lets a browser upload resumably: header Upload-Token on every tus request")
    expires_in_s: float = Field(description="good for this long (an upload under way asks for a new one in time)")
    endpoint: str = Field(description="the tus endpoint's path on this API (uploads are created there)")


class LiveSessionToken(BaseModel):
    token: str = Field(description="opens one live session: ws(s)://HOST/live?token=... (single use)")
    expires_in_s: float = Field(description="the token must be used within this time")
    path: str = Field(description="the WebSocket's path on this API")
