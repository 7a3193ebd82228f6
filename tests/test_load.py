"""A short `make load` (benchmarks/load.py): clients at once, some through the page, against a fresh API
whose line is shorter than the crowd. Every request is answered: 200 with the right label, or 503 with
Retry-After; nothing else, no temp file left."""

from __future__ import annotations

import pytest

from benchmarks import load
from conftest import ARCHERY_AVI, CRICKET_MP4

pytestmark = [pytest.mark.slow]


def test_a_crowd_gets_right_labels_or_busy_answers_and_nothing_is_left():
    report = load.run_scenario(8, page_share=0.25, clips=[CRICKET_MP4, ARCHERY_AVI], serve_all=False,
                               time_limit_s=600, api_env={"MAX_CONCURRENT_REQUESTS": "2", "QUEUE_DEPTH": "3"})
    assert report["ok"], report["failures"]
    assert report["via_page"] == 2 and sum(report["answers"].values()) == 8
    assert report["answers"].get("200", 0) >= 5  # the two running and the three in line at least
    assert report["correct"] == report["answers"]["200"] and report["temp_files_left"] == 0
