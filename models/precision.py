"""Which numeric precision I3D runs in, chosen by what the hardware has (float32 when in doubt).

Measured on a 2-core AVX2 CPU without bfloat16 units, a bfloat16 graph took 56 s per 64-frame clip
against 4.5 s in float32, so reduced precision is only chosen where the hardware computes it natively:
bfloat16 on CPUs with AMX or AVX512-BF16, float16 (mixed: float32 weights) on GPUs with tensor cores.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("float32", "bfloat16", "float16")
# Keras dtype policy each precision's graph is built with.
KERAS_POLICY = {"float32": "float32", "bfloat16": "bfloat16", "float16": "mixed_float16"}
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
TENSOR_CORES = (7, 0)  # compute capability from which float16 runs on tensor cores


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not there)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def choose_precision(requested: str = "auto", *, gpu_capability: tuple[int, int] | None = None,
                     flags: frozenset[str] | None = None) -> str:
    """`requested` unless it is "auto"; then float16 on a tensor-core GPU, bfloat16 on a CPU with
    bfloat16 units, float32 otherwise. `gpu_capability` is None when inference runs on the CPU."""
    if requested != "auto":
        if requested not in PRECISIONS:
            raise ValueError(f"unknown precision {requested!r}; one of auto, {', '.join(PRECISIONS)}")
        return requested
    if gpu_capability is not None:
        return "float16" if gpu_capability >= TENSOR_CORES else "float32"
    return "bfloat16" if BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags) else "float32"


def variant_dir(saved_model: Path, precision: str) -> Path:
    """Where `models.convert` writes the graph built for `precision` (float32 is the SavedModel itself)."""
    return saved_model if precision == "float32" else saved_model / "variants" / precision
