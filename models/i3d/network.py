"""DeepMind's Inception-v1 I3D (Carreira & Zisserman, 2017) as a Keras model.

Layer names follow the checkpoint's scopes with '/' written as '.' (Keras forbids '/'), so
`Mixed_4b/Branch_1/Conv3d_0b_3x3` becomes the layers `Mixed_4b.Branch_1.Conv3d_0b_3x3.conv` and
`....bn`. The builder does no I/O; `models.i3d.checkpoint` fills in the weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

FEATURE_DIM = 1024
NUM_KINETICS_CLASSES = 400
TRUNK_END = "Mixed_5c.concat"  # the last layer before pooling: convolutional in time, stride 8 frames
LOGITS_LAYER = "Logits.Conv3d_0c_1x1"
TOP_INPUT = "MaxPool3d_5a_2x2"  # Mixed_4f max-pooled: what Mixed_5b reads, (N, T/8, 7, 7, 832)
TOP_CHANNELS = 832
TOP_BLOCKS = ("Mixed_5b", "Mixed_5c")  # what `python -m models finetune` trains by default, with the logits

# (name, [branch_0, branch_1a, branch_1b, branch_2a, branch_2b, branch_3]) output channels.
_INCEPTION_BLOCKS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def _unit3d(x, filters: int, kernel, *, name: str, stride=(1, 1, 1)):
    """Conv3D (SAME, no bias) -> BatchNorm (bias only, eps 1e-3) -> ReLU."""
    x = layers.Conv3D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}.conv")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, scale=False, name=f"{name}.bn")(x)
    return layers.ReLU(name=f"{name}.relu")(x)


# The stem, a 7x7x7 stride-2 conv over 3 channels, is slow on AMX (its tiles want 32 input channels).
# Its exact rewrite: pad as SAME would (2 before, 3 after) plus one more zero at the end, fold 2x2x2
# blocks into 24 channels, and run a 4x4x4 stride-1 VALID conv whose kernel is the 7x7x7 one padded to
# 8x8x8 with zeros and folded the same way (`space_to_depth_stem_kernel`).
STEMS = ("plain", "space_to_depth")
_STEM_PAD = ((2, 4), (2, 4), (2, 4))  # SAME's (2, 3) for kernel 7 stride 2 on even sizes, and one more zero


def _space_to_depth(x, *, name: str):
    """`(N, T, H, W, C)` with even T, H, W (H, W static) -> `(N, T/2, H/2, W/2, 8C)`, channels (dt, dh, dw, c)."""
    _, _, h, w, c = x.shape
    x = layers.Reshape((-1, 2, h // 2, 2, w // 2, 2, c), name=f"{name}.split")(x)
    x = layers.Permute((1, 3, 5, 2, 4, 6, 7), name=f"{name}.permute")(x)
    return layers.Reshape((-1, h // 2, w // 2, 8 * c), name=f"{name}.fold")(x)


def space_to_depth_stem_kernel(kernel: np.ndarray) -> np.ndarray:
    """The stem's `(7, 7, 7, C, F)` kernel as the equivalent `(4, 4, 4, 8C, F)` space-to-depth kernel."""
    *_, c, f = kernel.shape
    padded = np.pad(kernel, ((0, 1), (0, 1), (0, 1), (0, 0), (0, 0)))  # (8, 8, 8, C, F)
    folded = padded.reshape(4, 2, 4, 2, 4, 2, c, f).transpose(0, 2, 4, 1, 3, 5, 6, 7)
    return np.ascontiguousarray(folded.reshape(4, 4, 4, 8 * c, f))


def _stem(clips, stem: str):
    name = "Conv3d_1a_7x7"
    if stem == "plain":
        return _unit3d(clips, 64, (7, 7, 7), stride=(2, 2, 2), name=name)
    x = layers.ZeroPadding3D(_STEM_PAD, name=f"{name}.pad")(clips)
    x = _space_to_depth(x, name=f"{name}.space_to_depth")
    x = layers.Conv3D(64, (4, 4, 4), padding="valid", use_bias=False, name=f"{name}.conv")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, scale=False, name=f"{name}.bn")(x)
    return layers.ReLU(name=f"{name}.relu")(x)


def _max_pool(x, window, stride, *, name: str):
    return layers.MaxPooling3D(window, strides=stride, padding="same", name=name)(x)


def _inception(x, channels, *, name: str):
    c0, c1a, c1b, c2a, c2b, c3 = channels
    b0 = _unit3d(x, c0, (1, 1, 1), name=f"{name}.Branch_0.Conv3d_0a_1x1")
    b1 = _unit3d(x, c1a, (1, 1, 1), name=f"{name}.Branch_1.Conv3d_0a_1x1")
    b1 = _unit3d(b1, c1b, (3, 3, 3), name=f"{name}.Branch_1.Conv3d_0b_3x3")
    b2 = _unit3d(x, c2a, (1, 1, 1), name=f"{name}.Branch_2.Conv3d_0a_1x1")
    b2 = _unit3d(b2, c2b, (3, 3, 3), name=f"{name}.Branch_2.Conv3d_0b_3x3")
    b3 = _max_pool(x, (3, 3, 3), (1, 1, 1), name=f"{name}.Branch_3.MaxPool3d_0a_3x3")
    b3 = _unit3d(b3, c3, (1, 1, 1), name=f"{name}.Branch_3.Conv3d_0b_1x1")
    return layers.Concatenate(axis=-1, name=f"{name}.concat")([b0, b1, b2, b3])


