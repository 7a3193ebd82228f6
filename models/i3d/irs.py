"""The OpenVINO IRs of I3D on disk and their record (`openvino.json`): where they are for a handle, which int8 IR
a kind of CPU runs, and the accuracy verdicts given to it. The OpenVINO runtime runs them; `python -m models
convert` and `quantize` write them."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.hardware import choose_stem, cpu_kind, int8_ir_name
from models.paths import OPENVINO_CACHE, openvino_dir
from models.video import frames_id

log = logging.getLogger(__name__)

IR_RECORD = "openvino.json"


def ir_dir_for(handle: str) -> Path:
    """Where the IRs for `handle` are: beside a local SavedModel, else in the cache, keyed by the handle."""
    local = openvino_dir(handle)
    if Path(handle).is_dir():
        return local
    return OPENVINO_CACHE / hashlib.sha256(handle.encode()).hexdigest()[:16]


def ensure_irs(handle: str) -> Path:
    """The IR folder of `handle`, converted from the SavedModel (or TF Hub handle) first if it has none."""
    directory = ir_dir_for(handle)
    if not (directory / IR_RECORD).is_file():
        from models.i3d.convert import convert_openvino

        log.info("no OpenVINO IR for %s; converting it once into %s", handle, directory)
        convert_openvino(handle, directory)
    return directory


def int8_ir_for(record: dict, flags: frozenset[str] | None = None) -> tuple[str, str]:
    """`(stem, int8 IR name)` this kind of CPU runs in int8: the space-to-depth stem on AMX where its float IR
    was made (a TF Hub handle has only the plain one), else plain."""
    stem = choose_stem("openvino", "int8", flags)
    stem = stem if stem in record["irs"] else "plain"
    return stem, int8_ir_name(stem)


def int8_verdicts(record: dict, directory: Path, flags: frozenset[str] | None = None) -> dict:
    """`{cpu kind: {"int8": accuracy summary}}` for this kind of CPU, when the int8 IR it runs exists and its
    verdict was given to that IR (a verdict without "ir" predates the space-to-depth int8, so was of `int8`)
    on the frames the service prepares today (`models.video.frames_id`; none: OpenCV's, at the source rate)."""
    kind = cpu_kind(flags)
    name = int8_ir_for(record, flags)[1]
    verdict = record.get("validated", {}).get(kind, {}).get("int8")
    if (verdict is None or verdict.get("ir", "int8") != name or verdict.get("frames", "opencv/source") != frames_id()
            or not (directory / f"{name}.xml").is_file()):
        return {}
    return {kind: {"int8": verdict}}
