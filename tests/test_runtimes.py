"""The runtime interface: OpenVINO against TensorFlow on real clips, the space-to-depth stem, int8 from
NNCF, and an API and a command line that need no TensorFlow (and print none of its notices)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CRICKET_MP4, DATA, ROOT
from models.video import read_frames

YOGA = DATA / "yoga__uniformer_Tw2yXa6CzWE.mp4"  # the clip with the smallest float32 margin


@pytest.fixture(scope="module")
def real_clip():
    frames = read_frames(YOGA)
    return frames[100:164][None]


@pytest.mark.parametrize("stem", ["plain", "space_to_depth"])
def test_openvino_float32_equals_tensorflow(saved_model_dir, float32_extractor, real_clip, stem):
    from models.runtimes.openvino import OpenVINOI3D

    openvino = OpenVINOI3D(str(saved_model_dir), precision="float32", stem=stem)  # whichever this CPU would choose
    try:
        got, expected = openvino(real_clip), float32_extractor(real_clip)
        assert np.abs(got.logits - expected.logits).max() < 1e-3
        assert np.abs(got.features - expected.features).max() < 1e-4
    finally:
        openvino.close()


def test_openvino_compiles_every_shape_static_and_keeps_the_most_recent(saved_model_dir, real_clip, monkeypatch):
    """Clips and trunk passes run a model compiled for their exact shape (a dynamic one ran 8x slower capped to
    AVX2); past COMPILED_SHAPES models the least recently used is dropped, and compiled again when needed."""
    from models.runtimes import openvino as runtime

    monkeypatch.setattr(runtime, "COMPILED_SHAPES", 2)
    clip_shape, pair_shape = real_clip.shape, (2, *real_clip.shape[1:])
    model = runtime.OpenVINOI3D(str(saved_model_dir), precision="float32", stem="plain")
    try:
        alone = model(real_clip)  # the shape `load` compiled
        pair = model(np.concatenate([real_clip, real_clip]))
        assert np.abs(pair.logits - alone.logits).max() < 1e-3
        assert [(cut, shape) for _, cut, shape in model._compiled] == [(None, clip_shape), (None, pair_shape)]
        model(real_clip)  # now the most recent: the trunk's compile drops the pair's
        positions = model.trunk_positions(real_clip)
        assert positions.shape == (1, real_clip.shape[1] // 8, 1024)
        assert [(cut, shape) for _, cut, shape in model._compiled] == [(None, clip_shape), ("trunk", clip_shape)]
        again = model(np.concatenate([real_clip, real_clip]))  # compiled again, dropping the oldest
        assert np.array_equal(again.logits, pair.logits)
        assert [(cut, shape) for _, cut, shape in model._compiled] == [("trunk", clip_shape), (None, pair_shape)]
    finally:
        model.close()


@pytest.mark.slow
def test_space_to_depth_stem_is_exact(saved_model_dir, float32_extractor, real_clip):
    """The rewritten stem computes the same function as the 7x7x7 one. Built in float64, the two stems'
    activations on a real clip agree to 1e-9 (the rewrite is exact). In float32 they differ by rounding only:
    at most 1e-5 of the activations' range (1.0-1.7e-5 on three other real clips, activations up to 11-18, less than the
    float32 plain stem's own distance from float64, 1.4-1.9e-5); the network's logits by 5e-6 on `make setup`'s
    random clip and 1.05e-5 on this one (bound 1e-4)."""
    import keras

    from models.i3d.checkpoint import assign_weights, read_checkpoint
    from models.i3d.network import build_i3d
    from models.runtimes.factory import open_extractor
    from models.video import to_model_input

    arrays, out = read_checkpoint(), {}
    for dtype in ("float64", "float32"):
        for stem in ("plain", "space_to_depth"):
            network = build_i3d(stem=stem, dtype_policy=dtype)
            assign_weights(network, arrays)
            stem_model = keras.Model(network.input, network.get_layer("Conv3d_1a_7x7.relu").output)
            out[dtype, stem] = np.asarray(stem_model(to_model_input(real_clip).astype(dtype)))
    plain, rewritten = out["float64", "plain"], out["float64", "space_to_depth"]
    assert plain.shape == rewritten.shape == (1, 32, 112, 112, 64) and plain.dtype == np.float64
    assert np.abs(plain - rewritten).max() <= 1e-9
    assert out["float32", "space_to_depth"].dtype == np.float32
    float32_diff = np.abs(out["float32", "plain"] - out["float32", "space_to_depth"]).max()
    assert float32_diff <= 1e-5 * np.abs(plain).max()
    variant = open_extractor(str(saved_model_dir / "variants" / "space_to_depth"), runtime="tensorflow",
                             precision="float32")
    try:
        assert np.abs(variant(real_clip).logits - float32_extractor(real_clip).logits).max() <= 1e-4
    finally:
        variant.close()


def test_openvino_outputs_and_odd_clip_lengths(extractor, real_clip):
    """Whatever this CPU chose: logits are the affine image of features, and an odd-length clip (which the
    space-to-depth stem cannot take) runs through the plain graph with the same ranking."""
    from models.i3d.checkpoint import read_checkpoint

    if extractor.runtime != "openvino":
        pytest.skip("a GPU runs TensorFlow")
    out = extractor(real_clip)
    assert out.logits.shape == (1, 400) and out.features.shape == (1, 1024)
    arrays = read_checkpoint()
    kernel = arrays["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"].reshape(1024, 400)
    bias = arrays["params/Logits/Conv3d_0c_1x1/Conv_0/bias"]
    tolerance = 0.5 if extractor.precision == "bfloat16" else 1e-3  # the logits layer runs in bfloat16 there
    assert np.abs(out.features @ kernel + bias - out.logits).max() < tolerance
    odd = extractor(real_clip[:, :63])
    assert odd.logits.argmax() == out.logits.argmax()


def _python(code: str, **env) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


def test_api_on_openvino_recognizes_without_tensorflow(saved_model_dir, tmp_path):
    code = f"""
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from api.app import create_app
from service.settings import Settings
settings = Settings(model_handle={str(saved_model_dir)!r}, upload_dir={str(tmp_path)!r}, runtime="openvino")
with TestClient(create_app(settings)) as client:
    body = client.post("/recognize_action", content=open({str(CRICKET_MP4)!r}, "rb").read(),
                       headers={{"Content-Type": "video/mp4"}}).json()
    model = client.get("/model").json()
