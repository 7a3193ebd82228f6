"""The model's settings, read once from the environment (or a .env file): the command line takes its defaults
from them, and the service's `Settings` extends them, so both read the same names, defaults and limits.

Light on purpose (pydantic and paths only): `python -m models --help` builds them before any command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.paths import DEFAULT_FEATURE_CACHE, DEFAULT_SAVED_MODEL

Runtime = Literal["auto", "tensorflow", "openvino"]
Precision = Literal["auto", "float32", "bfloat16", "float16", "int8"]
Extraction = Literal["windows", "shared"]


class ModelSettings(BaseSettings):
    # An empty variable (HEAD_PATH= in .env) means "not set".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True, protected_namespaces=())

    model_handle: str = Field(str(DEFAULT_SAVED_MODEL), description="SavedModel path or TF Hub handle of the I3D")
    head_path: Path | None = Field(None, description="trained head directory (python -m models train); unset: Kinetics-400")
    clip_length: int = Field(64, ge=9, le=256, description="frames per clip")
    clip_stride: int = Field(32, ge=1, le=256, description="frames between clip starts")
    model_fps: str = Field("25", pattern=r"^(source|\d+(\.\d+)?)$",
                           description="frames a second the model sees, sampled by timestamp, so a clip of 64 is "
                                       "2.56 s whatever the video's rate (I3D was trained at 25); source: every frame")
    extraction: Extraction = Field(
        "windows", description="windows: each clip its own I3D pass; shared: clips pooled from one trunk pass over long "
                               "stretches (about 1.5x less compute, not identical: docs/performance.md)")
    tta: bool = Field(False, description="test-time views: rank from the average of the three crops, mirrored and not "
                                         "(6x the work a video; docs/training.md has its gain)")
    recompute_below: float = Field(0, ge=0, le=1, description="with EXTRACTION=shared, re-run clip by clip the clips "
                                                               "whose top-1 probability is under this")
    decode_workers: int | None = Field(None, ge=1, le=32, description="parts of a long video decoded at once, each "
                                                                     "by its own decoder (default: 1 on 2 cores, half "
                                                                     "the cores up to 8 beyond); the same windows")
    batch_size: int | None = Field(None, ge=1, le=64, description="clips per I3D forward pass (default: 1 on CPU, 8 on GPU)")
    runtime: Runtime = Field("auto", description="auto: TensorFlow on a CUDA GPU, OpenVINO on a CPU")
    precision: Precision = Field(
        "auto", description="auto: float16 on tensor-core GPUs; on a CPU, int8 where `make setup` found it passing the "
                            "accuracy rule on this kind of CPU, else bfloat16 with AMX/AVX512-BF16, else float32")
    live_head_context: int = Field(4, ge=1, le=64, description="windows a trained head ranks together in a live session "
                                                               "(the Kinetics-400 head ranks each window alone)")
    feature_cache: Path = Field(DEFAULT_FEATURE_CACHE, description="where train, finetune and evaluate keep the I3D "
                                                                   "outputs of their videos")
