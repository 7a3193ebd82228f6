"""`python -m models predict` prints the API's JSON, or a readable table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import CRICKET_MP4

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "models", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_predict_json_matches_api_shape():
    done = _cli("predict", str(CRICKET_MP4), "--top-k", "2", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {"actions", "head", "clips", "video", "timings_ms"}
    assert [a["label"] for a in result["actions"]][0] == "playing cricket" and len(result["actions"]) == 2
    assert len(result["clips"]) == 2 and result["video"]["frames"] == 79


def test_predict_table_and_bad_video(tmp_path):
    done = _cli("predict", str(CRICKET_MP4))
    assert done.returncode == 0 and " 1. playing cricket" in done.stdout
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    done = _cli("predict", str(bad))
    assert done.returncode == 2 and "not a readable video" in done.stderr