print(body["actions"][0]["label"], model["runtime"], "tensorflow" in sys.modules, "keras" in sys.modules)
"""
    done = _python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-4:] == ["cricket", "openvino", "False", "False"], done.stdout[-500:]


def test_openvino_capped_to_avx2_runs_and_chooses_as_an_avx2_cpu(saved_model_dir):
    """With ONEDNN_MAX_CPU_ISA=AVX2 (what `make bench-avx2` sets) OpenVINO's kernels are AVX2 ones, and the
    service chooses as on an AVX2-only CPU: no bfloat16, the plain stem, int8 only on an AVX2 verdict."""
    code = f"""
import collections, json, numpy as np, openvino as ov
from models.i3d.irs import ir_dir_for
from models.runtimes.openvino import OpenVINOI3D
from models.hardware import cpu_kind
auto = OpenVINOI3D({str(saved_model_dir)!r})
core = ov.Core()
model = core.read_model(ir_dir_for({str(saved_model_dir)!r}) / "plain.xml")
compiled = core.compile_model(model, "CPU", {{"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32"}})
request = compiled.create_infer_request()
request.infer({{0: np.zeros((1, 16, 224, 224, 3), np.float32)}})
kernels = sorted({{p.exec_type for p in request.profiling_info if p.node_type == "Convolution"}})
print(json.dumps({{"kind": cpu_kind(), "precision": auto.precision, "stem": auto.stem, "kernels": kernels}}))
"""
    done = _python(code, ONEDNN_MAX_CPU_ISA="AVX2")
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["kind"] == "avx2" and seen["stem"] == "plain" and seen["precision"] in ("int8", "float32"), seen
    assert any("avx2" in kernel for kernel in seen["kernels"]), seen
    assert not any("avx512" in kernel or "amx" in kernel for kernel in seen["kernels"]), seen


@pytest.mark.slow
def test_command_line_help_needs_no_tensorflow_and_prints_no_notices():
    done = _python("import runpy, sys\nsys.argv = ['models', 'predict', '--help']\n"
                   "try:\n    runpy.run_module('models', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                   "print('tensorflow' in sys.modules, 'openvino' in sys.modules)")
    assert done.stdout.split()[-2:] == ["False", "False"] and "--runtime" in done.stdout
    predict = subprocess.run([sys.executable, "-m", "models", "predict", str(CRICKET_MP4), "--runtime", "tensorflow",
                              "--precision", "float32"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert predict.returncode == 0 and " 1. playing cricket" in predict.stdout
    for notice in ("oneDNN custom operations", "cuda", "absl::InitializeLog", "rebuild TensorFlow"):
        assert notice not in predict.stderr, predict.stderr[-2000:]


def test_native_stderr_filter_keeps_real_warnings():
    done = _python("import os\nfrom models.tensorflow_env import native_stderr_filtered\n"
                   "with native_stderr_filtered():\n"
                   "    os.write(2, b'I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on\\n')\n"
                   "    os.write(2, b'W0000 00:00:1.0 1 something.cc:1] a warning that matters\\n')\n")
    assert "a warning that matters" in done.stderr and "oneDNN" not in done.stderr


@pytest.mark.parametrize("stem", ["plain", "space_to_depth"])
@pytest.mark.slow
def test_int8_quantization_runs_and_keeps_rankings(saved_model_dir, float32_extractor, tmp_path, stem):
    """NNCF on a few real windows (the full calibration is `make setup`'s): an int8 IR of each stem that
    OpenVINO runs, with the logits kept in float, ranking real clips' windows as float32 TensorFlow does; an
    odd-length clip, which the space-to-depth stem cannot take, still runs. The plain stem reads the frames
    quantized exactly (256 levels over 0..255), and runs in int8 on an AVX2 CPU."""
    from models.i3d.quantize import quantize_int8
    from models.runtimes.openvino import OpenVINOI3D
    from models.hardware import int8_ir_name

    handle = tmp_path / "model"
    (handle / "openvino").mkdir(parents=True)
    for name in (f"{stem}.xml", f"{stem}.bin", "plain.xml", "plain.bin", "openvino.json"):
        shutil.copy(saved_model_dir / "openvino" / name, handle / "openvino" / name)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for name in ("archery__paddlevideo_example.avi", "makeup__mmaction2_test_ApplyEyeMakeup.avi"):
        shutil.copy(DATA / name, calibration / name)
    made = quantize_int8(str(handle), calibration, max_windows=8, stem=stem)
    assert made["calibration_windows"] == 8 and made["calibration_videos"] == 2
    assert len(made["kept_float"]) == 1  # the logits
    record = json.loads((handle / "openvino" / "openvino.json").read_text())
    assert record["irs"][int8_ir_name(stem)]["stem"] == stem
    assert (handle / "openvino" / "int8.xml").is_file() == (stem == "plain")
    int8 = OpenVINOI3D(str(handle), precision="int8", stem=stem)
    try:
        assert int8.precision == "int8" and int8.stem == stem
        for name in ("cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4", "archery__paddlevideo_example.avi"):
            clip = read_frames(DATA / name, max_frames=64)[None]
            assert int8(clip).logits.argmax() == float32_extractor(clip).logits.argmax(), name
        odd = read_frames(DATA / "archery__paddlevideo_example.avi", max_frames=63)[None]
        assert int8(odd).logits.argmax() == float32_extractor(odd).logits.argmax()
    finally:
        int8.close()
    if stem == "plain":
        _assert_stem_reads_exact_frames_and_runs_int8_on_avx2(handle / "openvino" / "int8.xml")
    with pytest.raises(ValueError, match="python -m models quantize"):
        (handle / "openvino" / f"{int8_ir_name(stem)}.xml").unlink()
        OpenVINOI3D(str(handle), precision="int8", stem=stem)


def _assert_stem_reads_exact_frames_and_runs_int8_on_avx2(ir: Path):
    import openvino as ov

    from models.i3d.int8_stem import STEM_NAME

    stem = next(op for op in ov.Core().read_model(ir).get_ordered_ops() if op.get_friendly_name() == STEM_NAME)
    quantizer = stem.input_value(0).get_node()
    assert quantizer.get_type_name() == "FakeQuantize" and quantizer.get_attributes()["levels"] == 256
    assert [float(quantizer.input_value(i).get_node().get_data()) for i in range(1, 5)] == [0, 255, 0, 255]
    code = f"""
import json, numpy as np, openvino as ov
compiled = ov.Core().compile_model({str(ir)!r}, "CPU", {{"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32"}})
request = compiled.create_infer_request()
request.infer({{0: np.zeros((1, 16, 224, 224, 3), np.float32)}})
print(json.dumps({{p.node_name: p.exec_type for p in request.profiling_info if p.node_type == "Convolution"}}))
"""
    done = _python(code, ONEDNN_MAX_CPU_ISA="AVX2")
    assert done.returncode == 0, done.stderr[-3000:]
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    assert "I8" in kernels[STEM_NAME] and "avx2" in kernels[STEM_NAME], kernels


def test_stem_on_frames_is_exact_in_float(saved_model_dir):
    """The plain stem rewritten to read 0..255 (pads of 127.5, weights and bias rescaled) gives the IR's logits
    within float32 rounding, for 64 frames and for odd lengths, which SAME pads differently."""
    import openvino as ov

    from models.i3d.int8_stem import stem_on_frames
    from models.video import to_model_input

    core = ov.Core()
    plain = core.read_model(saved_model_dir / "openvino" / "plain.xml")
    rewritten = core.read_model(saved_model_dir / "openvino" / "plain.xml")
    stem_on_frames(rewritten)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    before, after = (core.compile_model(model, "CPU", config) for model in (plain, rewritten))
    for frames in (64, 63, 21):
        clip = to_model_input(read_frames(DATA / "archery__paddlevideo_example.avi", max_frames=frames)[None])
        difference = np.abs(before(clip)["logits"] - after(clip)["logits"]).max()
        assert difference < 1e-4, (frames, difference)


@pytest.mark.gpu
def test_a_gpu_runs_float16_keeps_the_rankings_and_frees_what_each_request_used(extractor, recognizer):
    """On a CUDA GPU "auto" is TensorFlow float16 with XLA: the real clip keeps its label, and the GPU memory in use
    after each recognition stays where the first one left it (per-request memory freed)."""
    assert extractor.device.startswith("GPU") and extractor.runtime == "tensorflow"
    assert extractor.precision in ("float16", "float32")  # float32 on a GPU without tensor cores
    used = []
    for _ in range(5):
        assert recognizer.recognize(CRICKET_MP4)["actions"][0]["label"] == "playing cricket"
        used.append(extractor.gpu_memory_bytes())
    assert max(used[1:]) <= used[0] * 1.05, used
