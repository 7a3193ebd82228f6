"""The I3D feature extractor as the service and training use it: loaded once, called on uint8 clip batches."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

from models.video import to_model_input

log = logging.getLogger(__name__)


def configure_devices() -> str:
    """Turn on GPU memory growth (never grab the whole GPU) and name the device inference runs on."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised by an earlier load in this process
            pass
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU:0 ({details.get('device_name', 'CUDA GPU')})"
    return "CPU"


def default_batch_size(device: str) -> int:
    """Clips per forward pass: batching gave no speed-up on the 2-core CPU (and coarser progress), a GPU wants it."""
    return 8 if device.startswith("GPU") else 1


@dataclass
class ClipOutputs:
    """`logits: (N, 400) float32`, `features: (N, 1024) float32` for N clips."""

    logits: np.ndarray
    features: np.ndarray


class I3DExtractor:
    """Wraps the SavedModel from `models.convert` (a local path or a TF Hub handle)."""

    def __init__(self, handle: str):
        self.handle = handle
        self.device = configure_devices()
        self.precision = "float32"
        self._model = hub.load(handle)
        if "serving_default" not in self._model.signatures:
            raise ValueError(f"{handle} has no serving_default signature")
        self._signature = self._model.signatures["serving_default"]
        outputs = set(self._signature.structured_outputs)
        if not {"logits", "features"} <= outputs:
            raise ValueError(f"{handle} returns {sorted(outputs)}; expected 'logits' and 'features' (run `make setup`)")
        self.extractor_id = self._model.extractor_id.numpy().decode() if hasattr(self._model, "extractor_id") else handle
        self.feature_dim = int(self._signature.structured_outputs["features"].shape[-1])

    def __call__(self, clips: np.ndarray) -> ClipOutputs:
        """`clips: (N, T, 224, 224, 3) uint8 RGB` -> logits and features, as numpy (no tensor outlives the call)."""
        outputs = self._signature(clips=tf.constant(to_model_input(clips)))
        result = ClipOutputs(logits=outputs["logits"].numpy(), features=outputs["features"].numpy())
        del outputs
        return result

    def warm_up(self, clip_len: int, batch_size: int = 1) -> None:
        """Run one batch so the first real request does not pay for graph set-up."""
        self(np.zeros((batch_size, clip_len, 224, 224, 3), np.uint8))

    def close(self) -> None:
        self._signature = None
        self._model = None
        gc.collect()
