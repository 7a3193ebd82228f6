"""Train and evaluate an LSTM head on I3D feature sequences.

`train` extracts (or reuses cached) features for every video, several views of each training video (augmented:
`models.training.features.augmentation_views`, one drawn per video per epoch), fits the head with early stopping on
a validation set (plain views), a plateau learning-rate schedule and class weights, and writes the head directory plus
its experiment record: `config.json`, `history.json`, `results.json`, `training_curves.png`,
`confusion_matrix.png`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.recognition.heads import CONFIG_FILE, build_lstm_head, save_head
from models.recognition.recognizer import ClipSettings
from models.runtimes.extractor import Extractor
from models.tensorflow_env import import_keras
from models.training.datasets import DatasetError, Sample, split_by_group
from models.training.features import FeatureSet, augmentation_views, extract_all
from models.video import PLAIN_VIEW, TEST_TIME_VIEWS, Sampling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    patience: int = 10
    units: int = 128
    dropout: float = 0.3
    seed: int = 0
    val_fraction: float = 0.15  # held out of the training data when no validation set is given
    augment: bool = True  # several views of each training video (validation always sees the plain one)
    views: int = 4  # how many, the plain one included: each costs one more feature extraction of the video


def pad_sequences(sequences: list[np.ndarray], feature_dim: int) -> np.ndarray:
    """`[(n_i, D)] -> (len, max n_i, D)`, zero-padded at the end (zeros are masked by the head)."""
    longest = max(len(s) for s in sequences)
    batch = np.zeros((len(sequences), longest, feature_dim), np.float32)
    for i, s in enumerate(sequences):
        batch[i, : len(s)] = s
    return batch


def _arrays(samples: list[Sample], features: FeatureSet, labels: list[str], feature_dim: int):
    kept = [s for s in samples if s.path in features.features]
    if not kept:
        return None, None, kept
    x = pad_sequences([features.features[s.path] for s in kept], feature_dim)
    y = np.array([labels.index(s.label) for s in kept])
    return x, y, kept


def classification_report(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict:
    """top-1, top-5, per-class precision/recall (None where undefined), confusion matrix (rows: true)."""
    predicted = probabilities.argmax(axis=1)
    k = min(5, len(labels))
    top_k_hits = [y in np.argsort(-p)[:k] for y, p in zip(y_true, probabilities)]
    confusion = np.zeros((len(labels), len(labels)), int)
    for t, p in zip(y_true, predicted):
        confusion[t, p] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp, predicted_i, actual_i = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
        per_class[label] = {
            "precision": round(float(tp / predicted_i), 4) if predicted_i else None,
            "recall": round(float(tp / actual_i), 4) if actual_i else None,
            "support": int(actual_i),
        }
    return {
        "videos": int(len(y_true)),
        "top1": round(float(np.mean(predicted == y_true)), 4),
        "top5": round(float(np.mean(top_k_hits)), 4),  # with fewer than 5 classes, top-(classes)
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "labels": labels,
    }


def plot_curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        if key in history:
            loss_ax.plot(history[key], label=key)
    for key in ("accuracy", "val_accuracy"):
        if key in history:
            acc_ax.plot(history[key], label=key)
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    loss_ax.legend()
    acc_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(confusion)
    size = max(4, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if len(labels) <= 30:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def averaged(views: list[np.ndarray]) -> np.ndarray:
    """Features of the same windows seen several ways, averaged window by window."""
    windows = min(len(view) for view in views)
    return np.mean([view[:windows] for view in views], axis=0)


def _one_view_each(views: list[list[np.ndarray]], y: np.ndarray, weights: np.ndarray, batch_size: int, dim: int,
                   seed: int):
    """Batches of the training videos, shuffled, each video seen through one of its views drawn anew every epoch."""
    keras = import_keras()

    class OneViewEach(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self) -> int:
            return -(-len(views) // batch_size)

        def __getitem__(self, index: int):
            chosen = self.order[index * batch_size:(index + 1) * batch_size]
            x = pad_sequences([views[i][self.view[i]] for i in chosen], dim)
            return x, y[chosen], weights[chosen]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(views))
            self.view = [int(self.rng.integers(len(each))) for each in views]

    return OneViewEach()


def seed_everything(seed: int) -> None:
    keras = import_keras()

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def train(
    train_samples: list[Sample],
    out_dir: Path,
    extractor: Extractor,
    *,
    val_samples: list[Sample] | None = None,
    clips: ClipSettings = ClipSettings(),
    config: TrainConfig = TrainConfig(),
    cache_dir: Path,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Train a head on `train_samples` and write it to `out_dir`; returns the validation results.

    Usage: `python -m models train --data DATA --out HEAD_DIR [--val DATA] [--epochs ...]`
    """
    keras = import_keras()

    seed_everything(config.seed)
    out_dir = Path(out_dir)
    if val_samples is None:
        train_samples, val_samples, _ = split_by_group(
            train_samples, fractions=(1 - config.val_fraction, config.val_fraction, 0.0), seed=config.seed
        )
    labels = sorted({s.label for s in train_samples})
    if len(labels) < 2:
        raise DatasetError(f"training needs at least 2 classes, got {labels}")
    val_samples = [s for s in val_samples if s.label in labels]

    views = augmentation_views(config.views if config.augment else 1, clips.stride)
    features = extract_all([s.path for s in train_samples], extractor, clips=clips, cache_dir=cache_dir,
                           progress=progress, views=views)
    held_out = extract_all([s.path for s in val_samples], extractor, clips=clips, cache_dir=cache_dir,
                           progress=progress, views=(PLAIN_VIEW,))
    features.features.update(held_out.features)
    features.failed.update(held_out.failed)
    for path, why in features.failed.items():
        log.warning("skipped %s: %s", path, why)
    dim = extractor.feature_dim
    x_train, y_train, kept_train = _arrays(train_samples, features, labels, dim)
    if x_train is None:
        raise DatasetError("no training video could be read")
    x_val, y_val, kept_val = _arrays(val_samples, features, labels, dim)

    counts = np.bincount(y_train, minlength=len(labels))
    class_weight = {i: float(len(y_train) / (len(labels) * c)) for i, c in enumerate(counts) if c}
    training = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "class_weight": class_weight,
                "shuffle": True}
    if len(views) > 1:  # a view of each video drawn per epoch; the class weights go in as sample weights
        training = {"x": _one_view_each([features.views[s.path] for s in kept_train], y_train,
                                        np.array([class_weight[c] for c in y_train], np.float32),
                                        config.batch_size, dim, config.seed)}
    model = build_lstm_head(num_classes=len(labels), feature_dim=dim, units=config.units, dropout=config.dropout)
    model.compile(optimizer=keras.optimizers.Adam(config.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    monitor = "val_loss" if x_val is not None else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=max(1, config.patience // 3),
                                          min_lr=config.lr / 64),
    ]
    started = time.perf_counter()
    fit = model.fit(
        **training, validation_data=(x_val, y_val) if x_val is not None else None, epochs=config.epochs,
        callbacks=callbacks, verbose=2 if progress else 0,
    )
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}

    eval_x, eval_y = (x_val, y_val) if x_val is not None else (x_train, y_train)
    results = classification_report(eval_y, np.asarray(model.predict(eval_x, verbose=0)), labels)
    results["evaluated_on"] = "validation" if x_val is not None else "training (no validation videos)"
    head_config = {
        "name": name or out_dir.name,
        "kind": "lstm",
        "extractor_id": extractor.extractor_id,
        "feature_dim": dim,
        "clip_len": clips.clip_len,
        "stride": clips.stride,
        "extraction": clips.extraction_id,
        "frames": clips.frames_id,
        "units": config.units,
        "dropout": config.dropout,
        "training": {**asdict(config), "view_ids": [view.id or "plain" for view in views],
                     "train_videos": len(kept_train), "val_videos": len(kept_val),
                     "skipped_videos": {str(p): why for p, why in features.failed.items()},
                     "epochs_run": len(history["loss"]), "seconds": round(time.perf_counter() - started, 1)},
        "metrics": {k: results[k] for k in results if k.startswith("top")},
    }
    save_head(out_dir, model, labels, head_config)
    (out_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot_curves(history, out_dir / "training_curves.png")
    plot_confusion(results["confusion_matrix"], labels, out_dir / "confusion_matrix.png")
    return results


def evaluate(samples: list[Sample], head_dir: Path | None, extractor: Extractor, *, cache_dir: Path,
             progress: bool = True, tta: bool = False) -> dict:
    """Results of the head at `head_dir` on `samples` (with `tta`, each video's features averaged over the
    test-time views, window by window); writes `confusion_matrix_eval.png` beside it. Without `head_dir`, of the
    extractor's own logits (a fine-tuned I3D's labels), computed from the cached features by its logits layer."""
    from models.labels import logits_vocabulary
    from models.recognition.heads import KineticsHead, LstmHead

    if head_dir is None:
        clips, head = ClipSettings(), KineticsHead(*logits_vocabulary(extractor.handle))
        kernel, bias = extractor.logits_weights()
    else:
        config = json.loads((Path(head_dir) / CONFIG_FILE).read_text())
        clips = ClipSettings.for_extraction(config.get("extraction", "windows"), clip_len=config["clip_len"],
                                            stride=config["stride"], sampling=Sampling.of_frames(config.get("frames")))
        head = LstmHead(head_dir, extractor_id=extractor.extractor_id, feature_dim=extractor.feature_dim)
    labels = list(head.labels)
    unknown = sorted({s.label for s in samples} - set(labels))
    if unknown:
        raise DatasetError(f"the head does not know the labels {unknown}")
    features = extract_all([s.path for s in samples], extractor, clips=clips, cache_dir=cache_dir, progress=progress,
                           views=TEST_TIME_VIEWS if tta else (PLAIN_VIEW,))
    if tta:
        features.features = {path: averaged(views) for path, views in features.views.items()}
    kept = [s for s in samples if s.path in features.features]
    if not kept:
        raise DatasetError("no video could be read")
    probabilities = np.stack([head.video_probabilities(
        None if head_dir else features.features[s.path] @ kernel + bias, features.features[s.path]) for s in kept])
    results = classification_report(np.array([labels.index(s.label) for s in kept]), probabilities, labels)
    results["skipped_videos"] = {str(p): why for p, why in features.failed.items()}
    results["tta"] = tta
    if head_dir is not None:
        plot_confusion(results["confusion_matrix"], labels, Path(head_dir) / "confusion_matrix_eval.png")
    return results
