"""The serving pipeline (64-frame clips, stride 32, batched, clip probabilities averaged) on every real clip."""

from __future__ import annotations

import pytest

from conftest import DATA, EXPECTED_TOP1
from models.video import VideoInfo, clip_starts, iter_frames


@pytest.mark.parametrize("name", sorted(EXPECTED_TOP1))
def test_pipeline_top1_matches_clips_md(recognizer, name):
    progress = []
    result = recognizer.recognize(DATA / name, top_k_actions=3, on_progress=lambda done, total: progress.append((done, total)))
    ranked = [(a["label"], a["confidence"]) for a in result["actions"]]
    assert ranked[0][0] == EXPECTED_TOP1[name], ranked
    info = VideoInfo(0, 0.0, 0, 0)
    for _ in iter_frames(DATA / name, info=info):  # the frames the model sees: 25 a second
        pass
    starts = clip_starts(info.model_frames, 64, 32)
    assert [c["start_s"] for c in result["clips"]] == [round(s / 25, 3) for s in starts]  # 2.56 s windows, 1.28 s apart
    assert [c["start_frame"] for c in result["clips"]] == [info.timeline.source_index[s] for s in starts]
    last = result["clips"][-1]  # the tail is covered, to the last frame the model sees
    assert last["end_frame"] == info.timeline.source_index[-1] + 1 > result["video"]["frames"] - 30 / 25
    assert last["end_s"] == pytest.approx(result["video"]["duration_s"], abs=0.05)
    assert progress[-1] == (len(starts), len(starts)) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert all(done <= total for done, total in progress)
