"""Parts of a long video decoded at once (DECODE_WORKERS, `models.recognition.parts`): the windows, frames,
times and logits of one pass, on a real 60-second H.264 video with a keyframe every 2 s."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import ARCHERY_AVI, write_real_minute
from models.recognition.batching import ClipBatcher
from models.recognition.parts import default_decode_workers, plan_parts, run_parts
from models.recognition.windows import Cancelled, ClipSettings, run_clips
from models.video import SOURCE_RATE, Sampling, VideoInfo, clip_starts, index_stream, iter_frames, iter_model_frames


@pytest.fixture(scope="module")
def minute(tmp_path_factory):
    return write_real_minute(tmp_path_factory.mktemp("parts") / "minute.mp4")


@pytest.mark.parametrize("sampling", [Sampling(), SOURCE_RATE], ids=["25fps", "source"])
def test_any_stretch_decodes_to_the_frames_of_one_pass(minute, sampling):
    info = VideoInfo(0, 0.0, 0, 0)
    whole = list(iter_frames(minute, info=info, sampling=sampling))
    index = index_stream(minute)
    assert index.frames == info.frames == 1800 and index.model_frames(sampling) == info.model_frames
    assert len(index.keyframes) >= 30
    for first, end in ((0, 70), (461, 600), (info.model_frames - 100, info.model_frames)):
        stretch = list(iter_model_frames(minute, index, first, end, sampling=sampling))
        assert len(stretch) == end - first
        assert all(np.array_equal(a, b) for a, b in zip(stretch, whole[first:end])), (first, end)


def test_windows_are_dealt_to_parts_as_one_pass_cuts_them():
    clips = ClipSettings()
    parts = plan_parts(1500, clips, 25.0, part_s=10)
    assert [s for part in parts for s in part.starts] == clip_starts(1500, 64, 32)
    assert all(part.starts[0] % 32 == 0 and part.end == min(part.starts[-1] + 64, 1500) for part in parts)
    assert len(parts) == 6 and plan_parts(60, clips, 25.0)[0].starts == (0,)
    assert default_decode_workers(2) == 1 and default_decode_workers(16) == 8 and default_decode_workers(4) == 2


@pytest.mark.slow
def test_parts_at_once_give_the_windows_of_one_pass(extractor, minute):
    clips = ClipSettings()
    told = []
    with ClipBatcher(extractor) as batcher:
        one = run_clips(batcher, minute, clips)
        parted = run_parts(batcher, minute, clips, workers=2, part_s=10,
                           on_window=lambda i, span, logits, timeline: told.append((i, span, timeline.span(*span))))
    assert parted.spans == one.spans and len(one.spans) == len(clip_starts(1500, 64, 32)) == 46
    np.testing.assert_allclose(parted.logits, one.logits, rtol=0, atol=1e-5)  # the same frames through the same model
    assert (parted.info.frames, parted.info.model_frames) == (one.info.frames, one.info.model_frames) == (1800, 1500)
    assert list(parted.info.timeline.source_index) == list(one.info.timeline.source_index)
    assert [i for i, _, _ in told] == list(range(46))  # in order, though parts finish in any order
    assert [where for _, _, where in told] == [one.info.timeline.span(*span) for span in one.spans]


def test_a_cancelled_parts_run_stops_every_part(extractor, minute):
    cancel = threading.Event()
    with ClipBatcher(extractor) as batcher:
        with pytest.raises(Cancelled):
            run_parts(batcher, minute, ClipSettings(), lambda done, total: cancel.set(), cancel=cancel, workers=2,
                      part_s=10)
        assert batcher.stats.cancelled > 30  # the windows not run are counted given up


def test_a_video_without_an_index_runs_in_one_pass(extractor):
    assert index_stream(ARCHERY_AVI) is None  # AVI stamps packets, not frames
    with ClipBatcher(extractor) as batcher:
        parted = run_parts(batcher, ARCHERY_AVI, ClipSettings(), workers=2, part_s=1)
        one = run_clips(batcher, ARCHERY_AVI, ClipSettings())
    assert parted.spans == one.spans and np.allclose(parted.logits, one.logits, atol=1e-5)
