"""The OpenVINO runtime: I3D on the CPU through OpenVINO's oneDNN kernels (AMX, AVX-512, AVX2), without TensorFlow.

It runs the IRs `make setup` writes beside the SavedModel (`models.i3d.irs`, `models.i3d.convert.convert_openvino`):
`plain.xml` and `space_to_depth.xml` (the same network with the stem rewritten, float32 weights) and,
after `python -m models quantize`, the int8 IR of the stem this kind of CPU runs (`int8.xml` or
`int8_space_to_depth.xml`). For a handle with no IRs beside it (a TF Hub handle), they
are made from whatever TensorFlow loads, once, into `models/saved/openvino-cache/` (TensorFlow is needed
for that one conversion only).

float32 and bfloat16 are the same IR compiled with another inference precision; int8 is its own IR.
Each compiled model takes uint8 frames and scales them itself, and clips and trunk passes run a model compiled
for their exact shape (batch, frames): on the AMX Xeon the two made a clip 1.16x faster, with the same logits.
Never a dynamic shape: capped to AVX2, the dynamic int8 trunk ran its MaxPools on reference kernels, 22.6 s
for 128 frames against 2.83 s static; a static compile takes 0.4-1 s.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict

import numpy as np

from models.i3d.irs import IR_RECORD, ensure_irs, int8_verdicts
from models.runtimes.extractor import ClipOutputs
from models.hardware import bfloat16_capped_off, choose_precision, choose_stem, int8_ir_name, openvino_auto_precision
from models.video import INPUT_OFFSET, INPUT_SCALE

log = logging.getLogger(__name__)

INFERENCE_PRECISION = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}  # int8 IR: unquantized layers in f32
TOP_CHANNELS = 832  # Mixed_4f's, what the top of I3D reads (models.i3d.network.TOP_CHANNELS, without Keras here)
COMPILED_SHAPES = 4  # compiled models kept (IR, trunk or not, shape); one more evicts the least recently used


class OpenVINOI3D:
    """I3D compiled for this CPU by OpenVINO. `precision` "auto" is int8 where `make setup` validated it on
    this kind of CPU; else bfloat16 with AMX or AVX512-BF16; else float32 (`openvino_auto_precision`).
    "int8" runs the int8 IR of the stem (refused with a clear message when it was not made).
    With the space-to-depth stem, a clip of odd length runs a plain IR (the rewrite needs even T)."""

    runtime = "openvino"
    device = "CPU"
    xla = False

    def __init__(self, handle: str, *, precision: str = "auto", cpu_flags: frozenset[str] | None = None,
                 stem: str = "auto", threads: int | None = None):
        import openvino as ov

        self.handle = handle
        self._dir = ensure_irs(handle)
        record = json.loads((self._dir / IR_RECORD).read_text())
        if precision == "auto":
            precision = openvino_auto_precision(cpu_flags, int8_verdicts(record, self._dir, cpu_flags))
        self.precision = choose_precision(precision, runtime=self.runtime, flags=cpu_flags)
        self.stem = choose_stem(self.runtime, self.precision, cpu_flags) if stem == "auto" else stem
        if self.stem not in record["irs"]:  # a TF Hub handle has only the plain graph
            self.stem = "plain"
        self.extractor_id, self.feature_dim = record["extractor_id"], int(record["feature_dim"])
        if self.precision == "int8" and not (self._dir / f"{int8_ir_name(self.stem)}.xml").is_file():
            raise ValueError(f"no int8 model of the {self.stem} stem in {self._dir}: run `python -m models quantize` first")
        self._core = ov.Core()
        if self.precision == "bfloat16" and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ValueError("bfloat16 needs a CPU with AMX or AVX512-BF16 (OpenVINO reports no BF16 support "
                             "here); use float32 or int8")
        capped = bfloat16_capped_off() if self.precision == "bfloat16" else None
        if capped:
            raise ValueError(f"bfloat16 cannot run: {capped}; use float32, int8 or lift the cap")
        self._config = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[self.precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._lock = threading.Lock()
        self._compiled: OrderedDict[tuple[str, str | None, tuple[int, ...]], object] = OrderedDict()  # (IR, cut, shape)
        self._clip_shape: tuple[int, ...] = (1, 64, 224, 224, 3)  # what `load` compiles: the last clip shape run
        self._logits_weights: tuple[np.ndarray, np.ndarray] | None = None
        self.load()

    def _ir(self, even_frames: bool) -> str:
        stem = self.stem if even_frames else "plain"
        if self.precision == "int8" and (self._dir / f"{int8_ir_name(stem)}.xml").is_file():
            return int8_ir_name(stem)
        return stem  # float, or an odd-length clip where only the space-to-depth int8 IR was made

    def _compiled_model(self, name: str, shape: tuple[int, ...], *, cut: str | None = None):
        """IR `name` (cut to its trunk or its top's input with `cut` "trunk" or "top_input") compiled for uint8 input
        of static `shape`; the least recently used of more than COMPILED_SHAPES compiled models is dropped."""
        key = (name, cut, tuple(shape))
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        model = self._core.read_model(self._dir / f"{name}.xml")
        if cut:
            model = {"trunk": _trunk_of, "top_input": _top_input_of}[cut](model)
        model.reshape(list(shape))
        self._compiled[key] = self._core.compile_model(_uint8_input(model), "CPU", self._config)
        while len(self._compiled) > COMPILED_SHAPES:
            self._compiled.popitem(last=False)
        return self._compiled[key]

    @property
    def loaded(self) -> bool:
        return bool(self._compiled)

    def load(self):
        """Compile the IR that clips run, for the last clip shape run (64 frames, batch 1 at first); other shapes and
        the trunk compile on first use."""
        with self._lock:
            shape = self._clip_shape
            return self._compiled_model(self._ir(shape[1] % 2 == 0), shape)

    def unload(self) -> None:
        with self._lock:
            self._compiled.clear()

    def __call__(self, clips: np.ndarray) -> ClipOutputs:
        """`clips: (N, T, 224, 224, 3) uint8 RGB` -> logits and features, as numpy."""
        with self._lock:
            self._clip_shape = clips.shape
            compiled = self._compiled_model(self._ir(clips.shape[1] % 2 == 0), clips.shape)
            outputs = compiled(np.ascontiguousarray(clips, np.uint8))
            return ClipOutputs(logits=np.array(outputs[compiled.output("logits")]),
                               features=np.array(outputs[compiled.output("features")]))

    def trunk_positions(self, frames: np.ndarray) -> np.ndarray:
        """`frames: (N, T, 224, 224, 3) uint8`, T a multiple of 8 -> `(N, T/8, 1024)` Mixed_5c averaged over space."""
        with self._lock:
            compiled = self._compiled_model(self._ir(even_frames=True), frames.shape, cut="trunk")
            positions = np.array(compiled(np.ascontiguousarray(frames, np.uint8))[compiled.output("positions")])
            # a long stretch's activations are hundreds of MB: not held between passes (the 2-minute video's
            # peak RSS in EXTRACTION=shared went from 1,257-1,365 to 852-1,013 MB, no slower)
            compiled.release_memory()
            return positions

    def top_input(self, clips: np.ndarray) -> np.ndarray:
        """`clips: (N, T, 224, 224, 3) uint8` -> `(N, T/8, 7, 7, 832)`: Mixed_4f max-pooled, what Mixed_5b reads."""
        with self._lock:
            compiled = self._compiled_model(self._ir(clips.shape[1] % 2 == 0), clips.shape, cut="top_input")
            return np.array(compiled(np.ascontiguousarray(clips, np.uint8))[compiled.output("top_input")])

    def logits_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """`kernel: (1024, 400)`, `bias: (400,)`, read from the IR's logits layer."""
        if self._logits_weights is None:
            self._logits_weights = _logits_weights_of(self._core.read_model(self._dir / "plain.xml"))
        return self._logits_weights

    def gpu_memory_bytes(self) -> int | None:
        return None

    def close(self) -> None:
        self.unload()


def _uint8_input(model):
    """`model` taking uint8 frames and scaling them to [-1, 1] itself, as `models.video.to_model_input` would."""
    from openvino import Type
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    clips = ppp.input()
    clips.tensor().set_element_type(Type.u8)
    clips.preprocess().convert_element_type(Type.f32).mean(float(INPUT_OFFSET / INPUT_SCALE)).scale(float(1 / INPUT_SCALE))
    return ppp.build()


def _only(model, op_type: str):
    ops = [op for op in model.get_ordered_ops() if op.get_type_name() == op_type]
    if len(ops) != 1:
        raise ValueError(f"expected one {op_type} in the I3D IR, found {len(ops)}")
    return ops[0]


def _trunk_of(model):
    """The IR cut before its one AvgPool (the head's 2x7x7 pool): `clips` -> `positions: (N, T/8, 1024)`,
    Mixed_5c averaged over space. The IR keeps TensorFlow's channels-last input but runs channels-first inside."""
    import openvino as ov
    import openvino.opset13 as ops

    mixed_5c = _only(model, "AvgPool").input_value(0)
    channels_first = mixed_5c.get_partial_shape()[1].is_static and mixed_5c.get_partial_shape()[1].get_length() > 7
    space = [3, 4] if channels_first else [2, 3]
    means = ops.reduce_mean(mixed_5c, ops.constant(np.array(space, np.int64)), keep_dims=False)
    if channels_first:
        means = ops.transpose(means, ops.constant(np.array([0, 2, 1], np.int64)))
    means.output(0).get_tensor().set_names({"positions"})
    return ov.Model([means.output(0)], model.get_parameters(), "i3d_trunk")


def _top_input_of(model):
    """The IR cut after the max pool Mixed_5b reads (`models.i3d.network.TOP_INPUT`, the one max pool of Mixed_4f's
    832 channels at 14x14): `clips` -> `top_input: (N, T/8, 7, 7, 832)`, channels last."""
    import openvino as ov
    import openvino.opset13 as ops

    def reads_mixed_4f(op) -> bool:
        shape = op.input_value(0).get_partial_shape()
        dims = [shape[i].get_length() if shape[i].is_static else None for i in range(5)]
        return (dims[1] == TOP_CHANNELS and dims[3:] == [14, 14]) or (dims[4] == TOP_CHANNELS and dims[2:4] == [14, 14])

    pools = [op for op in model.get_ordered_ops() if op.get_type_name() == "MaxPool" and reads_mixed_4f(op)]
    if len(pools) != 1:
        raise ValueError(f"expected one max pool of Mixed_4f in the I3D IR, found {len(pools)}")
    pooled = pools[0].output(0)
    if pooled.get_partial_shape()[1].is_static and pooled.get_partial_shape()[1].get_length() == TOP_CHANNELS:
        pooled = ops.transpose(pooled, ops.constant(np.array([0, 2, 3, 4, 1], np.int64))).output(0)
    pooled.get_tensor().set_names({"top_input"})
    return ov.Model([pooled], model.get_parameters(), "i3d_top_input")


def _logits_weights_of(model) -> tuple[np.ndarray, np.ndarray]:
    """The logits layer's `kernel: (1024, 400)` and `bias: (400,)` from the IR's one MatMul and the Add after it."""
    matmul = _only(model, "MatMul")
    kernel = matmul.input_value(1).get_node().get_data().astype(np.float32)
    if matmul.get_attributes().get("transpose_b"):
        kernel = kernel.T
    add = next(iter(matmul.output(0).get_target_inputs())).get_node()
    bias = next(add.input_value(i).get_node() for i in range(2) if add.input_value(i).get_node().get_type_name() == "Constant")
    return np.ascontiguousarray(kernel), bias.get_data().astype(np.float32).reshape(-1)
