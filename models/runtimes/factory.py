"""Opening I3D on the runtime and precision the hardware (or the settings) choose: the one place that knows
every runtime, apart from the interface they share (`models.runtimes.extractor`)."""

from __future__ import annotations

from models.hardware import choose_runtime
from models.runtimes.extractor import Extractor


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
