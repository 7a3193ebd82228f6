"""int8 I3D for OpenVINO: NNCF post-training quantization of the IR this kind of CPU runs (the
space-to-depth stem on AMX, the plain one elsewhere), calibrated on real clips, then checked against the
accuracy rule on this machine's kind of CPU (`models.evaluation.int8.validate_int8`).

Every 64-frame window (stride 32) of the videos in `data` calibrates it, prepared exactly as the service
prepares clips. The logits layer stays in float (quantizing it cost accuracy in the prototype). The plain
stem's convolution is rewritten to read the frames as 0..255, so that its input quantizes exactly and AVX2
runs it in int8 (`models.i3d.int8_stem`); the space-to-depth stem (24 channels) is quantized as NNCF calibrates
it: on AMX that IR passed the rule and ran 1.17x faster than with its stem left in bfloat16.
int8 numerics depend on the CPU's kernels (AVX2, VNNI, AMX), so the verdict is recorded per kind of CPU
(`record["validated"][kind]["int8"]`, naming the IR it was given to), and `PRECISION=auto` picks int8 only
where it passed. Usage: `python -m models quantize` (`make setup`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from models.i3d.int8_stem import quantize_frames_exactly, stem_on_frames
from models.hardware import int8_ir_name
from models.i3d.irs import IR_RECORD, ensure_irs, int8_ir_for, int8_verdicts
from models.video import VideoDecodeError, iter_clips, to_model_input

log = logging.getLogger(__name__)
RECIPES = {"plain": 2, "space_to_depth": 1}  # how each stem's int8 IR is made; plain 2: its stem on frames, in int8
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif"}


def video_paths(data: Path) -> list[Path]:
    return sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)


def calibration_windows(data: Path | list[Path], *, max_windows: int | None = None) -> tuple[list[np.ndarray], int]:
    """`(64, 224, 224, 3) uint8` windows of every readable video under `data` (a folder, or a list of videos), and
    how many videos gave some."""
    windows, videos = [], 0
    for path in (video_paths(data) if isinstance(data, (str, Path)) else data):
        try:
            clips = [clip.frames for clip in iter_clips(path)]
        except VideoDecodeError:
            continue
        windows += clips
        videos += bool(clips)
    if max_windows:
        step = max(1, len(windows) // max_windows)  # spread over the videos, not the first few
        windows = windows[::step][:max_windows]
    return windows, videos


def int8_ir_of(handle: str, flags: frozenset[str] | None = None) -> tuple[str, str]:
    """`(stem, int8 IR name)` this kind of CPU runs in int8 for `handle` (`int8_ir_for`)."""
    return int8_ir_for(json.loads((ensure_irs(handle) / IR_RECORD).read_text()), flags)


def quantize_int8(handle: str, data: Path | list[Path], *, max_windows: int | None = None, stem: str | None = None) -> dict:
    """Write the int8 IR of `stem` (default: the one this kind of CPU runs) beside the float IRs of `handle`,
    and record how it was made in the IR record."""
    import openvino as ov

    from models.tensorflow_env import native_stderr_filtered

    with native_stderr_filtered():  # NNCF imports TensorFlow when it is installed
        import nncf
    directory = ensure_irs(handle)
    stem = stem or int8_ir_of(handle)[0]
    name = int8_ir_name(stem)
    windows, videos = calibration_windows(data, max_windows=max_windows)
    if not windows:
        raise ValueError(f"no readable video under {data} to calibrate on")
    model = ov.Core().read_model(directory / f"{stem}.xml")
    keep_float = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]  # logits
    if stem == "plain":
        stem_on_frames(model)
    started = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(windows, lambda window: to_model_input(window[None])),
                              subset_size=len(windows), fast_bias_correction=True,
                              ignored_scope=nncf.IgnoredScope(names=keep_float))
    if stem == "plain":
        quantize_frames_exactly(quantized)
    seconds = time.perf_counter() - started
    partial = directory / f"{name}.partial.xml"
    ov.save_model(quantized, partial, compress_to_fp16=False)
    partial.with_suffix(".bin").replace(directory / f"{name}.bin")
    partial.replace(directory / f"{name}.xml")
    record_path = directory / IR_RECORD
    record = json.loads(record_path.read_text())
    entry = {"stem": stem, "recipe": RECIPES[stem], "calibration_windows": len(windows), "calibration_videos": videos,
             "calibration_data": str(data) if isinstance(data, (str, Path)) else f"{len(data)} videos", "kept_float": keep_float, "seconds": round(seconds, 1)}
    record["irs"][name] = entry
    for verdicts in record.get("validated", {}).values():  # verdicts on the previous model of this name
        if verdicts.get("int8", {}).get("ir", "int8") == name:
            verdicts.pop("int8")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return {**entry, "path": str(directory / f"{name}.xml")}


def int8_ir_is_current(handle: str, *, flags: frozenset[str] | None = None) -> bool:
    """True when the int8 IR this kind of CPU runs exists and was made by today's recipe for its stem."""
    directory = ensure_irs(handle)
    record = json.loads((directory / IR_RECORD).read_text())
    stem, name = int8_ir_for(record, flags)
    return (directory / f"{name}.xml").is_file() and record["irs"].get(name, {}).get("recipe", 1) == RECIPES[stem]


def int8_is_current(handle: str, *, flags: frozenset[str] | None = None) -> bool:
    """True when the int8 IR this kind of CPU runs is current and has a verdict for this kind of CPU (`make setup`
    then does nothing)."""
    directory = ensure_irs(handle)
    record = json.loads((directory / IR_RECORD).read_text())
    return int8_ir_is_current(handle, flags=flags) and bool(int8_verdicts(record, directory, flags))
