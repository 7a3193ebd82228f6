"""I3D behind one small interface, whichever runtime runs it (`models.runtimes`).

`extractor(clips)` maps `clips: (N, T, 224, 224, 3) uint8 RGB` to `logits: (N, 400)` and
`features: (N, 1024)`, as numpy. `extractor.trunk_positions(frames)` and `extractor.logits_weights()` serve
`EXTRACTION=shared` (`models.recognition.shared_trunk`). The batcher, the recognizer, training and the benchmark call this
interface and never know which runtime runs. `open_extractor` picks the runtime and precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.runtimes.precision import choose_runtime


@dataclass
class ClipOutputs:
    """`logits: (N, 400) float32`, `features: (N, 1024) float32` for N clips."""

    logits: np.ndarray
    features: np.ndarray


class Extractor(Protocol):
    runtime: str  # "tensorflow" or "openvino"
    precision: str  # "float32", "bfloat16", "float16" or "int8"
    stem: str  # "plain" or "space_to_depth" (the same function)
    device: str  # "CPU" or "GPU:0 (NVIDIA ...)"
    xla: bool
    handle: str
    extractor_id: str
    feature_dim: int

    @property
    def loaded(self) -> bool: ...

    def __call__(self, clips: np.ndarray) -> ClipOutputs: ...

    def trunk_positions(self, frames: np.ndarray) -> np.ndarray:
        """`frames: (N, T, 224, 224, 3) uint8`, T a multiple of 8 -> `(N, T/8, 1024)` Mixed_5c averaged over space."""

    def logits_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The logits layer: `kernel: (1024, 400)`, `bias: (400,)` (logits = features @ kernel + bias)."""

    def load(self): ...

    def unload(self) -> None: ...

    def close(self) -> None: ...

    def gpu_memory_bytes(self) -> int | None: ...


def open_extractor(handle: str, *, runtime: str = "auto", precision: str = "auto", xla: str = "auto",
                   cpu_flags: frozenset[str] | None = None) -> Extractor:
    """I3D from `handle` (the SavedModel `make setup` writes, or a TF Hub handle) on `runtime`:
    "auto" is TensorFlow on a CUDA GPU and OpenVINO on a CPU. `cpu_flags` stands in for
    /proc/cpuinfo's (tests run both CPU kinds' choices on any machine)."""
    if choose_runtime(runtime) == "openvino":
        from models.runtimes.openvino import OpenVINOI3D

        return OpenVINOI3D(handle, precision=precision, cpu_flags=cpu_flags)
    from models.runtimes.tensorflow import TensorFlowI3D

    return TensorFlowI3D(handle, precision=precision, xla=xla, cpu_flags=cpu_flags)


def default_batch_size(device: str) -> int:
    """Clips per forward pass: batching gave no speed-up on the 2-core CPU (and coarser progress), a GPU wants it."""
    return 8 if device.startswith("GPU") else 1
