"""Runtime, precision and stem by hardware, and TensorFlow's bfloat16 graph against float32 on real clips.

The choices are tested for both kinds of CPU on any machine by injecting their flags. TensorFlow's bfloat16
graph keeps float32's top-1 where it runs (natively, with AMX or AVX512-BF16), and is refused on a CPU without
them, where TensorFlow would emulate it slowly and not keep the rankings.
What "auto" picks on this machine is held to the accuracy rule in `test_accuracy.py`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import AMX_FLAGS, AVX2_ONLY_FLAGS, AVX512_BF16_FLAGS, DATA
from models.hardware import (
    choose_precision,
    choose_runtime,
    choose_stem,
    cpu_flags,
    cpu_kind,
    has_bf16_units,
    int8_ir_name,
    openvino_auto_precision,
    variant_dir,
)
from models.video import read_frames


def test_choice_follows_the_hardware():
    assert choose_precision(flags=AVX2_ONLY_FLAGS) == "float32"
    assert choose_precision(flags=AMX_FLAGS) == "bfloat16"
    assert choose_precision(flags=frozenset({"avx512f", "avx512_bf16"})) == "bfloat16"
    assert choose_precision(gpu_capability=(9, 0), flags=frozenset({"amx_bf16"})) == "float16"  # the GPU runs it
    assert choose_precision(gpu_capability=(6, 1)) == "float32"  # no tensor cores
    assert choose_precision("float32", flags=frozenset({"amx_bf16"})) == "float32"  # an explicit choice wins
    assert choose_precision("int8", runtime="openvino") == "int8"
    with pytest.raises(ValueError, match="OpenVINO runtime only"):
        choose_precision("int8", runtime="tensorflow")
    with pytest.raises(ValueError, match="GPU only"):
        choose_precision("float16", runtime="openvino")
    with pytest.raises(ValueError, match="unknown precision"):
        choose_precision("int4")


def test_runtime_stem_and_openvino_auto_follow_the_hardware():
    assert choose_runtime(gpu=True) == "tensorflow" and choose_runtime(gpu=False) == "openvino"
    assert choose_runtime("tensorflow", gpu=False) == "tensorflow"
    with pytest.raises(ValueError, match="unknown runtime"):
        choose_runtime("onnx")
    assert (cpu_kind(AMX_FLAGS), cpu_kind(AVX2_ONLY_FLAGS), cpu_kind(frozenset({"avx512f"}))) == ("amx", "avx2", "avx512")
    assert choose_stem("openvino", "bfloat16", AMX_FLAGS) == "space_to_depth"
    assert choose_stem("openvino", "float32", AMX_FLAGS) == "plain"  # measured slower in float32
    assert choose_stem("tensorflow", "bfloat16", AMX_FLAGS) == "plain"
    assert choose_stem("openvino", "bfloat16", frozenset({"avx512_bf16"})) == "plain"  # faster on AMX only
    assert choose_stem("openvino", "int8", AMX_FLAGS) == "space_to_depth"
    assert choose_stem("openvino", "int8", AVX2_ONLY_FLAGS) == "plain"  # slower on AVX2 in the prototype
    assert (int8_ir_name("plain"), int8_ir_name("space_to_depth")) == ("int8", "int8_space_to_depth")
    passed, failed = {"int8": {"passes": True}}, {"int8": {"passes": False}}
    assert openvino_auto_precision(AMX_FLAGS, {"amx": passed}) == "int8"  # the fastest that keeps the rankings
    assert openvino_auto_precision(AMX_FLAGS, {"amx": failed}) == "bfloat16"
    assert openvino_auto_precision(AMX_FLAGS, {"avx2": passed}) == "bfloat16"
    assert openvino_auto_precision(AVX2_ONLY_FLAGS, {"avx2": passed}) == "int8"
    assert openvino_auto_precision(AVX2_ONLY_FLAGS, {"avx2": failed}) == "float32"
    assert openvino_auto_precision(AVX2_ONLY_FLAGS, {"amx": passed}) == "float32"  # checked on another kind only
    assert openvino_auto_precision(AVX2_ONLY_FLAGS, {}) == "float32"
    assert cpu_kind(AVX512_BF16_FLAGS) == "avx512_bf16"  # an AMD EPYC with AVX-512 and bfloat16, no AMX
    assert choose_stem("openvino", "int8", AVX512_BF16_FLAGS) == "plain"  # 145 against 271 ms a clip there
    assert openvino_auto_precision(AVX512_BF16_FLAGS, {"avx512_bf16": passed}) == "int8"
    assert openvino_auto_precision(AVX512_BF16_FLAGS, {"avx512_bf16": failed}) == "bfloat16"


def test_int8_verdict_counts_only_for_the_ir_this_cpu_kind_runs(tmp_path):
    """A verdict is the int8 IR's it was given to: AMX runs the space-to-depth int8 IR, so a verdict on the plain
    one (or one from before the space-to-depth int8, which has no "ir") does not let "auto" pick int8 there."""
    from models.i3d.irs import int8_verdicts
    from models.video import frames_id

    passed, irs = {"passes": True, "frames": frames_id()}, {"plain": {}, "space_to_depth": {}}
    record = {"irs": irs, "validated": {"amx": {"int8": {"ir": "int8_space_to_depth", **passed}}, "avx2": {"int8": passed}}}
    assert int8_verdicts(record, tmp_path, AMX_FLAGS) == {}  # no IR file
    (tmp_path / "int8_space_to_depth.xml").touch()
    assert int8_verdicts(record, tmp_path, AMX_FLAGS) == {"amx": {"int8": {"ir": "int8_space_to_depth", **passed}}}
    assert int8_verdicts(record, tmp_path, AVX2_ONLY_FLAGS) == {}  # the plain int8 IR is not there
    (tmp_path / "int8.xml").touch()
    assert int8_verdicts(record, tmp_path, AVX2_ONLY_FLAGS) == {"avx2": {"int8": passed}}
    assert int8_verdicts({"irs": irs, "validated": {"amx": {"int8": passed}}}, tmp_path, AMX_FLAGS) == {}
    only_plain = {"irs": {"plain": {}}, "validated": {"amx": {"int8": {"ir": "int8", **passed}}}}  # a TF Hub handle
    assert int8_verdicts(only_plain, tmp_path, AMX_FLAGS) == {"amx": {"int8": {"ir": "int8", **passed}}}
    other_frames = {"irs": irs, "validated": {"amx": {"int8": {"ir": "int8_space_to_depth", "passes": True}}}}
    assert int8_verdicts(other_frames, tmp_path, AMX_FLAGS) == {}  # judged on OpenCV's frames at the source rate


def test_int8_made_by_an_older_recipe_is_made_again(tmp_path):
    """`make setup` (quantize --if-needed) remakes an int8 IR made by an older recipe of its stem (the plain
    IR's stem in float, before `models.i3d.int8_stem`), though it has a passing verdict."""
    from models.i3d.quantize import RECIPES, int8_ir_is_current, int8_is_current

    directory = tmp_path / "openvino"
    directory.mkdir()
    (directory / "int8.xml").touch()
    from models.video import frames_id

    verdict = {"ir": "int8", "passes": True, "frames": frames_id()}
    record = {"irs": {"plain": {}, "int8": {"stem": "plain"}}, "validated": {"avx2": {"int8": verdict}}}
    (directory / "openvino.json").write_text(json.dumps(record))
    assert not int8_ir_is_current(str(tmp_path), flags=AVX2_ONLY_FLAGS)  # no recipe: the first one
    assert not int8_is_current(str(tmp_path), flags=AVX2_ONLY_FLAGS)
    record["irs"]["int8"]["recipe"] = RECIPES["plain"]
    (directory / "openvino.json").write_text(json.dumps(record))
    assert int8_ir_is_current(str(tmp_path), flags=AVX2_ONLY_FLAGS) and int8_is_current(str(tmp_path), flags=AVX2_ONLY_FLAGS)
    (directory / "int8.xml").unlink()
    assert not int8_ir_is_current(str(tmp_path), flags=AVX2_ONLY_FLAGS)

def test_cpu_flags_reads_cpuinfo(tmp_path, monkeypatch):
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):  # a cap would drop amx_bf16
        monkeypatch.delenv(name, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\nbugs\t\t: spectre\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_cpu_flags_obey_onednn_isa_cap(tmp_path, monkeypatch):
    """ONEDNN_MAX_CPU_ISA caps the kernels of both runtimes, so the choices see the CPU as capped too."""
    from models.hardware import isa_cap

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"flags\t\t: {' '.join(sorted(AMX_FLAGS | {'avx512bw', 'avx_vnni'}))}\n")
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    assert isa_cap() is None and cpu_kind(cpu_flags(cpuinfo)) == "amx"
    assert cpu_flags(cpuinfo, cap="AVX2") == AVX2_ONLY_FLAGS
    assert cpu_kind(cpu_flags(cpuinfo, cap="AVX512_CORE")) == "avx512"
    capped = cpu_flags(cpuinfo, cap="AVX512_CORE_BF16")
    assert cpu_kind(capped) == "avx512_bf16" and "avx512_fp16" not in capped and "avx512bw" in capped
    assert cpu_flags(cpuinfo, cap="AVX10_1_512_AMX") == cpu_flags(cpuinfo)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert isa_cap() == "AVX2" and cpu_flags(cpuinfo) == AVX2_ONLY_FLAGS
    assert choose_precision(flags=cpu_flags(cpuinfo)) == "float32"
    assert choose_stem("openvino", "int8", cpu_flags(cpuinfo)) == "plain"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")  # oneDNN's "no cap"
    assert isa_cap() is None and cpu_kind(cpu_flags(cpuinfo)) == "amx"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2_VNNI")  # the old name
    assert cpu_flags(cpuinfo) == AVX2_ONLY_FLAGS | {"avx_vnni"}


