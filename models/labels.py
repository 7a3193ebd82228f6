"""Label lists: Kinetics-400 in I3D's output order, and ranking of probability vectors by label."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

KINETICS_LABELS_FILE = Path(__file__).resolve().parent / "data" / "kinetics400_labels.txt"


@lru_cache(maxsize=1)
def kinetics_labels() -> tuple[str, ...]:
    labels = tuple(line.strip() for line in KINETICS_LABELS_FILE.read_text().splitlines() if line.strip())
    if len(labels) != 400:
        raise RuntimeError(f"{KINETICS_LABELS_FILE} has {len(labels)} labels, expected 400")
    return labels


def top_k(probabilities: np.ndarray, labels: tuple[str, ...] | list[str], k: int) -> list[dict]:
    """`[{"label", "confidence"}, ...]` for the k most probable labels, most probable first."""
    k = max(0, min(k, len(labels)))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "confidence": round(float(probabilities[i]), 6)} for i in order]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)
