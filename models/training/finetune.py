"""Fine-tune the top of I3D on your labelled videos, making a new extractor: `python -m models finetune`.

`--blocks top` (the default) trains Mixed_5b, Mixed_5c and a new classifier of your labels on what Mixed_5b reads,
Mixed_4f max-pooled: `(8, 7, 7, 832)` a 64-frame window, computed once per video and view by the base extractor on
the runtime and precision the service runs, and cached (float16, 0.65 MB a window). That is feasible on two CPU cores
for hundreds of videos: the top is about 2% of I3D's multiply-adds. `--blocks all` trains every block on the frames
themselves (cached as uint8, 9.6 MB a window): a GPU's job.

Training, as few videos want it: BatchNorm keeps its Kinetics statistics (batches of a few windows would ruin them);
first the new classifier alone on the frozen top's features (a linear probe), then every trained block with it at a
tenth of that learning rate (LP-FT, Kumar et al. 2022: fine-tuning from a fitted classifier distorts the pretrained
features less). Each window is a sample with its video's label, weighted so that classes count alike, and training
videos are seen through one of their views a epoch (`models.training.features.augmentation_views`). Splits, early
stopping (on the validation windows' loss), results (whole videos: their windows' probabilities averaged) and records
are `train`'s.

The result is an extractor like the base one, written and verified by `models.i3d.convert.write_extractor`: the whole
network as a SavedModel with its variants and OpenVINO IRs, its own extractor id (heads trained on its features
refuse any other extractor, and the base refuses them), its logits ranking your labels; its int8 IR calibrated on the
training videos and held to the accuracy rule on the validation videos for this kind of CPU (`PRECISION=auto` uses it
only where it passed). Serve it with `MODEL_HANDLE=<out>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.paths import FINETUNE_RECORD
from models.recognition.recognizer import ClipSettings
from models.runtimes.extractor import Extractor
from models.tensorflow_env import import_keras
from models.training.datasets import DatasetError, Sample, split_by_group
from models.training.features import progress_bar, augmentation_views, cache_key
from models.training.trainer import classification_report, plot_confusion, plot_curves, seed_everything
from models.video import PLAIN_VIEW, VideoDecodeError, View, iter_clips, to_model_input

log = logging.getLogger(__name__)

BLOCKS = ("top", "all")


@dataclass(frozen=True)
class FinetuneConfig:
    blocks: str = "top"  # "top": Mixed_5b, Mixed_5c and the classifier; "all": every block (a GPU's job)
    epochs: int = 15  # of fine-tuning, after the probe
    batch_size: int = 8  # windows a step
    lr: float = 1e-4  # fine-tuning's; the probe's is 10x
    patience: int = 4
    dropout: float = 0.5  # before the classifier, as I3D was trained
    seed: int = 0
    val_fraction: float = 0.15  # held out of the training data when no validation set is given
    augment: bool = True
    views: int = 4
    probe_epochs: int = 200
    int8: bool = True  # quantize and check the int8 IR on this kind of CPU
    calibration_windows: int = 300


class _CachedWindows:
    """One video's cached inputs seen one way, `(windows, ...)`, read window by window from the file (a memory map
    held open per file would run out of file descriptors with hundreds of videos and their views)."""

    def __init__(self, path: Path):
        self.path = path
        self.count = len(np.load(path, mmap_mode="r"))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[index])


@dataclass
class _Video:
    sample: Sample
    views: list[_CachedWindows]  # each view's windows' inputs


def _inputs_file(path: Path, view: View, extractor: Extractor, clips: ClipSettings, blocks: str,
                 cache_dir: Path) -> Path:
    """The cached inputs of the trained blocks for one video seen one way: computed once, written atomically."""
    clips = dataclasses.replace(clips, view=view)
    if blocks == "top":
        key = cache_key(path, extractor_id=extractor.extractor_id, clips=clips, precision=extractor.precision,
                        stem=extractor.stem)
        cached = cache_dir / f"{key}.top_input.npy"
    else:  # frames: whatever runs the network
        cached = cache_dir / f"{cache_key(path, extractor_id='frames', clips=clips)}.frames.npy"
    if cached.is_file():
        return cached
    windows = []
    for clip in iter_clips(path, clip_len=clips.clip_len, stride=clips.stride, sampling=clips.sampling, view=view):
        windows.append(extractor.top_input(clip.frames[None])[0].astype(np.float16) if blocks == "top" else clip.frames)
    fd, staging = tempfile.mkstemp(dir=cache_dir, suffix=".npy.part")
    with os.fdopen(fd, "wb") as f:
        np.save(f, np.stack(windows))
    os.replace(staging, cached)
    return cached


def cache_inputs(samples: list[Sample], views: list[View], extractor: Extractor, *, clips: ClipSettings, blocks: str,
                 cache_dir: Path, progress: bool = True) -> tuple[list[_Video], dict[Path, str]]:
    """Every readable video's inputs for each of `views` (read from the cache as needed), and the unreadable ones."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    videos: dict[Path, _Video] = {}
    failed: dict[Path, str] = {}
    work = [(sample, view) for sample in samples for view in views]
    label = "Mixed_4f activations" if blocks == "top" else "frames"
    for sample, view in progress_bar(work, len(work), f"{label}, {len(views)} view(s)", progress, unit="view"):
        if sample.path in failed:
            continue
        try:
            cached = _inputs_file(sample.path, view, extractor, clips, blocks, cache_dir)
        except (VideoDecodeError, OSError) as exc:
            failed[sample.path] = str(exc)
            videos.pop(sample.path, None)
            continue
        videos.setdefault(sample.path, _Video(sample, [])).views.append(_CachedWindows(cached))
    return list(videos.values()), failed


