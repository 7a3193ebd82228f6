"""Label lists: Kinetics-400 in I3D's output order, an extractor's own (a fine-tuned I3D's), and ranking of
probability vectors by label."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

KINETICS_LABELS_FILE = Path(__file__).resolve().parent / "data" / "kinetics400_labels.txt"
KINETICS = "kinetics400"  # the name the Kinetics-400 ranking goes by
LOGITS_NAME_FILE = "name.txt"  # beside a SavedModel's labels.txt: the name of an extractor's own ranking


@lru_cache(maxsize=1)
def kinetics_labels() -> tuple[str, ...]:
    labels = tuple(line.strip() for line in KINETICS_LABELS_FILE.read_text().splitlines() if line.strip())
    if len(labels) != 400:
        raise RuntimeError(f"{KINETICS_LABELS_FILE} has {len(labels)} labels, expected 400")
    return labels


def logits_vocabulary(handle: str | Path) -> tuple[str, tuple[str, ...]]:
    """`(name, labels)` of the logits of the I3D at `handle`: Kinetics-400's for the base model and a TF Hub
    handle; a fine-tuned one's own labels (its SavedModel's `assets/labels.txt`) under its name."""
    assets = Path(handle) / "assets"
    if not (assets / "labels.txt").is_file():
        return KINETICS, kinetics_labels()
    labels = tuple(line.strip() for line in (assets / "labels.txt").read_text().splitlines() if line.strip())
    if labels == kinetics_labels():
        return KINETICS, labels
    named = assets / LOGITS_NAME_FILE
    return (named.read_text().strip() if named.is_file() else Path(handle).name), labels


def top_k(probabilities: np.ndarray, labels: tuple[str, ...] | list[str], k: int) -> list[dict]:
    """`[{"label", "confidence"}, ...]` for the k most probable labels, most probable first."""
    k = max(0, min(k, len(labels)))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "confidence": round(float(probabilities[i]), 6)} for i in order]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)
