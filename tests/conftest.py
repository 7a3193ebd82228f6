"""Shared fixtures. Tests use the real converted I3D (built by `make setup`) on real clips in tests/data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# Real clips and the Kinetics-400 top-1 a correct I3D gives them (tests/data/CLIPS.md).
EXPECTED_TOP1 = {
    "archery__paddlevideo_example.avi": "archery",
    "armwrestling__mmaction2_demo.mp4": "arm wrestling",
    "baseball__askanything_hitting_baseball.mp4": "hitting baseball",
    "basketball__mmaction2_shooting_drill.mp4": "shooting basketball",
    "bassguitar__askanything_playing_guitar.mp4": "playing bass guitar",
    "cleaningpool__mmaction2_test.mp4": "cleaning pool",
    "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4": "playing cricket",
    "cricket__kinetics_i3d_v_CricketShot_g04_c01_rgb.gif": "playing cricket",
    "makeup__mmaction2_test_ApplyEyeMakeup.avi": "filling eyebrows",
    "pancake__decord_flipping_a_pancake.mkv": "flipping pancake",
    "taichi__stgcn_ta_chi.mp4": "tai chi",
    "weightlifting__stgcn_clean_and_jerk.mp4": "clean and jerk",
    "yoga__askanything_yoga.mp4": "yoga",
    "yoga__uniformer_Tw2yXa6CzWE.mp4": "yoga",
}
# The two kinds of CPU that run this suite (CI included), as /proc/cpuinfo flags: tests inject them to run
# both branches of every CPU-dependent choice on either kind.
AVX2_ONLY_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})  # AMD EPYC
AMX_FLAGS = AVX2_ONLY_FLAGS | {"avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                               "amx_int8"}  # Intel Xeon (Sapphire Rapids)
CRICKET_MP4 = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"  # 79 frames: two clips, cheap
ARCHERY_AVI = DATA / "archery__paddlevideo_example.avi"  # 131 frames


def write_video(path: Path, num_frames: int, *, size=(320, 240), fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """A synthetic video whose frame i is a flat grey of value 3 * (i % 80), so tests can tell frames apart."""
    from models.video import write_grey_ramp

    return write_grey_ramp(path, num_frames, size=size, fps=fps, fourcc=fourcc)


@pytest.fixture(scope="session")
def saved_model_dir() -> Path:
    from models.paths import DEFAULT_SAVED_MODEL

    if not (DEFAULT_SAVED_MODEL / "saved_model.pb").is_file():
        pytest.fail(f"{DEFAULT_SAVED_MODEL} is missing: run `make setup` (make test does it)")
    return DEFAULT_SAVED_MODEL


@pytest.fixture(scope="session")
def extractor(saved_model_dir):
    """I3D as the service runs it on this machine: runtime and precision "auto" (on a CPU: OpenVINO, bfloat16
    with AMX, int8 or float32 elsewhere). Tests comparing its numbers with another run's compare only what
    that precision promises (the accuracy rule, rankings)."""
    from models.extractor import open_extractor

    return open_extractor(str(saved_model_dir))


@pytest.fixture(scope="session")
def float32_extractor(saved_model_dir):
    """float32 TensorFlow on every machine: the source of truth, and the extractor of tests that compare exact numbers."""
    from models.extractor import open_extractor

    return open_extractor(str(saved_model_dir), runtime="tensorflow", precision="float32")


@pytest.fixture(scope="session")
def recognizer(extractor):
    from models.recognizer import ActionRecognizer

    recognizer = ActionRecognizer(extractor)
    yield recognizer
    recognizer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout_s} s")


@pytest.fixture(scope="session")
def live_services(tmp_path_factory):
    """The API (real model) and the frontend started as their own processes on loopback ports."""
    api_port, web_port = _free_port(), _free_port()
    temp_uploads = tmp_path_factory.mktemp("api-uploads")
    web_uploads = tmp_path_factory.mktemp("web-uploads")
    env = {**os.environ, "UPLOAD_DIR": str(temp_uploads), "FRONTEND_UPLOAD_DIR": str(web_uploads),
           "API_URL": f"http://127.0.0.1:{api_port}", "PYTHONUNBUFFERED": "1"}
    bin_dir = Path(sys.executable).parent
    logs = tmp_path_factory.mktemp("service-logs")
    api_log, web_log = logs / "api.log", logs / "frontend.log"
    api = subprocess.Popen([str(bin_dir / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
                           cwd=ROOT, env=env, stdout=open(api_log, "w"), stderr=subprocess.STDOUT)
    web = subprocess.Popen([str(bin_dir / "flask"), "--app", "frontend", "run", "--host", "127.0.0.1", "--port", str(web_port)],
                           cwd=ROOT, env=env, stdout=open(web_log, "w"), stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"http://127.0.0.1:{api_port}/health", api, api_log)
        _wait_until_up(f"http://127.0.0.1:{web_port}/", web, web_log)
        yield {"api": f"http://127.0.0.1:{api_port}", "web": f"http://127.0.0.1:{web_port}",
               "temp_uploads": temp_uploads, "web_uploads": web_uploads, "api_log": api_log, "web_log": web_log}
    finally:
        for process in (web, api):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session", autouse=True)
def temp_uploads_left_empty():
    """After the whole suite, the project's temp_uploads/ holds nothing but its .gitkeep."""
    yield
    leftovers = [p.name for p in (ROOT / "temp_uploads").iterdir() if p.name != ".gitkeep"]
    assert not leftovers, f"temp_uploads/ was left with {leftovers}"
