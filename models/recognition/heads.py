"""Heads turn a video's per-clip I3D outputs into one whole-video ranking.

A head is anything with `name`, `labels`, `video_probabilities(logits, features)` (the video's ranking) and
`window_probabilities(logits, features)` (each window's, for segments). Three exist:
- `KineticsHead`: the extractor's own logits, the clips' softmax probabilities averaged: Kinetics-400's for the base
  I3D, a fine-tuned I3D's own labels (`models.training.finetune`); `SportHead`, Kinetics-400 narrowed to one
  sport's labels (models/sports.py).
- `LstmHead`: a trained LSTM over the sequence of per-clip 1024-d features, saved as a directory
  (`head.weights.h5`, `labels.json`, `config.json`), chosen by the `HEAD_PATH` setting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from models.labels import KINETICS, kinetics_labels, softmax
from models.sports import Sport

WEIGHTS_FILE = "head.weights.h5"
LABELS_FILE = "labels.json"
CONFIG_FILE = "config.json"


WINDOW_CONTEXT = 5  # windows a trained head ranks together for one window's probabilities (two each side)


class HeadMismatchError(ValueError):
    """The head was trained on other features than the loaded extractor gives."""


class VideoHead(Protocol):
    name: str
    labels: tuple[str, ...]

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        """`logits: (N, 400)`, `features: (N, 1024)` for a video's N clips, in order -> `(len(labels),)`."""
        ...

    def window_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The same clips -> `(N, len(labels))`: each window's probabilities, from which segments are made."""
        ...


class KineticsHead:
    """The logits' ranking: the clips' softmax probabilities averaged over the video. Kinetics-400 by default; an
    extractor with labels of its own (a fine-tuned I3D) ranks those, under its own `name`."""

    name = KINETICS  # the class's: the Kinetics-400 ranking

    def __init__(self, name: str = KINETICS, labels: tuple[str, ...] | None = None):
        self.name = name
        self.labels = tuple(labels) if labels is not None else kinetics_labels()
        self.per_window = True  # ranks each window alone (live, and the per-window timeline)

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        return softmax(logits).mean(axis=0)

    def window_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        return softmax(logits)


class SportHead:
    """The Kinetics-400 head narrowed to one sport's labels. The whole video is ranked over them alone (their
    probabilities renormalized); each window keeps its probabilities as they are, so a stretch with none of the
    sport's actions (a time-out, the crowd) does not become a confident moment."""

    name = KineticsHead.name

    def __init__(self, sport: Sport):
        self.sport = sport
        self.labels = sport.labels
        everything = kinetics_labels()
        self._columns = np.array([everything.index(label) for label in sport.labels])

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        probabilities = softmax(logits).mean(axis=0)[self._columns]
        return probabilities / probabilities.sum()

    def window_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        return softmax(logits)[:, self._columns]


def build_lstm_head(*, num_classes: int, feature_dim: int = 1024, units: int = 128, dropout: float = 0.3):
    """`features: (batch, clips, feature_dim)`, zero-padded at the end -> class probabilities.

    All-zero rows are masked: real I3D features are averages of ReLU outputs and never all zero.
    """
    from models.tensorflow_env import import_keras

    keras = import_keras()
    layers = keras.layers

    features = keras.Input(shape=(None, feature_dim), name="features")
    x = layers.Masking(mask_value=0.0, name="mask")(features)
    x = layers.Dropout(dropout / 2, name="input_dropout")(x)
    x = layers.LSTM(units, name="lstm")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(features, probabilities, name="lstm_head")


def save_head(directory: Path, model, labels: list[str], config: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_weights(directory / WEIGHTS_FILE)
    (directory / LABELS_FILE).write_text(json.dumps(list(labels), indent=2) + "\n")
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


# What a head trained before a setting existed was trained with: clips run one by one, OpenCV's frames at the
# source's rate.
_BEFORE = {"extraction": "windows", "frames": "opencv/source"}


class LstmHead:
    """A trained sequence head loaded from its directory."""

    def __init__(self, directory: str | Path, *, extractor_id: str, feature_dim: int, clip_len: int | None = None,
                 stride: int | None = None, extraction: str | None = None, frames: str | None = None):
        directory = Path(directory)
        for needed in (WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE):
            if not (directory / needed).is_file():
                raise FileNotFoundError(f"{directory} is not a head directory: {needed} is missing")
        self.directory = directory
        self.config = json.loads((directory / CONFIG_FILE).read_text())
        self.labels = tuple(json.loads((directory / LABELS_FILE).read_text()))
        self.name = self.config.get("name") or directory.name
        expected = {"extractor_id": extractor_id, "feature_dim": feature_dim, "clip_len": clip_len, "stride": stride,
                    "extraction": extraction, "frames": frames}
        for key, value in expected.items():
            trained = self.config.get(key, _BEFORE.get(key))  # heads from before the setting
            if value is not None and trained != value:
                raise HeadMismatchError(
                    f"head {directory} was trained with {key}={trained!r} but the service uses {key}={value!r}; "
                    "retrain it for this extractor or change the setting"
                )
        self.model = build_lstm_head(
            num_classes=len(self.labels), feature_dim=self.config["feature_dim"],
            units=self.config["units"], dropout=self.config["dropout"],
        )
        self.model.load_weights(directory / WEIGHTS_FILE)

    def video_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(features[None].astype(np.float32), training=False))[0]

    def window_probabilities(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Each window ranked with its neighbours (WINDOW_CONTEXT windows centred on it, fewer at the ends), as the
        head ranks a sequence; all windows in one batch."""
        count, half = len(features), WINDOW_CONTEXT // 2
        contexts = np.zeros((count, WINDOW_CONTEXT, features.shape[1]), np.float32)
        for index in range(count):
            near = features[max(0, index - half): index + half + 1]
            contexts[index, : len(near)] = near  # zero rows at the end are masked
        return np.asarray(self.model(contexts, training=False))
