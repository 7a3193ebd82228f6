"""I3D behind one small interface, whichever runtime runs it (`models.runtimes`).

`extractor(clips)` maps `clips: (N, T, 224, 224, 3) uint8 RGB` to `logits: (N, 400)` and
`features: (N, 1024)`, as numpy. `extractor.trunk_positions(frames)` and `extractor.logits_weights()` serve
`EXTRACTION=shared` (`models.recognition.shared_trunk`), `extractor.top_input(clips)` fine-tuning. The batcher, the recognizer, training and the benchmark call this
interface and never know which runtime runs. `models.runtimes.factory.open_extractor` picks the runtime and
precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


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

    def top_input(self, clips: np.ndarray) -> np.ndarray:
        """`clips: (N, T, 224, 224, 3) uint8` -> `(N, T/8, 7, 7, 832)`: Mixed_4f max-pooled, what fine-tuning trains
        the top of I3D on (`models.training.finetune`)."""

    def logits_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The logits layer: `kernel: (1024, 400)`, `bias: (400,)` (logits = features @ kernel + bias)."""

    def load(self): ...

    def unload(self) -> None: ...

    def close(self) -> None: ...

    def gpu_memory_bytes(self) -> int | None: ...