def test_converted_variants_exist(saved_model_dir):
    for precision in ("bfloat16", "float16"):
        assert (variant_dir(saved_model_dir, precision) / "saved_model.pb").is_file()
    assert variant_dir(saved_model_dir, "float32") == saved_model_dir


@pytest.mark.parametrize(("flags", "expected"), [(AVX2_ONLY_FLAGS, "float32"), (AMX_FLAGS, "bfloat16")],
                         ids=["avx2-only", "amx"])
def test_tensorflow_loads_the_graph_each_cpu_kind_chooses(saved_model_dir, extractor, flags, expected):
    """Whichever CPU this is, an extractor told the other kind's flags loads that kind's graph."""
    from models.runtimes.factory import open_extractor
    from models.hardware import bfloat16_capped_off

    if extractor.device != "CPU":
        pytest.skip("a GPU chooses by its compute capability, not the CPU's flags")
    if expected == "bfloat16" and bfloat16_capped_off():  # as test_bfloat16_refused_under_an_isa_cap
        with pytest.raises(ValueError, match="bfloat16 cannot run"):
            open_extractor(str(saved_model_dir), runtime="tensorflow", cpu_flags=flags)
        return
    chosen = open_extractor(str(saved_model_dir), runtime="tensorflow", cpu_flags=flags)
    try:
        assert chosen.precision == expected
        assert chosen._model.precision.numpy().decode() == expected  # the graph that was loaded says so
    finally:
        chosen.close()


