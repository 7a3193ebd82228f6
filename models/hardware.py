"""Which runtime and numeric precision run I3D, chosen by what the hardware has.

Measured on a 2-core AVX2 CPU without bfloat16 units, a TensorFlow bfloat16 graph took 56 s per 64-frame
clip against 4.5 s in float32, so reduced precision is only chosen where the hardware computes it
natively: bfloat16 on CPUs with AMX or AVX512-BF16, float16 (mixed: float32 weights) on GPUs with
tensor cores. int8 (OpenVINO, NNCF post-training) is the fastest where it keeps the rankings, so "auto"
picks it wherever `python -m models quantize` (run by `make setup`) found it passing the accuracy rule
(`models.i3d.accuracy`, measured by `models.evaluation`) on this kind of CPU, and falls back to bfloat16 or
float32 where it failed: the verdict is measured, not assumed (int8 of the plain stem, its stem then left in float, failed on AMX in one run,
one clip's whole-video top-5 sharing 3 of 5 labels with float32).

Every choice follows the CPU as oneDNN's kernels see it: `ONEDNN_MAX_CPU_ISA=AVX2` (which both runtimes obey)
makes a newer CPU choose, and run, as an AVX2-only one (`make bench-avx2`).
"""

from __future__ import annotations

import os
from pathlib import Path

RUNTIMES = ("tensorflow", "openvino")
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
# Keras dtype policy each TensorFlow graph is built with.
KERAS_POLICY = {"float32": "float32", "bfloat16": "bfloat16", "float16": "mixed_float16"}
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
AMX_FLAGS = frozenset({"amx_bf16"})
TENSOR_CORES = (7, 0)  # compute capability from which float16 runs on tensor cores


# oneDNN's ISA levels (the values of ONEDNN_MAX_CPU_ISA, which OpenVINO's CPU plugin and TensorFlow's oneDNN
# both obey), and the /proc/cpuinfo flags each one adds; other avx512* flags come with AVX512_CORE.
ISA_LEVELS = {"SSE41": 0, "AVX": 1, "AVX2": 2, "AVX2_VNNI": 3, "AVX2_VNNI_2": 4, "AVX512_CORE": 5,
              "AVX512_CORE_VNNI": 6, "AVX512_CORE_BF16": 7, "AVX512_CORE_FP16": 8, "AVX10_1_512": 8,
              "AVX512_CORE_AMX": 9, "AVX10_1_512_AMX": 9, "AVX512_CORE_AMX_FP16": 10, "AVX10_1_512_AMX_FP16": 10}
_FLAG_LEVELS = {"avx": 1, "avx2": 2, "fma": 2, "avx_vnni": 3, "avx_vnni_int8": 4, "avx_ne_convert": 4,
                "avx512_vnni": 6, "avx512_bf16": 7, "avx512_fp16": 8, "amx_fp16": 10}


def _flag_level(flag: str) -> int:
    if flag in _FLAG_LEVELS:
        return _FLAG_LEVELS[flag]
    return 9 if flag.startswith("amx") else 5 if flag.startswith("avx512") else 0


def isa_cap(environ=None) -> str | None:
    """The ISA oneDNN is capped to (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA), None when uncapped."""
    environ = os.environ if environ is None else environ
    value = (environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    return value if value in ISA_LEVELS else None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo"), *, cap: str | None = None) -> frozenset[str]:
    """The CPU's feature flags as the kernels see them (empty where /proc/cpuinfo is not there): without the
    flags above `cap` (default: `isa_cap()`), so that a CPU capped to AVX2 is chosen for as an AVX2 CPU."""
    flags: frozenset[str] = frozenset()
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = frozenset(line.partition(":")[2].split())
                break
    except OSError:
        pass
    cap = (cap or isa_cap() or "").upper()  # "ALL", oneDNN's own word for no cap, reads the CPU uncapped
    return frozenset(f for f in flags if _flag_level(f) <= ISA_LEVELS[cap]) if cap in ISA_LEVELS else flags


def has_bf16_units(flags: frozenset[str] | None = None) -> bool:
    return bool(BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))


def bfloat16_capped_off() -> str | None:
    """Why bfloat16 cannot run here although the CPU has the units: ONEDNN_MAX_CPU_ISA caps them off, and both
    runtimes route bfloat16 by the CPU's own flags to a oneDNN that then refuses it. None where it can run."""
    if has_bf16_units(cpu_flags(cap="ALL")) and not has_bf16_units():
        return f"oneDNN is capped to {isa_cap()} (ONEDNN_MAX_CPU_ISA), below this CPU's bfloat16 units"
    return None


