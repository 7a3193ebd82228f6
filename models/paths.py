"""Where build outputs live (git-ignored), importable without TensorFlow."""

from __future__ import annotations

from pathlib import Path

SAVED = Path(__file__).resolve().parent / "saved"
DEFAULT_SAVED_MODEL = SAVED / "i3d-kinetics-400"
DEFAULT_FEATURE_CACHE = SAVED / "feature-cache"
OPENVINO_CACHE = SAVED / "openvino-cache"  # IRs made at start-up from a handle with none beside it


def openvino_dir(saved_model: str | Path) -> Path:
    """The OpenVINO IRs `make setup` writes beside a local SavedModel."""
    return Path(saved_model) / "openvino"
