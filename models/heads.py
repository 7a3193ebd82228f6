"""Heads turn a video's per-clip I3D outputs into one whole-video ranking.

A head is anything with `name`, `labels` and `video_probabilities(logits, features)`. The built-in
one uses the Kinetics-400 logits directly; trained sequence heads (a directory with weights and
`labels.json`, chosen by the `HEAD_PATH` setting) plug in behind the same interface.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.labels import kinetics_labels, softmax


class VideoHead(Protocol):
    name: str
    labels: tuple[str, ...]

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        """`logits: (N, 400)`, `features: (N, 1024)` for a video's N clips, in order -> `(len(labels),)`."""
        ...


class KineticsHead:
    """Kinetics-400 ranking: the clips' softmax probabilities averaged over the video."""

    name = "kinetics400"

    def __init__(self):
        self.labels = kinetics_labels()

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        return softmax(logits).mean(axis=0)