def bfloat16_unavailable(flags: frozenset[str] | None = None) -> str | None:
    """Why a CPU cannot run bfloat16 (`flags` stand in for this one's), None where it can. Without AMX or
    AVX512-BF16, TensorFlow emulates it (Eigen): about 12x slower than float32 on an AVX2 CPU, and not
    rank-preserving there (a real clip's top-1 changed, logits moved by 1.4), so it is refused, not emulated."""
    capped = bfloat16_capped_off()
    if capped:
        return capped
    if not has_bf16_units(flags):
        return ("this CPU has no bfloat16 units (AMX or AVX512-BF16), and emulating them is slower than float32 and "
                "does not keep its rankings")
    return None


def cuda_gpu_present() -> bool:
    """A CUDA GPU visible to this process, judged without importing a framework (the NVIDIA driver's
    /proc entry, and CUDA_VISIBLE_DEVICES not hiding every device)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def choose_runtime(requested: str = "auto", *, gpu: bool | None = None) -> str:
    """`requested` unless "auto"; then TensorFlow on a CUDA GPU, OpenVINO on a CPU."""
    if requested != "auto":
        if requested not in RUNTIMES:
            raise ValueError(f"unknown runtime {requested!r}; one of auto, {', '.join(RUNTIMES)}")
        return requested
    return "tensorflow" if (cuda_gpu_present() if gpu is None else gpu) else "openvino"


def choose_precision(requested: str = "auto", *, runtime: str = "tensorflow",
                     gpu_capability: tuple[int, int] | None = None, flags: frozenset[str] | None = None) -> str:
    """`requested` unless it is "auto"; then float16 on a tensor-core GPU, bfloat16 on a CPU with
    bfloat16 units, float32 otherwise. `gpu_capability` is None when inference runs on the CPU.
    Raises ValueError for a precision `runtime` cannot run there."""
    if requested == "auto":
        if gpu_capability is not None:
            return "float16" if gpu_capability >= TENSOR_CORES else "float32"
        return "bfloat16" if has_bf16_units(flags) else "float32"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; one of auto, {', '.join(PRECISIONS)}")
    if requested == "int8" and runtime != "openvino":
        raise ValueError("int8 runs on the OpenVINO runtime only (RUNTIME=openvino)")
    if requested == "float16" and gpu_capability is None:
        raise ValueError("float16 runs on a GPU only (no CPU float16 MaxPool3D in TensorFlow; OpenVINO's "
                         "CPU plugin has no float16 either); use float32 or bfloat16 on a CPU")
    return requested


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """The kind of CPU, as far as kernels (and so int8 numerics) go: amx, avx512_bf16, avx512, avx2 or other."""
    flags = cpu_flags() if flags is None else flags
    for kind, needs in (("amx", "amx_bf16"), ("avx512_bf16", "avx512_bf16"), ("avx512", "avx512f"), ("avx2", "avx2")):
        if needs in flags:
            return kind
    return "other"


def openvino_auto_precision(flags: frozenset[str] | None = None, validated: dict | None = None) -> str:
    """OpenVINO's "auto", the fastest precision that keeps the rankings: int8 where `validated` (the IR
    record's `{cpu kind: {precision: accuracy summary}}`) says it passed the rule on this kind of CPU; else
    bfloat16 with bfloat16 units; else float32."""
    verdict = (validated or {}).get(cpu_kind(flags), {}).get("int8", {})
    if verdict.get("passes"):
        return "int8"
    return "bfloat16" if has_bf16_units(flags) else "float32"


def choose_stem(runtime: str, precision: str, flags: frozenset[str] | None = None) -> str:
    """The space-to-depth stem where it was measured faster: OpenVINO bfloat16 and int8 on AMX (the plain
    stem's 3 input channels waste AMX tiles). In float32 on AMX it was slower, and int8 with it slower on an
    AVX2-capped run (the prototype's 745 against 530 ms a clip), and on an AMD EPYC with AVX512-BF16 and no AMX
    (int8 271 against 145 ms, bfloat16 275 against 273), so everywhere else the plain stem runs."""
    on_amx = bool(AMX_FLAGS & (cpu_flags() if flags is None else flags))
    return "space_to_depth" if runtime == "openvino" and precision in ("bfloat16", "int8") and on_amx else "plain"


def int8_ir_name(stem: str) -> str:
    """The int8 IR quantized from the `stem` IR: `int8` (plain) or `int8_space_to_depth`."""
    return "int8" if stem == "plain" else f"int8_{stem}"


def variant_dir(saved_model: Path, precision: str) -> Path:
    """Where `models.i3d.convert` writes the TensorFlow graph built for `precision` (float32 is the SavedModel)."""
    return saved_model if precision == "float32" else saved_model / "variants" / precision
