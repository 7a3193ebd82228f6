"""`make bench-game`'s pieces on small inputs: a recognition measured in its own process, the 1080p decoding
comparison, and the report it writes."""

from __future__ import annotations

import pytest

from benchmarks import decoding, game
from conftest import ARCHERY_AVI, CRICKET_MP4

pytestmark = [pytest.mark.slow]


def test_a_recognition_is_measured_in_its_own_process():
    run = game.predict(ARCHERY_AVI)
    assert run["top1"] == "archery" and run["windows"] == 4 and run["source_frames"] == 131
    assert 0 < run["recognition_s"] < run["wall_s"] and 100 < run["peak_rss_mb"] < 4000
    assert "failed" in game.predict(ARCHERY_AVI.parent / "missing.mp4")


def test_the_decoding_comparison_and_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(decoding, "SOURCE", CRICKET_MP4)
    rows = decoding.decode_figures(tmp_path, seconds=2)
    assert [row["video"] for row in rows] == ["1080p 30 fps, 2 s", "1080p 60 fps, 2 s"]
    assert rows[0]["source_frames"] == 60 and rows[1]["source_frames"] == 120
    assert all(row["ours"]["frames_out"] == 50 and row["opencv"]["frames_out"] == row["source_frames"] for row in rows)
    run = {"windows": 4, "recognition_s": 2.0, "windows_per_s": 2.0, "decode_fps": 65.5, "peak_rss_mb": 400}
    report = {"date": "today", "minutes": 30, "decode_hd": rows,
              "machine": {"cpu": "a CPU", "cpu_kind": "amx", "cores": 2},
              "runs": {"ours, 5-minute cut": run, "before, 5-minute cut": {**run, "recognition_s": 5.0},
                       "ours, 5-minute cut at 60 fps": run, "before, 5-minute cut at 60 fps": {"failed": ["killed"]},
                       "ours, the 30-minute game": {**run, "recognition_s": 600.0, "peak_rss_mb": 420}}}
    text = game.markdown(report)
    assert "a 90-minute 1080p 30 fps game takes **30.0 minutes**" in text
    assert "2.50x faster than before" in text and "failed: ['killed']" in text and "(+5.0%)" in text
