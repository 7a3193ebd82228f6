"""Precision by hardware, and the reduced-precision graphs against float32 on real clips.

The choice is tested for both kinds of CPU on any machine by injecting their flags. Running a bfloat16
graph is tested everywhere too: natively with AMX or AVX512-BF16, emulated (slowly, on three clips) without."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import AMX_FLAGS, AVX2_ONLY_FLAGS, DATA, EXPECTED_TOP1
from models.precision import choose_precision, cpu_flags, variant_dir
from models.video import read_frames


def test_choice_follows_the_hardware():
    assert choose_precision(flags=AVX2_ONLY_FLAGS) == "float32"
    assert choose_precision(flags=AMX_FLAGS) == "bfloat16"
    assert choose_precision(flags=frozenset({"avx2", "fma"})) == "float32"
    assert choose_precision(flags=frozenset({"avx512f", "avx512_bf16"})) == "bfloat16"
    assert choose_precision(flags=frozenset({"amx_tile", "amx_bf16"})) == "bfloat16"
    assert choose_precision(gpu_capability=(9, 0), flags=frozenset({"amx_bf16"})) == "float16"  # the GPU runs it
    assert choose_precision(gpu_capability=(6, 1)) == "float32"  # no tensor cores
    assert choose_precision("float32", flags=frozenset({"amx_bf16"})) == "float32"  # an explicit choice wins
    with pytest.raises(ValueError, match="unknown precision"):
        choose_precision("int8")


def test_cpu_flags_reads_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\nbugs\t\t: spectre\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_converted_variants_exist(saved_model_dir):
    for precision in ("bfloat16", "float16"):
        assert (variant_dir(saved_model_dir, precision) / "saved_model.pb").is_file()
    assert variant_dir(saved_model_dir, "float32") == saved_model_dir


@pytest.mark.parametrize(("flags", "expected"), [(AVX2_ONLY_FLAGS, "float32"), (AMX_FLAGS, "bfloat16")],
                         ids=["avx2-only", "amx"])
def test_extractor_loads_the_graph_each_cpu_kind_chooses(saved_model_dir, extractor, flags, expected):
    """Whichever CPU this is, an extractor told the other kind's flags loads that kind's graph."""
    from models.extractor import I3DExtractor

    if extractor.device != "CPU":
        pytest.skip("a GPU chooses by its compute capability, not the CPU's flags")
    chosen = I3DExtractor(str(saved_model_dir), cpu_flags=flags)
    try:
        assert chosen.precision == expected
        assert chosen._model.precision.numpy().decode() == expected  # the graph that was loaded says so
    finally:
        chosen.close()


def test_float16_is_refused_on_a_cpu(saved_model_dir, extractor):
    from models.extractor import I3DExtractor

    if extractor.device != "CPU":
        pytest.skip("a GPU runs float16")
    with pytest.raises(ValueError, match="GPU only"):
        I3DExtractor(str(saved_model_dir), precision="float16")


def _middle_clip(name: str) -> np.ndarray:
    frames = read_frames(DATA / name)
    start = max(0, (len(frames) - 64) // 2)
    return frames[start:start + 64][None]


@pytest.mark.parametrize("name", sorted(EXPECTED_TOP1))
def test_chosen_precision_top1_matches_float32(extractor, float32_extractor, name):
    """The precision this machine chose ranks each real clip's middle 64 frames first as float32 does."""
    if extractor.precision == "float32":
        pytest.skip("this CPU chose float32, the reference itself: nothing to compare "
                    "(test_bfloat16_graph_top1_matches_float32 runs the bfloat16 graph here, emulated)")
    clip = _middle_clip(name)
    assert extractor(clip).logits.argmax() == float32_extractor(clip).logits.argmax()


@pytest.fixture(scope="module")
def bf16_extractor(saved_model_dir):
    from models.extractor import I3DExtractor

    extractor = I3DExtractor(str(saved_model_dir), precision="bfloat16")
    assert extractor.precision == "bfloat16"
    yield extractor
    extractor.close()


# bfloat16 without bfloat16 units is emulated (about 50 s a clip on an AVX2 CPU), so three clips, chosen
# for the smallest float32 margins, show the bfloat16 graph is right everywhere.
@pytest.mark.parametrize("name", ["yoga__uniformer_Tw2yXa6CzWE.mp4", "makeup__mmaction2_test_ApplyEyeMakeup.avi",
                                  "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"])
def test_bfloat16_graph_top1_matches_float32(bf16_extractor, float32_extractor, name):
    clip = _middle_clip(name)
    expected, got = float32_extractor(clip), bf16_extractor(clip)
    assert got.logits.argmax() == expected.logits.argmax()
    assert np.abs(got.logits - expected.logits).max() < 1.0  # measured: ~0.2 on a random clip
