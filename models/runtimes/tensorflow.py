"""The TensorFlow runtime: the SavedModel (the source of truth), on a CUDA GPU or the CPU."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.runtimes.extractor import ClipOutputs
from models.hardware import bfloat16_unavailable, choose_precision, isa_cap, variant_dir
from models.tensorflow_env import import_tensorflow
from models.video import INPUT_OFFSET, INPUT_SCALE

tf = import_tensorflow()
import tensorflow_hub as hub  # noqa: E402  (after TensorFlow's quiet import)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    name: str  # "CPU" or "GPU:0 (NVIDIA H100 ...)"
    gpu_capability: tuple[int, int] | None = None


def configure_devices() -> Device:
    """Turn on GPU memory growth (never grab the whole GPU) and say where inference runs."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised by an earlier load in this process
            pass
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return Device(f"GPU:0 ({details.get('device_name', 'CUDA GPU')})", details.get("compute_capability", (0, 0)))
    return Device("CPU")


def _scaled(frames):
    """uint8 frames -> the network's float32 input in [-1, 1] (`models.video.to_model_input`), computed where the
    model runs: on a GPU only uint8 crosses the bus, and the host is spared the float32 copy (on an H100 the
    network ran at 42 clips/s fed float32 scaled on the host, 294 fed uint8 and scaled on the GPU)."""
    return tf.cast(frames, tf.float32) * INPUT_SCALE - INPUT_OFFSET


def _load_signature(handle: str):
    model = hub.load(handle)
    if "serving_default" not in model.signatures:
        raise ValueError(f"{handle} has no serving_default signature")
    signature = model.signatures["serving_default"]
    outputs = set(signature.structured_outputs)
    if not {"logits", "features"} <= outputs:
        raise ValueError(f"{handle} returns {sorted(outputs)}; expected 'logits' and 'features' (run `make setup`)")
    return model, signature


class TensorFlowI3D:
    """Wraps the SavedModel from `models.i3d.convert` (a local path or a TF Hub handle).

    `precision` "auto" picks by hardware (`models.hardware`); a precision the SavedModel has no graph
    for falls back to float32. `cpu_flags` stands in for /proc/cpuinfo's (tests run both CPU branches).
    `xla` "auto" compiles with XLA on a GPU only (on the CPU it was slower).
    `unload()` drops the model (and its GPU memory); the next call loads it again.
    """

    runtime = "tensorflow"
    stem = "plain"

    def __init__(self, handle: str, *, precision: str = "auto", xla: str = "auto",
                 cpu_flags: frozenset[str] | None = None):
        self.device_info = configure_devices()
        self.device = self.device_info.name
        wanted = choose_precision(precision, runtime=self.runtime, gpu_capability=self.device_info.gpu_capability,
                                  flags=cpu_flags)
        refused = (bfloat16_unavailable(cpu_flags) if wanted == "bfloat16" and self.device_info.gpu_capability is None
                   else None)
        if refused:
            raise ValueError(f"bfloat16 cannot run: {refused}; use float32{' or lift the cap' if isa_cap() else ''}")
        variant = variant_dir(Path(handle), wanted)
        if wanted != "float32" and not (variant / "saved_model.pb").is_file():
            log.warning("no %s graph at %s; running float32 (run `make setup` to convert it)", wanted, variant)
            wanted, variant = "float32", handle
        self.handle, self.precision, self._variant = handle, wanted, str(variant)
        self.xla = xla == "on" or (xla == "auto" and self.device_info.gpu_capability is not None)
        self._lock = threading.Lock()
        self._model = self._call = None
        self.load()
        self.extractor_id = self._model.extractor_id.numpy().decode() if hasattr(self._model, "extractor_id") else handle
        self.feature_dim = int(self._signature.structured_outputs["features"].shape[-1])

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self):
        """Load the model unless it is loaded; returns the callable that runs it."""
        with self._lock:
            if self._model is None:
                self._model, self._signature = _load_signature(self._variant)
                signature = self._signature
                # XLA compiles once per input shape: callers keep shapes fixed (see models.recognition.batching).
                self._call = tf.function(lambda frames: signature(clips=_scaled(frames)), jit_compile=self.xla)
            return self._call

    def unload(self) -> None:
        with self._lock:
            self._model = self._signature = self._call = None
            gc.collect()

    def __call__(self, clips: np.ndarray) -> ClipOutputs:
        """`clips: (N, T, 224, 224, 3) uint8 RGB` -> logits and features, as numpy (no tensor outlives the call)."""
        outputs = self.load()(tf.constant(clips))
        result = ClipOutputs(logits=outputs["logits"].numpy(), features=outputs["features"].numpy())
        del outputs
        return result

    def trunk_positions(self, frames: np.ndarray) -> np.ndarray:
        """`frames: (N, T, 224, 224, 3) uint8`, T a multiple of 8 -> `(N, T/8, 1024)` Mixed_5c averaged over space."""
        self.load()
        model = self._model
        if "trunk" not in model.signatures:
            raise ValueError(f"{self._variant} has no trunk signature, which EXTRACTION=shared needs: convert it with "
                             "`python -m models convert` (a TF Hub handle runs shared windows on RUNTIME=openvino)")
        return model.signatures["trunk"](clips=_scaled(tf.constant(frames)))["positions"].numpy()

    def top_input(self, clips: np.ndarray) -> np.ndarray:
        """`clips: (N, T, 224, 224, 3) uint8` -> `(N, T/8, 7, 7, 832)`: Mixed_4f max-pooled, what Mixed_5b reads."""
        self.load()
        if "top_input" not in self._model.signatures:
            raise ValueError(f"{self._variant} has no top_input signature, which fine-tuning needs: convert it again "
                             "with `python -m models convert` (make setup)")
        return self._model.signatures["top_input"](clips=_scaled(tf.constant(clips)))["top_input"].numpy()

    def logits_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """`kernel: (1024, 400)`, `bias: (400,)`, the SavedModel's logits layer."""
        self.load()
        if not hasattr(self._model, "logits_kernel"):
            raise ValueError(f"{self._variant} does not export its logits layer, which EXTRACTION=shared needs: "
                             "convert it with `python -m models convert`")
        return self._model.logits_kernel.numpy().astype(np.float32), self._model.logits_bias.numpy().astype(np.float32)

    def gpu_memory_bytes(self) -> int | None:
        """GPU memory TensorFlow has in use now (None on a CPU): flat from request to request when tensors are freed."""
        if self.device_info.gpu_capability is None:
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["current"])

    def close(self) -> None:
        self.unload()