def _as_input(windows: np.ndarray, blocks: str) -> np.ndarray:
    return np.asarray(windows, np.float32) if blocks == "top" else to_model_input(np.asarray(windows))


def _windows(videos: list[_Video], labels: list[str], blocks: str, batch_size: int, *, seed: int | None,
             weights: dict[int, float] | None = None):
    """Batches of windows: each video's windows of one of its views, drawn anew every epoch (`seed`; None: the first
    view, in order). A video gives as many windows a epoch whatever its view (a slower view has more: spread over)."""
    keras = import_keras()
    counts = [len(video.views[0]) for video in videos]
    y_of = [labels.index(video.sample.label) for video in videos]

    class Windows(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self) -> int:
            return -(-sum(counts) // batch_size)

        def __getitem__(self, index: int):
            chosen = self.samples[index * batch_size:(index + 1) * batch_size]
            x = np.stack([_as_input(videos[v].views[view][w], blocks) for v, view, w in chosen])
            y = np.array([y_of[v] for v, _, _ in chosen])
            if weights is None:
                return x, y
            return x, y, np.array([weights[c] for c in y], np.float32)

        def on_epoch_end(self) -> None:
            samples = []
            for v, video in enumerate(videos):
                view = int(self.rng.integers(len(video.views))) if seed is not None else 0
                spread = np.linspace(0, len(video.views[view]) - 1, counts[v]).round().astype(int)
                samples += [(v, view, int(w)) for w in spread]
            self.samples = [samples[i] for i in self.rng.permutation(len(samples))] if seed is not None else samples

    return Windows()


def _base_model(blocks: str, num_classes: int, dropout: float):
    """(the network to train, the base I3D): the top alone or the whole network, the base's weights in every block
    but the new classifier, BatchNorm frozen."""
    keras = import_keras()
    from models.i3d.convert import build_converted_model
    from models.i3d.network import LOGITS_LAYER, build_i3d, build_i3d_top, copy_weights

    base = build_converted_model()
    model = build_i3d_top(num_classes=num_classes, dropout=dropout) if blocks == "top" else \
        build_i3d(num_classes=num_classes, dropout=dropout)
    copy_weights(base, model, skip=(LOGITS_LAYER,))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # inference mode: the Kinetics statistics and biases stay
    return model, base


def _features(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """The frozen network's features of every window of `dataset` (in order), and their labels."""
    xs, ys = [], []
    for index in range(len(dataset)):
        x, y = dataset[index][:2]
        xs.append(np.asarray(model(x, training=False)["features"]))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _probe(model, train_set, val_set, num_classes: int, config: FinetuneConfig, weights: dict[int, float],
           progress: bool) -> dict:
    """Fit the new classifier alone on the frozen network's features (every view's windows of the training videos);
    its weights go into `model`. Returns its history."""
    keras = import_keras()
    from models.i3d.network import LOGITS_LAYER

    x, y = _features(model, train_set)
    validation = _features(model, val_set) if val_set is not None else None
    features = keras.Input(shape=(x.shape[1],))
    logits = keras.layers.Dense(num_classes, name=LOGITS_LAYER)(keras.layers.Dropout(config.dropout)(features))
    probe = keras.Model(features, logits)
    probe.compile(optimizer=keras.optimizers.Adam(config.lr * 10),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    monitor = "val_loss" if validation else "loss"
    fit = probe.fit(x, y, sample_weight=np.array([weights[c] for c in y], np.float32), batch_size=32,
                    epochs=config.probe_epochs, validation_data=validation, verbose=0, shuffle=True,
                    callbacks=[keras.callbacks.EarlyStopping(monitor=monitor, patience=20, restore_best_weights=True)])
    model.get_layer(LOGITS_LAYER).set_weights(probe.get_layer(LOGITS_LAYER).get_weights())
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    if progress:
        print(f"linear probe of the new classifier: {len(history['loss'])} epochs, best {monitor} "
              f"{min(history[monitor]):.4f}", file=sys.stderr)
    return history


def _video_probabilities(model, videos: list[_Video], blocks: str, batch_size: int) -> np.ndarray:
    """Each video's windows (its first view) through `model`, their softmax probabilities averaged."""
    from models.labels import softmax

    out = []
    for video in videos:
        windows = video.views[0]
        logits = np.concatenate([np.asarray(model(_as_input(windows[i:i + batch_size], blocks), training=False)["logits"])
                                 for i in range(0, len(windows), batch_size)])
        out.append(softmax(logits).mean(axis=0))
    return np.stack(out)


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:12]


def finetune(
    train_samples: list[Sample],
    out_dir: Path,
    extractor: Extractor,
    *,
    val_samples: list[Sample] | None = None,
    clips: ClipSettings = ClipSettings(),
    config: FinetuneConfig = FinetuneConfig(),
    cache_dir: Path,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune I3D on `train_samples` from the base `extractor` and write the new extractor to `out_dir` (replacing
    it); returns the validation results, with the int8 verdict. Usage: `python -m models finetune --data DATA --out DIR`
    """
    keras = import_keras()
    from models.i3d.convert import EXTRACTOR_ID, write_extractor
    from models.i3d.network import LOGITS_LAYER, copy_weights
    from models.labels import KINETICS

    if config.blocks not in BLOCKS:
        raise ValueError(f"unknown blocks {config.blocks!r}; one of {', '.join(BLOCKS)}")
    if extractor.extractor_id != EXTRACTOR_ID:
        raise DatasetError(f"fine-tuning starts from the base I3D ({EXTRACTOR_ID}); {extractor.handle} is "
                           f"{extractor.extractor_id}")
    seed_everything(config.seed)
    out_dir = Path(out_dir)
    name = name or out_dir.name
    if name == KINETICS:
        raise DatasetError(f"a fine-tuned I3D cannot be named {KINETICS!r}")
    if val_samples is None:
        train_samples, val_samples, _ = split_by_group(
            train_samples, fractions=(1 - config.val_fraction, config.val_fraction, 0.0), seed=config.seed)
    labels = sorted({s.label for s in train_samples})
    if len(labels) < 2:
        raise DatasetError(f"fine-tuning needs at least 2 classes, got {labels}")
    val_samples = [s for s in val_samples if s.label in labels]

    started = time.perf_counter()
    views = augmentation_views(config.views if config.augment else 1, clips.stride)
    train_videos, failed = cache_inputs(train_samples, views, extractor, clips=clips, blocks=config.blocks,
                                        cache_dir=cache_dir, progress=progress)
    val_videos, val_failed = cache_inputs(val_samples, [PLAIN_VIEW], extractor, clips=clips, blocks=config.blocks,
                                          cache_dir=cache_dir, progress=progress)
    failed.update(val_failed)
    for path, why in failed.items():
        log.warning("skipped %s: %s", path, why)
    if not train_videos:
        raise DatasetError("no training video could be read")
    inputs_s = time.perf_counter() - started

    windows_of = np.bincount([labels.index(v.sample.label) for v in train_videos for _ in range(len(v.views[0]))],
                             minlength=len(labels))
    weights = {c: float(windows_of.sum() / (len(labels) * n)) for c, n in enumerate(windows_of) if n}
    train_set = _windows(train_videos, labels, config.blocks, config.batch_size, seed=config.seed, weights=weights)
    val_set = _windows(val_videos, labels, config.blocks, config.batch_size, seed=None) if val_videos else None
    every_view = _windows([_Video(v.sample, [view]) for v in train_videos for view in v.views], labels, config.blocks,
                          config.batch_size, seed=None)

    model, base = _base_model(config.blocks, len(labels), config.dropout)
    probe_history = _probe(model, every_view, val_set, len(labels), config, weights, progress)
    training = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output)  # the logits alone: what is trained
    training.compile(optimizer=keras.optimizers.Adam(config.lr),
                     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    monitor = "val_loss" if val_set is not None else "loss"
    fit = training.fit(train_set, validation_data=val_set, epochs=config.epochs, verbose=2 if progress else 0,
                       callbacks=[keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience,
                                                                restore_best_weights=True),
                                  keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                                    patience=max(1, config.patience // 2),
                                                                    min_lr=config.lr / 16)])
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    trained_s = time.perf_counter() - started - inputs_s

    evaluated = val_videos or train_videos
    results = classification_report(np.array([labels.index(v.sample.label) for v in evaluated]),
                                    _video_probabilities(model, evaluated, config.blocks, config.batch_size), labels)
    results["evaluated_on"] = "validation" if val_videos else "training (no validation videos)"

    extractor_id = f"{EXTRACTOR_ID}+finetuned:{name}:{_weights_digest(model)}"

    def set_weights(network) -> None:  # the base's blocks, then the trained ones and the new classifier
        copy_weights(base, network, skip=(LOGITS_LAYER,))
        copy_weights(model, network, strict=False)

    conversion = write_extractor(out_dir, set_weights, labels=labels, name=name, extractor_id=extractor_id,
                                 seed=config.seed, record={"base": EXTRACTOR_ID, "blocks": config.blocks})
    written_s = time.perf_counter() - started - inputs_s - trained_s
    int8 = _int8(out_dir, [v.sample.path for v in train_videos], [v.sample.path for v in evaluated], config) \
        if config.int8 else None
    int8_s = time.perf_counter() - started - inputs_s - trained_s - written_s
    record = {
        "name": name, "extractor_id": extractor_id, "base": {"extractor_id": EXTRACTOR_ID, "handle": extractor.handle,
                                                               "runtime": extractor.runtime,
                                                               "precision": extractor.precision},
        "labels": labels, "clip_len": clips.clip_len, "stride": clips.stride, "frames": clips.frames_id,
        "training": {**asdict(config), "view_ids": [view.id or "plain" for view in views],
                     "train_videos": len(train_videos), "val_videos": len(val_videos),
                     "train_windows": int(windows_of.sum()), "skipped_videos": {str(p): why for p, why in failed.items()},
                     "probe_epochs_run": len(probe_history["loss"]), "epochs_run": len(history["loss"]),
                     "inputs_seconds": round(inputs_s, 1), "training_seconds": round(trained_s, 1),
                     "writing_seconds": round(written_s, 1), "int8_seconds": round(int8_s, 1) if int8 else None},
        "metrics": {k: results[k] for k in results if k.startswith("top")},
        "videos": {"training": [str(v.sample.path) for v in train_videos],  # int8's calibration and judges
                   "validation": [str(v.sample.path) for v in evaluated]},
        "conversion": {k: conversion[k] for k in ("verify_max_abs_diff", "space_to_depth_max_abs_diff")},
        "int8": int8,
    }
    (out_dir / FINETUNE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    (out_dir / "history.json").write_text(json.dumps({**history, "probe": probe_history}, indent=2) + "\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot_curves(history, out_dir / "training_curves.png")
    plot_confusion(results["confusion_matrix"], labels, out_dir / "confusion_matrix.png")
    return {**results, "extractor_id": extractor_id, "int8": int8}


def recorded_videos(handle: str | Path) -> tuple[list[Path], list[Path]] | None:
    """(training, validation) videos of the fine-tuned I3D at `handle` that are still there, from its record: what
    `python -m models quantize` calibrates and judges its int8 model on by default. None for any other handle."""
    record = Path(handle) / FINETUNE_RECORD
    if not record.is_file():
        return None
    videos = json.loads(record.read_text()).get("videos", {})
    kept = [[Path(p) for p in videos.get(side, []) if Path(p).is_file()] for side in ("training", "validation")]
    return (kept[0], kept[1]) if all(kept) else None


def _int8(handle: Path, calibration: list[Path], validation: list[Path], config: FinetuneConfig) -> dict:
    """The int8 IR this kind of CPU runs, calibrated on the training videos and held to the accuracy rule on the
    validation videos: `PRECISION=auto` uses it only where it passed."""
    from models.evaluation.int8 import validate_int8
    from models.i3d.quantize import int8_ir_of, quantize_int8

    stem, _ = int8_ir_of(str(handle))
    made = quantize_int8(str(handle), calibration, max_windows=config.calibration_windows, stem=stem)
    verdict = validate_int8(str(handle), validation)
    return {"ir": Path(made["path"]).stem, "calibration_windows": made["calibration_windows"],
            **{k: verdict[k] for k in ("videos", "same_top1", "min_top5_overlap", "window_top1_agreement",
                                       "max_logit_diff", "passes", "failures")}}