def _top(x, num_classes: int, dropout: float):
    """Mixed_4f max-pooled (`TOP_INPUT`'s output) -> Mixed_5b, Mixed_5c, the head: `(features, logits)`."""
    x = _inception(x, _INCEPTION_BLOCKS["Mixed_5b"], name="Mixed_5b")
    x = _inception(x, _INCEPTION_BLOCKS["Mixed_5c"], name="Mixed_5c")
    x = layers.AveragePooling3D((2, 7, 7), strides=(1, 1, 1), padding="valid", name="Logits.AvgPool")(x)
    # (N, T', 1, 1, 1024) -> (N, 1024): mean over time, in float32 whatever the compute dtype.
    features = layers.Lambda(
        lambda t: ops.mean(ops.cast(t, "float32"), axis=(1, 2, 3)), name="features", dtype="float32"
    )(x)
    dropped = layers.Dropout(dropout, name="Logits.Dropout")(features) if dropout else features
    logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(dropped)
    return features, logits


def build_i3d(*, num_classes: int = NUM_KINETICS_CLASSES, dtype_policy: str = "float32",
              stem: str = "plain", dropout: float = 0.0) -> keras.Model:
    """Build I3D RGB for inference.

    Input `clips: (N, T, 224, 224, 3)` RGB in [-1, 1] (T >= 9; 64 in this project; even T with the
    space-to-depth `stem`, which computes the same function as the plain one).
    Outputs a dict: `logits: (N, num_classes)` averaged over time, and `features: (N, 1024)`,
    the 2x7x7-average-pooled Mixed_5c activations averaged over time. The reference applies the
    1x1x1 logits conv before the temporal mean; both are affine, so applying it after is the same.
    `dropout` (training only) drops features before the logits layer, as I3D was trained.
    """
    policy = keras.DTypePolicy(dtype_policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        clips = keras.Input(shape=(None, 224, 224, 3), name="clips", dtype="float32")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; one of {', '.join(STEMS)}")
        x = _stem(clips, stem)
        x = _max_pool(x, (1, 3, 3), (1, 2, 2), name="MaxPool3d_2a_3x3")
        x = _unit3d(x, 64, (1, 1, 1), name="Conv3d_2b_1x1")
        x = _unit3d(x, 192, (3, 3, 3), name="Conv3d_2c_3x3")
        x = _max_pool(x, (1, 3, 3), (1, 2, 2), name="MaxPool3d_3a_3x3")
        x = _inception(x, _INCEPTION_BLOCKS["Mixed_3b"], name="Mixed_3b")
        x = _inception(x, _INCEPTION_BLOCKS["Mixed_3c"], name="Mixed_3c")
        x = _max_pool(x, (3, 3, 3), (2, 2, 2), name="MaxPool3d_4a_3x3")
        for block in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = _inception(x, _INCEPTION_BLOCKS[block], name=block)
        x = _max_pool(x, (2, 2, 2), (2, 2, 2), name=TOP_INPUT)
        features, logits = _top(x, num_classes, dropout)
        return keras.Model(clips, {"logits": logits, "features": features}, name="i3d_rgb")
    finally:
        keras.config.set_dtype_policy(previous)


def build_i3d_top(*, num_classes: int, dropout: float = 0.0) -> keras.Model:
    """The top of I3D alone, as fine-tuning trains it: `activations: (N, T/8, 7, 7, 832)`, Mixed_4f max-pooled as
    Mixed_5b reads it, -> the same `logits` and `features` as `build_i3d`. Its layers are named as there, so its
    weights go into the whole network by name."""
    activations = keras.Input(shape=(None, 7, 7, TOP_CHANNELS), name="activations", dtype="float32")
    features, logits = _top(activations, num_classes, dropout)
    return keras.Model(activations, {"logits": logits, "features": features}, name="i3d_top")


def copy_weights(source: keras.Model, target: keras.Model, *, strict: bool = True, skip: tuple[str, ...] = ()) -> int:
    """Copy the weights of `source`'s layers into `target`'s layers of the same names (the stem kernel folded where
    `target` has the space-to-depth stem), but those named in `skip`; returns how many layers were copied. `strict`:
    every other `target` layer with weights must have its namesake in `source` (else only those both have are copied)."""
    names = {layer.name for layer in source.layers}
    copied = 0
    for layer in target.layers:
        if not layer.weights or layer.name in skip:
            continue
        if layer.name not in names:
            if strict:
                raise ValueError(f"{source.name} has no layer {layer.name}")
            continue
        weights = source.get_layer(layer.name).get_weights()
        if isinstance(layer, layers.Conv3D) and tuple(layer.kernel.shape) != weights[0].shape:
            weights = [space_to_depth_stem_kernel(weights[0])]
        layer.set_weights(weights)
        copied += 1
    return copied
