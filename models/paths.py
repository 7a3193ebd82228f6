"""Where build outputs live (git-ignored), importable without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

SAVED = Path(__file__).resolve().parent / "saved"
DEFAULT_SAVED_MODEL = SAVED / "i3d-kinetics-400"
DEFAULT_FEATURE_CACHE = SAVED / "feature-cache"
OPENVINO_CACHE = SAVED / "openvino-cache"  # IRs made at start-up from a handle with none beside it


def openvino_dir(saved_model: str | Path) -> Path:
    """The OpenVINO IRs `make setup` writes beside a local SavedModel."""
    return Path(saved_model) / "openvino"


FINETUNE_RECORD = "finetune.json"  # beside a fine-tuned I3D's SavedModel: how it was trained (models.training.finetune)


def finetuned_extractor_id(handle: str | Path) -> str | None:
    """The extractor id of the fine-tuned I3D at `handle` (each fine-tuning run its own), None for any other handle."""
    record = Path(handle) / FINETUNE_RECORD
    try:
        return json.loads(record.read_text())["extractor_id"] if record.is_file() else None
    except (OSError, ValueError, KeyError):
        return None