@pytest.mark.parametrize("flags", [AVX2_ONLY_FLAGS, AVX512_BF16_FLAGS, AMX_FLAGS], ids=["avx2-only", "avx512-bf16", "amx"])
def test_openvino_compiles_what_each_cpu_kind_chooses(saved_model_dir, flags):
    """On AMX, int8 of the space-to-depth stem where `make setup` found it passing the accuracy rule on an AMX
    CPU, else bfloat16 with that stem; with AVX512-BF16 and no AMX, int8 of the plain stem where it passed
    there, else bfloat16 with the plain stem; on AVX2, int8 of the plain stem where it passed on an AVX2 CPU,
    else float32 (verdicts are recorded per kind)."""
    from models.paths import openvino_dir
    from models.runtimes.factory import open_extractor

    import openvino as ov

    from models.i3d.irs import int8_verdicts
    from models.hardware import bfloat16_capped_off

    directory = openvino_dir(saved_model_dir)
    verdicts = int8_verdicts(json.loads((directory / "openvino.json").read_text()), directory, flags)
    int8_passed = verdicts.get(cpu_kind(flags), {}).get("int8", {}).get("passes", False)
    bf16_units = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if flags is not AVX2_ONLY_FLAGS and not int8_passed and not (bf16_units and not bfloat16_capped_off()):
        # bfloat16, which this CPU cannot run (or ONEDNN_MAX_CPU_ISA caps off), and says so
        with pytest.raises(ValueError, match="bfloat16 needs a CPU with AMX or AVX512-BF16" if not bf16_units
                           else "bfloat16 cannot run: oneDNN is capped"):
            open_extractor(str(saved_model_dir), runtime="openvino", cpu_flags=flags)
        return
    chosen = open_extractor(str(saved_model_dir), runtime="openvino", cpu_flags=flags)
    try:
        if flags is AMX_FLAGS:
            assert (chosen.precision, chosen.stem) == ("int8" if int8_passed else "bfloat16", "space_to_depth")
        elif flags is AVX512_BF16_FLAGS:
            assert (chosen.precision, chosen.stem) == ("int8" if int8_passed else "bfloat16", "plain")
        else:
            assert (chosen.precision, chosen.stem) == ("int8" if int8_passed else "float32", "plain")
        assert chosen.loaded and chosen.runtime == "openvino"
    finally:
        chosen.close()


