"""The serving pipeline (64-frame clips, stride 32, batched, clip probabilities averaged) on every real clip."""

from __future__ import annotations

import pytest

from conftest import DATA, EXPECTED_TOP1
from models.video import clip_starts


@pytest.mark.parametrize("name", sorted(EXPECTED_TOP1))
def test_pipeline_top1_matches_clips_md(recognizer, name):
    progress = []
    result = recognizer.recognize(DATA / name, top_k_actions=3, on_progress=lambda done, total: progress.append((done, total)))
    ranked = [(a["label"], a["confidence"]) for a in result["actions"]]
    assert ranked[0][0] == EXPECTED_TOP1[name], ranked
    frames = result["video"]["frames"]
    starts = clip_starts(frames, 64, 32)
    assert [c["start_frame"] for c in result["clips"]] == starts
    assert result["clips"][-1]["end_frame"] == frames  # the tail is covered
    assert progress[-1] == (len(starts), len(starts)) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert all(done <= total for done, total in progress)
