"""The checkpoint reader: pinned hash, numpy-only unpickling, every array used."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from models.i3d.checkpoint import (
    CHECKPOINT_SHA256,
    CheckpointError,
    assign_weights,
    locate_checkpoint,
    read_checkpoint,
    sha256_of,
)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_installed_checkpoint_matches_pinned_hash():
    assert sha256_of(locate_checkpoint()) == CHECKPOINT_SHA256


def test_hash_mismatch_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    path.write_bytes(pickle.dumps({"params": {}, "batch_stats": {}}))
    with pytest.raises(CheckpointError, match="sha256"):
        read_checkpoint(path)


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": _RunsCode(), "batch_stats": {}}))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|not allowed"):
        read_checkpoint(path, expected_sha256=sha256_of(path))


def test_numpy_arrays_still_load(tmp_path):
    path = tmp_path / "ok.ckpt"
    tree = {"params": {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}, "batch_stats": {}}
    path.write_bytes(pickle.dumps(tree))
    flat = read_checkpoint(path, expected_sha256=sha256_of(path))
    np.testing.assert_array_equal(flat["params/a/kernel"], tree["params"]["a"]["kernel"])


def test_real_checkpoint_fills_every_layer_and_uses_every_array():
    from models.i3d.network import build_i3d

    arrays = read_checkpoint()
    model = build_i3d()
    assign_weights(model, arrays)  # raises if an array is missing or left over
    conv = model.get_layer("Mixed_4b.Branch_1.Conv3d_0b_3x3.conv")
    np.testing.assert_array_equal(conv.get_weights()[0], arrays["params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel"])
    with pytest.raises(CheckpointError, match="no params"):
        assign_weights(model, {k: v for k, v in arrays.items() if "Mixed_5c" not in k})
