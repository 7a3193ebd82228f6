"""The plain stem's convolution in int8, fed the frames' own values.

The IR's stem reads frames scaled to [-1, 1]. A quantized signed input is taken by oneDNN's int8 kernels only
with VNNI or AMX: on an AVX2 CPU the plain stem (3 input channels, about 45% of an int8 clip there) stayed in
float32. Rewritten to read the frames as 0..255 (`stem_on_frames`), its input quantizes to uint8 exactly,
one level a frame value (`quantize_frames_exactly`), so only its weights are rounded, and AVX2 runs it with
its int8 kernels. The rewrite is exact in float: weights times the input scale, a bias of minus the offset
times the weights' sum, and padding by the frame value that scales to 0 (127.5), as SAME would pad.
"""

from __future__ import annotations

import numpy as np

from models.video import INPUT_OFFSET, INPUT_SCALE

STEM_NAME = "stem_on_frames"  # the rewritten convolution's friendly name
PAD_VALUE = float(INPUT_OFFSET / INPUT_SCALE)  # the frame value that scales to 0


def _first_convolution(model):
    return next(op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution")


def _same_pads(data, kernel: list[int], strides: list[int], lower: bool):
    """`(pads_begin, pads_end)` as SAME_UPPER (or SAME_LOWER) pads `data: (N, C, *spatial)`, computed from its
    shape in the graph, so that a clip of any length (odd ones too) is padded as the original convolution was."""
    import openvino.opset13 as ops

    def const(values):
        return ops.constant(np.array(values, np.int64))

    spatial = ops.gather(ops.shape_of(data, "i64"), const(list(range(2, 2 + len(kernel)))), const(0))
    stride = const(strides)
    out = ops.divide(ops.add(spatial, ops.subtract(stride, const(1))), stride)  # ceil(in / stride)
    total = ops.maximum(ops.subtract(ops.add(ops.multiply(ops.subtract(out, const(1)), stride), const(kernel)), spatial),
                        const(0))
    small = ops.divide(total, const(2))
    large = ops.subtract(total, small)
    begin, end = (large, small) if lower else (small, large)
    return ops.concat([const([0, 0]), begin], 0), ops.concat([const([0, 0]), end], 0)


def stem_on_frames(model) -> str:
    """Rewrite `model`'s stem (its first convolution) in place to read the frames as 0..255; return its name."""
    import openvino.opset13 as ops

    conv = _first_convolution(model)
    attributes = conv.get_attributes()
    weights = conv.input_value(1).get_node().get_data().astype(np.float32)  # (F, C, *kernel)
    data = conv.input_value(0)
    frames = ops.multiply(ops.add(data, ops.constant(np.float32(INPUT_OFFSET))), ops.constant(np.float32(1 / INPUT_SCALE)))
    if attributes["auto_pad"] in ("same_upper", "same_lower"):
        begin, end = _same_pads(frames, list(weights.shape[2:]), attributes["strides"], attributes["auto_pad"] == "same_lower")
    elif attributes["auto_pad"] == "explicit":
        begin, end = (ops.constant(np.array([0, 0, *attributes[key]], np.int64)) for key in ("pads_begin", "pads_end"))
    else:
        raise ValueError(f"stem convolution with auto_pad {attributes['auto_pad']!r}")
    padded = ops.pad(frames, begin, end, "constant", ops.constant(np.float32(PAD_VALUE)))
    zeros = [0] * (weights.ndim - 2)
    stem = ops.convolution(padded, ops.constant(weights * np.float32(INPUT_SCALE)), attributes["strides"], zeros, zeros,
                           attributes["dilations"], "explicit")
    stem.set_friendly_name(STEM_NAME)
    offset = -np.float32(INPUT_OFFSET) * weights.sum(axis=tuple(range(1, weights.ndim)))
    shifted = ops.add(stem, ops.constant(offset.reshape(1, -1, *[1] * (weights.ndim - 2)).astype(np.float32)))
    for target in list(conv.output(0).get_target_inputs()):
        target.replace_source_output(shifted.output(0))
    model.validate_nodes_and_infer_types()
    return STEM_NAME


def quantize_frames_exactly(model) -> None:
    """After NNCF: the stem's input quantized to 256 levels over [0, 255] right before its convolution (NNCF
    puts its own, calibrated on the frames seen, before the padding, where the padding value would not stay
    exact and the convolution runs in float). Any fake-quantize NNCF put between the frames and the stem goes."""
    import openvino.opset13 as ops

    stem = next(op for op in model.get_ordered_ops() if op.get_friendly_name() == STEM_NAME)
    node = stem
    while node.get_type_name() != "Parameter":
        upstream = node.input_value(0).get_node()
        if upstream.get_type_name() == "FakeQuantize":
            node.input(0).replace_source_output(upstream.input_value(0))
            continue
        node = upstream
    low, high = ops.constant(np.float32(0)), ops.constant(np.float32(255))
    stem.input(0).replace_source_output(ops.fake_quantize(stem.input_value(0), low, high, low, high, 256).output(0))
    model.validate_nodes_and_infer_types()
