"""Import TensorFlow set up for this CPU, without its start-up notices on the user's terminal.

TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or
AMX; elsewhere (an AVX2-only CPU) Conv3D runs through Eigen. `import_tensorflow` turns oneDNN on there too
(unless TF_ENABLE_ONEDNN_OPTS says otherwise): `make bench` measures the gain.

TensorFlow's C++ side prints oneDNN, CUDA-stub and cuInit lines to file descriptor 2 when it is imported
and first looks for a GPU, ignoring TF_CPP_MIN_LOG_LEVEL. They are caught here and dropped; any other
line (a real warning or error) is written to stderr afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

from models.hardware import cpu_flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|I0000 |"
    r"E0000 .*\bcuda_(platform|executor|diagnostics)\.cc|To enable the following instructions|"
    r"\s*$|.*rebuild TensorFlow with the appropriate compiler flags)"
)


@contextlib.contextmanager
def native_stderr_filtered():
    """Run the body with fd 2 captured; replay the captured lines that are not known start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not _NOISE.match(line):
                    print(line, file=sys.stderr)


# TensorFlow's own condition for oneDNN by default (tensorflow/core/util/util.cc, IsMKLEnabled).
ONEDNN_DEFAULT_FLAGS = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"})


def onednn_off_by_default() -> bool:
    """True on a CPU where TensorFlow itself would run Conv3D through Eigen (an AVX2 CPU, or one capped to it)."""
    return not ONEDNN_DEFAULT_FLAGS & cpu_flags()


# Set when this module is imported, before anything (this module, or a library such as NNCF) imports TensorFlow.
if onednn_off_by_default():
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_initialised = False


def import_tensorflow():
    """`tensorflow`, imported and its runtime initialised quietly the first time, with oneDNN on. (A
    library that imported TensorFlow first, such as NNCF, leaves the initialisation to this call.)"""
    global _initialised
    if not _initialised:
        with native_stderr_filtered():
            import tensorflow as tf

            tf.config.list_logical_devices()  # initialises the runtime (cuInit and its notices) here, not later
        _initialised = True
    return sys.modules["tensorflow"]


def import_keras():
    """`keras`, after TensorFlow's quiet import (training and trained heads come in here)."""
    import_tensorflow()
    import keras

    return keras
