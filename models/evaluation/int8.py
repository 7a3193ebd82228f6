"""The int8 model's verdict on this kind of CPU: every window of real clips through it against float32
TensorFlow, under the accuracy rule, recorded in the IR record where `PRECISION=auto` reads it."""

from __future__ import annotations

import json
from pathlib import Path

from models.evaluation.logits import reference_logits, video_names, window_logits
from models.hardware import cpu_kind, int8_ir_name
from models.i3d.accuracy import compare
from models.i3d.irs import IR_RECORD, ensure_irs
from models.i3d.quantize import video_paths
from models.runtimes.openvino import OpenVINOI3D
from models.video import frames_id


def validate_int8(handle: str, data: Path | list[Path], *, flags: frozenset[str] | None = None) -> dict:
    """Run the int8 model this kind of CPU runs over every window of the videos in `data` (a folder, or a list of
    videos: a fine-tuned I3D's validation set), compare with float32 TensorFlow (cached beside the SavedModel), and
    record the verdict for this kind of CPU."""
    directory = ensure_irs(handle)
    paths = video_paths(data) if isinstance(data, (str, Path)) else list(dict.fromkeys(data))
    reference = reference_logits(handle, paths, cache=Path(handle) / "reference" / "tensorflow-float32-windows.npz"
                                 if Path(handle).is_dir() else None)
    int8 = OpenVINOI3D(handle, precision="int8", cpu_flags=flags)
    try:
        report = compare(reference, window_logits(int8, [p for name, p in video_names(paths).items() if name in reference]))
    finally:
        int8.close()
    record_path = directory / IR_RECORD
    record = json.loads(record_path.read_text())
    summary = {"ir": int8_ir_name(int8.stem), "frames": frames_id(), **report.summary()}
    record.setdefault("validated", {}).setdefault(cpu_kind(flags), {})["int8"] = summary
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return summary
