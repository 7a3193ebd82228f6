"""A short memory soak (`make soak` runs 100 requests): the API's RSS stays flat after warm-up."""

from __future__ import annotations

import pytest
import importlib.util

from conftest import ROOT

pytestmark = [pytest.mark.slow]

spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)


def test_rss_stays_flat_over_sequential_requests():
    report = soak.soak(soak.DEFAULT_VIDEO, requests=6, warm_up=3, timeout_s=1200)
    assert report["growth"] < 0.05, report
    assert report["leftover_uploads"] == 0
