"""`python -m models predict` prints the API's JSON, or a readable table; `live` a JSON line per window of a file,
a stream or a camera."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from conftest import ARCHERY_AVI, CRICKET_MP4, _free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "models", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_predict_json_matches_api_shape():
    done = _cli("predict", str(CRICKET_MP4), "--top-k", "2", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {"actions", "head", "sport", "segments", "clips", "video", "timings_ms"}
    assert result["sport"] is None
    assert [a["label"] for a in result["actions"]][0] == "playing cricket" and len(result["actions"]) == 2
    assert len(result["clips"]) == 2 and result["video"]["frames"] == 79


def test_predict_table_and_bad_video(tmp_path):
    done = _cli("predict", str(CRICKET_MP4))
    assert done.returncode == 0 and " 1. playing cricket" in done.stdout
    assert "moments:\n     0.00-3.16   s  playing cricket" in done.stdout
    longer = _cli("predict", str(CRICKET_MP4), "--min-length-s", "5")
    assert longer.returncode == 0 and "moments:\nclips:" in longer.stdout
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    done = _cli("predict", str(bad))
    assert done.returncode == 2 and "not a readable video" in done.stderr


def _windows(stdout: str) -> list[dict]:
    return [message for message in map(json.loads, stdout.splitlines()) if message["type"] == "window"]


def test_live_prints_every_window_of_a_file():
    done = _cli("live", "--source", str(ARCHERY_AVI))
    assert done.returncode == 0, done.stderr[-2000:]
    windows = _windows(done.stdout)
    assert [(w["start_frame"], w["end_frame"]) for w in windows] == [(0, 64), (32, 96), (64, 128)]
    assert all(w["actions"][0]["label"] == "archery" and len(w["actions"]) == 3 for w in windows)
    assert windows[-1]["end_s"] == pytest.approx(128 / 25) and windows[-1]["dropped_windows"] == 0
    moments = [json.loads(line) for line in done.stdout.splitlines() if json.loads(line)["type"] == "segment"]
    assert [(m["label"], m["start_s"], m["windows"]) for m in moments] == [("archery", 0.0, [0, 2])]  # told at the end


def test_live_reads_a_stream_as_it_plays():
    """A real network stream: ffmpeg serves the clip over HTTP at its frame rate, in a loop."""
    url = f"http://127.0.0.1:{_free_port()}/live.ts"
    server = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "quiet", "-re", "-stream_loop", "-1",
                               "-i", str(ARCHERY_AVI), "-c:v", "mpeg4", "-q:v", "3", "-f", "mpegts", "-listen", "1", url])
    try:
        for _ in range(10):  # until ffmpeg listens (a probe of the port would take its one connection)
            done = _cli("live", "--source", url, "--max-windows", "3")
            if "cannot open" not in done.stderr:
                break
            time.sleep(0.5)
    finally:
        server.kill()
        server.wait()
    assert done.returncode == 0, done.stderr[-2000:]
    windows = _windows(done.stdout)
    assert len(windows) == 3 and all(w["actions"][0]["label"] == "archery" for w in windows)
    assert [w["index"] for w in windows] == sorted(w["index"] for w in windows)  # some may be dropped, in order


def test_live_without_the_source_says_so():
    camera = next(i for i in range(10, 64) if not Path(f"/dev/video{i}").exists())
    done = _cli("live", "--source", str(camera))
    assert done.returncode == 2 and f"cannot open camera {camera}" in done.stderr
    done = _cli("live", "--source", "/no/such/clip.mp4")
    assert done.returncode == 2 and "cannot open stream or file '/no/such/clip.mp4'" in done.stderr
