"""EXTRACTION=shared: windows pooled from one trunk pass, against windows run clip by clip, on real clips."""

from __future__ import annotations

import numpy as np
import pytest

from models.i3d.trunk import TRUNK_STRIDE, pool_weights, pool_windows
from models.recognition.batching import ClipBatcher
from models.runtimes.factory import open_extractor
from models.training.features import cache_key
from models.recognition.shared_trunk import (
    check_shared_slicing, chunk_at, run_shared, top1_probability,
)
from models.recognition.windows import ClipSettings, run_clips
from models.video import clip_starts, read_frames, write_grey_ramp
from conftest import ARCHERY_AVI, DATA

SHARED = ClipSettings(extraction="shared")
BASKETBALL = DATA / "basketball__mmaction2_shooting_drill.mp4"  # 300 frames


@pytest.fixture(scope="module")
def real_clip():
    return read_frames(DATA / "yoga__uniformer_Tw2yXa6CzWE.mp4")[100:164]


@pytest.fixture(scope="module")
def openvino_float32(saved_model_dir):
    extractor = open_extractor(str(saved_model_dir), runtime="openvino", precision="float32")
    yield extractor
    extractor.close()


def test_pool_weights_are_the_heads_average_pool_then_time_mean():
    positions = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    exact = positions.astype(np.float64)
    pooled = np.stack([(exact[t] + exact[t + 1]) / 2 for t in range(7)]).mean(axis=0)  # 2-wide VALID pool
    # float32 rounding only: the matmul's summation order follows the CPU's BLAS kernels (AVX2, AVX-512)
    np.testing.assert_allclose(pool_weights(8) @ positions, pooled, rtol=0, atol=1e-6)


def test_chunks_keep_every_position_once_and_stay_on_the_8_frame_grid():
    frames, keep, seen = 1003, 0, []
    while keep < frames:
        chunk = chunk_at(keep, chunk_frames=384, context=64, video_frames=frames)
        assert all(v % TRUNK_STRIDE == 0 for v in (chunk.start, chunk.end, chunk.keep_start, chunk.keep_end))
        assert chunk.start == max(0, chunk.keep_start - 64) and chunk.end <= 1008
        seen.append((chunk.keep_start, chunk.keep_end))
        keep = chunk.keep_end
    assert seen == [(0, 384), (384, 768), (768, 1008)]


@pytest.mark.parametrize("settings, message", [
    ((64, 30, 384, 64), "stride"), ((60, 32, 384, 64), "clip_len"), ((64, 32, 384, 32), "context"),
])
def test_impossible_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        check_shared_slicing(*settings)


@pytest.mark.parametrize("runtime", ["openvino", "tensorflow"])
def test_one_window_pooled_from_the_trunk_is_the_network(runtime, saved_model_dir, real_clip, openvino_float32,
                                                         float32_extractor):
    """A trunk pass over exactly one window's frames gives that window's logits and features (float32)."""
    extractor = openvino_float32 if runtime == "openvino" else float32_extractor
    clip = real_clip[None, :64]
    expected = extractor(clip)
    positions = extractor.trunk_positions(clip)
    assert positions.shape == (1, 8, 1024)
    kernel, bias = extractor.logits_weights()
    logits, features = pool_windows(positions[0], [0], 64, kernel, bias)
    np.testing.assert_allclose(features, expected.features, atol=1e-4)
    np.testing.assert_allclose(logits, expected.logits, atol=1e-3)


@pytest.mark.slow
def test_chunks_with_context_reproduce_one_pass_over_the_whole_video(openvino_float32):
    """64 frames of context each side make chunked trunk positions those of one pass over all frames."""
    path = BASKETBALL  # 5 chunks of 64 frames, or one of 512
    with ClipBatcher(openvino_float32) as batcher:
        chunked = run_shared(batcher, path, ClipSettings(extraction="shared", chunk_frames=64))
        whole = run_shared(batcher, path, ClipSettings(extraction="shared", chunk_frames=512))
    assert chunked.spans == whole.spans == [(s, s + 64) for s in clip_starts(251, 64, 32)]  # 300 frames at 29.97 fps: 251 at 25
    np.testing.assert_allclose(chunked.logits, whole.logits, atol=2e-3)


@pytest.mark.slow
def test_recomputing_every_window_gives_clip_by_clip_results(openvino_float32):
    """recompute_below=1 re-runs each pooled window alone: exactly what windows mode computes."""
    path = ARCHERY_AVI
    with ClipBatcher(openvino_float32) as batcher:
        exact = run_clips(batcher, path, ClipSettings())
        rerun = run_shared(batcher, path, ClipSettings(extraction="shared", recompute_below=1.0))
        stats = batcher.stats
    assert rerun.spans == exact.spans
    np.testing.assert_allclose(rerun.logits, exact.logits, atol=1e-4)
    assert stats.trunks == 1


def test_short_videos_and_unaligned_tails_match_windows(openvino_float32, tmp_path):
    """Under one window (looped), exactly one, and a tail off the 8-frame grid."""
    with ClipBatcher(openvino_float32) as batcher:
        for frames in (20, 64, 99):
            video = write_grey_ramp(tmp_path / f"ramp{frames}.avi", frames)
            exact = run_clips(batcher, video, ClipSettings())
            shared = run_shared(batcher, video, SHARED)
            assert shared.spans == exact.spans, frames
            assert shared.info.frames == frames
            if frames <= 64:  # one window, run alone in both modes
                np.testing.assert_allclose(shared.logits, exact.logits, atol=1e-4)
            else:  # the tail (35, 99) is off the grid: run alone, identical
                np.testing.assert_allclose(shared.logits[-1], exact.logits[-1], atol=1e-4)


def test_top1_probability():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]], np.float32))
    np.testing.assert_allclose(top1_probability(logits), [0.7, 0.5], rtol=1e-5)


def test_extraction_is_in_the_feature_cache_key():
    path = ARCHERY_AVI
    keys = {cache_key(path, extractor_id="i3d", clips=clips) for clips in
            (ClipSettings(), SHARED, ClipSettings(extraction="shared", recompute_below=0.5))}
    assert len(keys) == 3
    assert cache_key(path, extractor_id="i3d", clips=ClipSettings(extraction="shared", chunk_frames=128)) in keys


def test_precision_and_int8_stem_are_in_the_feature_cache_key():
    """Features differ by precision, and in int8 by stem (each stem's model is quantized on its own); a float
    stem is an exact rewrite, so float keys do not name it."""
    keys = {cache_key(ARCHERY_AVI, extractor_id="i3d", clips=ClipSettings(), precision=precision, stem=stem)
            for precision, stem in (("float32", "plain"), ("bfloat16", "plain"), ("int8", "plain"),
                                    ("int8", "space_to_depth"))}
    assert len(keys) == 4
    assert cache_key(ARCHERY_AVI, extractor_id="i3d", clips=ClipSettings(), precision="bfloat16",
                     stem="space_to_depth") in keys


def test_extraction_ids_round_trip():
    for clips in (ClipSettings(), SHARED, ClipSettings(extraction="shared", recompute_below=0.6)):
        assert ClipSettings.for_extraction(clips.extraction_id).extraction_id == clips.extraction_id


def test_reading_frames_is_unchanged_for_tools():
    assert read_frames(ARCHERY_AVI).shape[0] == 131