def test_float16_is_refused_on_a_cpu(saved_model_dir, extractor):
    from models.runtimes.factory import open_extractor

    if extractor.device != "CPU":
        pytest.skip("a GPU runs float16")
    with pytest.raises(ValueError, match="GPU only"):
        open_extractor(str(saved_model_dir), runtime="tensorflow", precision="float16")


def _middle_clip(name: str) -> np.ndarray:
    frames = read_frames(DATA / name)
    start = max(0, (len(frames) - 64) // 2)
    return frames[start:start + 64][None]


@pytest.fixture(scope="module")
def bf16_extractor(saved_model_dir):
    from models.runtimes.factory import open_extractor
    from models.hardware import bfloat16_unavailable

    if bfloat16_unavailable():  # refused, as the two tests above check
        pytest.skip(f"bfloat16 is refused here: {bfloat16_unavailable()}")
    extractor = open_extractor(str(saved_model_dir), runtime="tensorflow", precision="bfloat16")
    assert extractor.precision == "bfloat16"
    yield extractor
    extractor.close()


@pytest.mark.parametrize("runtime", ["tensorflow", "openvino"])
def test_bfloat16_refused_under_an_isa_cap(saved_model_dir, monkeypatch, runtime):
    """A CPU with bfloat16 units capped below them (ONEDNN_MAX_CPU_ISA=AVX2): both runtimes route bfloat16 by
    the CPU's own flags to a oneDNN that refuses it (TensorFlow mid-request, OpenVINO at compile), so asking
    for it is refused up front, with the reason."""
    from models.runtimes.factory import open_extractor
    from models.hardware import cpu_flags, has_bf16_units

    if not has_bf16_units(cpu_flags(cap="ALL")):
        pytest.skip("this CPU has no bfloat16 units to cap")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(ValueError, match="bfloat16 cannot run: oneDNN is capped to AVX2"):
        open_extractor(str(saved_model_dir), runtime=runtime, precision="bfloat16")


def test_bfloat16_refused_without_bfloat16_units(saved_model_dir, extractor):
    """A CPU without AMX or AVX512-BF16 (an AVX2-only EPYC's flags stand in here) promises no bfloat16: TensorFlow
    would emulate it, about 12x slower than float32, and on such a CPU the emulated graph ranked the yoga clip's
    middle window differently from float32 (label 183 against 398) and moved the makeup clip's logits by 1.43.
    Both runtimes refuse it with the reason, before loading anything; "auto" never picks it there."""
    from models.runtimes.factory import open_extractor

    if extractor.device != "CPU":
        pytest.skip("a GPU runs bfloat16 by its compute capability")
    for runtime in ("tensorflow", "openvino"):
        if runtime == "openvino" and has_bf16_units():
            continue  # OpenVINO asks the CPU itself, not flags: it refuses on the AVX2 CPU only
        with pytest.raises(ValueError, match="no bfloat16 units|needs a CPU with AMX or AVX512-BF16|oneDNN is capped"):
            open_extractor(str(saved_model_dir), runtime=runtime, precision="bfloat16", cpu_flags=AVX2_ONLY_FLAGS)
    assert choose_precision(flags=AVX2_ONLY_FLAGS) == "float32"


# Where bfloat16 runs (natively, with AMX or AVX512-BF16), three clips chosen for the smallest float32 margins
# show the bfloat16 graph keeps float32's top-1.
@pytest.mark.parametrize("name", ["yoga__uniformer_Tw2yXa6CzWE.mp4", "makeup__mmaction2_test_ApplyEyeMakeup.avi",
                                  "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"])
def test_bfloat16_graph_top1_matches_float32(bf16_extractor, float32_extractor, name):
    clip = _middle_clip(name)
    expected, got = float32_extractor(clip), bf16_extractor(clip)
    assert got.logits.argmax() == expected.logits.argmax()
    assert np.abs(got.logits - expected.logits).max() < 1.0  # measured: ~0.2 on a random clip
