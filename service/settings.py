"""The service's settings, read once from the environment (or a .env file): the API and the queue workers
read the same ones. The model's own (handle, head, clips, runtime, ...) are `ModelSettings`, which the
command line reads too."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from models.settings import ModelSettings
from models.video import Sampling, VideoLimits

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class UploadLimits:
    """Built from `Settings.upload_limits`, which holds the defaults."""
    max_bytes: int
    idle_timeout_s: float  # longest silence between two pieces of the body
    timeout_s: float  # longest the whole body may take
    disk_reserve_bytes: int  # free disk an upload must leave


class Settings(ModelSettings):
    """ModelSettings' fields, and how it reads them (a .env file; an empty variable is "not set"), and the rest."""

    shared_chunk_frames: int = Field(384, ge=64, le=4096, description="with EXTRACTION=shared, frames per trunk pass "
                                                                      "(plus 64 of context each side); bounds memory")
    batch_wait_ms: float = Field(20, ge=0, le=1000, description="how long a batch waits to fill with clips of other requests")
    xla: Literal["auto", "on", "off"] = Field("auto", description="compile I3D with XLA (auto: on a GPU only)")
    model_idle_unload_s: float | None = Field(
        None, gt=0, description="unload I3D after this long without work (gives GPU memory back); next request reloads it")
    upload_dir: Path = Field(PROJECT_ROOT / "temp_uploads", description="where uploads wait while they are processed")
    max_upload_mb: int = Field(8192, ge=1, description="largest accepted upload, in MiB (a 90-minute 1080p game is 1-4 GiB)")
    upload_disk_reserve_mb: int = Field(1024, ge=0, description="free disk an upload must leave in UPLOAD_DIR; one that "
                                                               "would not is refused with 507 (before or while it is written)")
    upload_idle_timeout_s: float = Field(30, gt=0, description="an upload that sends nothing for this long gets 408")
    upload_timeout_s: float = Field(3600, gt=0, description="an upload that takes longer than this in all gets 408")
    resumable_ttl_s: float = Field(24 * 3600, gt=0, description="a resumable upload (/uploads, tus) that receives "
                                                                "nothing for this long expires and is swept")
    upload_token_ttl_s: float = Field(900, gt=0, description="how long a browser's upload token (POST /uploads/tokens) "
                                                             "is good for; the page asks for a new one in time")
    upload_token_secret: str | None = Field(None, description="signs upload tokens; the same in every API process "
                                                              "(default: LIVE_TOKEN_SECRET, else the API key)")
    upload_cors_origins: list[str] = Field(["*"], description="origins whose pages may upload resumably straight to "
                                                              "/uploads (keys and tokens go in headers, never cookies)")
    max_header_kib: int = Field(16, ge=1, le=256, description="requests with larger headers in all get 431")
    default_top_k: int = Field(5, ge=1, le=400)
    max_video_duration_s: float = Field(3 * 3600, gt=0, description="longest accepted video, seconds (a game with "
                                                                    "extra time fits)")
    max_video_frames: int = Field(3 * 3600 * 60, ge=1, description="most frames accepted in a video (3 hours at 60 fps)")
    max_video_pixels: int = Field(3840 * 2160, ge=1, description="largest accepted frame, width x height")
    processing_timeout_s: float = Field(900, gt=0, description="a recognition running longer is stopped; a "
                                                               "synchronous one estimated to take longer is refused "
                                                               "(503) and pointed to /jobs")
    job_seconds_per_video_s: float = Field(2.0, gt=0, description="a job's time limit is PROCESSING_TIMEOUT_S plus "
                                                                  "this many seconds per second of video")
    max_concurrent_requests: int = Field(4, ge=1, description="POST /recognize_action running at once; others wait in line")
    queue_depth: int = Field(64, ge=0, description="POST /recognize_action waiting in line beyond this get 503")
    api_key: str | None = Field(None, description="when set, recognition routes need the header X-API-Key")
    cors_origins: list[str] = Field(default_factory=list, description='origins allowed by CORS, e.g. ["https://a.example"]')
    jobs_max_queued: int = Field(16, ge=1, description="jobs waiting beyond this get 503")
    jobs_workers: int = Field(2, ge=1, le=16, description="jobs run at once (their clips share batches)")
    jobs_ttl_s: int = Field(3600, ge=1, description="how long a finished job's result is kept")
    reel_time_limit_s: float = Field(600, gt=0, description="a highlight reel taking longer to cut is stopped (503)")
    data_dir: Path = Field(PROJECT_ROOT / "var", description="where the library's SQLite database lives (the default)")
    database_url: str | None = Field(None, description="the library's database: postgresql+psycopg://user:pw@host/db "
                                                       "for workers on several machines; unset: SQLite in DATA_DIR")
    keep_videos: bool = Field(True, description="keep each analysed video in MEDIA_DIR for playback, thumbnails and "
                                                 "highlight reels; false: the library keeps results only")
    media_dir: Path | None = Field(None, description="where analysed videos, their posters and reels are kept "
                                                     "(default: DATA_DIR/media); the API and every worker must share it")
    media_max_gb: float = Field(50, ge=0, description="disk the kept videos may take with their reels and thumbnails; "
                                                     "the oldest go first, their analyses stay (has_video: false)")
    reuse_results: bool = Field(True, description="answer the same bytes asked the same way (head, sport, top_k, "
                                                  "moments' and clip settings) from the library at once, cached: true")
    jobs_broker_url: str | None = Field(
        None, description="redis://host:6379/0: the API becomes a gateway that loads no model; recognitions and jobs "
                          "go through this Redis to queue workers (make worker). Unset: one process does it all")
    job_part_s: float = Field(300, ge=10, description="with JOBS_BROKER_URL: a job on a longer video is cut into parts of "
                                                      "about this many seconds, run by several queue workers at once")
    shared_upload_dir: Path | None = Field(
        None, description="with JOBS_BROKER_URL: the folder the API and every worker mount, where uploads wait for a "
                          "worker (default: UPLOAD_DIR)")
    jobs_redeliver_after_s: float | None = Field(
        None, gt=0, description="with JOBS_BROKER_URL: a job whose worker died is run again by another after this long; "
                                "must exceed the longest job (default: the time limit of a job on the longest video, + 120: "
                                "PROCESSING_TIMEOUT_S + JOB_SECONDS_PER_VIDEO_S x MAX_VIDEO_DURATION_S + 120)")
    live_max_sessions: int = Field(2, ge=0, description="live camera sessions open at once (0: live off); each asks "
                                                        "the model for one window every LIVE_HOP / LIVE_FPS seconds")
    live_fps: float = Field(25, gt=0, le=60, description="frames per second live clients send (the model's rate)")
    live_hop: int | None = Field(None, ge=1, le=256, description="frames between live windows (default: CLIP_STRIDE)")
    live_max_frame_kib: int = Field(512, ge=8, le=16384, description="largest live frame (one JPEG message), in KiB")
    live_idle_timeout_s: float = Field(10, gt=0, description="a live session that sends no frame for this long is closed")
    live_token_ttl_s: float = Field(60, gt=0, description="how long a live session token may wait before it is used")
    live_token_secret: str | None = Field(None, description="signs live session tokens; set the same in every API "
                                                            "process behind one load balancer (default: random per process)")
    retry_after_s: int = Field(10, ge=1, description="Retry-After sent with 503")
    drain_timeout_s: float = Field(60, ge=0, description="on SIGTERM, how long admitted recognitions may still run "
                                                        "(new ones get 503); then they are cancelled")
    warm_up: bool = Field(True, description="run a one-clip video through the whole path at start-up so the first request is not slower")
    log_level: str = "INFO"

    @property
    def sampling(self) -> Sampling:
        return Sampling.parse(self.model_fps)

    @property
    def video_limits(self) -> VideoLimits:
        return VideoLimits(max_frames=self.max_video_frames, max_duration_s=self.max_video_duration_s,
                           max_pixels=self.max_video_pixels)

    @property
    def job_upload_dir(self) -> Path:
        """Where uploads wait to be recognized: the shared folder under a broker, else UPLOAD_DIR."""
        return (self.shared_upload_dir or self.upload_dir) if self.jobs_broker_url else self.upload_dir

    @property
    def media_folder(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def redeliver_after_s(self) -> float:
        return self.jobs_redeliver_after_s or self.job_time_limit_s(self.max_video_duration_s) + 120

    def job_time_limit_s(self, duration_s: float) -> float:
        """A job's time limit: it grows with its video, so a game is given the time a game takes."""
        return self.processing_timeout_s + max(0.0, duration_s) * self.job_seconds_per_video_s

    @property
    def upload_limits(self) -> UploadLimits:
        return UploadLimits(max_bytes=self.max_upload_mb * 1024 * 1024, idle_timeout_s=self.upload_idle_timeout_s,
                            timeout_s=self.upload_timeout_s, disk_reserve_bytes=self.upload_disk_reserve_mb * 1024 * 1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
