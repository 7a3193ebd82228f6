"""Shared fixtures. Tests use the real converted I3D (built by `make setup`) on real clips in tests/data."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from benchmarks.clips import expected_top1

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every service the tests start keeps its library in one throwaway folder (never the project's var/), and answers
# the same upload anew each time (tests/test_library.py turns reuse on where it is the point).
LIBRARY_DIR = Path(tempfile.mkdtemp(prefix="test-library-"))
os.environ.setdefault("DATA_DIR", str(LIBRARY_DIR))
os.environ.setdefault("REUSE_RESULTS", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# Real clips and the Kinetics-400 top-1 a correct I3D gives them (the table in tests/data/CLIPS.md).
EXPECTED_TOP1 = expected_top1(DATA)
# The two kinds of CPU that run this suite (CI included), as /proc/cpuinfo flags: tests inject them to run
# both branches of every CPU-dependent choice on either kind.
AVX2_ONLY_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})  # AMD EPYC
AMX_FLAGS = AVX2_ONLY_FLAGS | {"avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                               "amx_int8"}  # Intel Xeon (Sapphire Rapids)
AVX512_BF16_FLAGS = AVX2_ONLY_FLAGS | {"avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"}  # AMD EPYC, family 26
CRICKET_MP4 = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"  # 79 frames: two clips, cheap
ARCHERY_AVI = DATA / "archery__paddlevideo_example.avi"  # 131 frames


def files_below(folder: Path) -> list[Path]:
    """Every file an API left in its upload folder, resumable uploads' (in resumable/) included."""
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def write_video(path: Path, num_frames: int, *, size=(320, 240), fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """A synthetic video whose frame i is a flat grey of value 3 * (i % 80), so tests can tell frames apart."""
    from models.video import write_grey_ramp

    return write_grey_ramp(path, num_frames, size=size, fps=fps, fourcc=fourcc)


def write_real_minute(path: Path, *, clips: tuple[str, ...] = ("basketball__mmaction2_shooting_drill.mp4",
                      "yoga__askanything_yoga.mp4", "taichi__stgcn_ta_chi.mp4") * 2, keyframe_every: int = 60,
                      scene_cuts: bool = True, sound: bool = False) -> Path:
    """10 s of each real clip (by default shooting basketball, yoga, tai chi, twice: 60 s) at 30 fps, 640x360
    H.264 with a keyframe every `keyframe_every` frames, as cameras make them (and at scene cuts unless told
    not to), and with `sound` a tone (AAC) that rises clip by clip: a small game."""
    import imageio_ffmpeg

    inputs = [arg for clip in clips for arg in ("-i", str(DATA / clip))]
    graph = "".join(f"[{i}:v]scale=640:360,setsar=1,fps=30,trim=duration=10,setpts=PTS-STARTPTS[v{i}];"
                    for i in range(len(clips)))
    graph += "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[out]"
    audio = []
    if sound:
        inputs += ["-f", "lavfi", "-i", f"aevalsrc=0.2*sin(2*PI*(220+40*floor(t/10))*t):s=48000:d={10 * len(clips)}"]
        audio = ["-map", f"{len(clips)}:a", "-c:a", "aac", "-b:a", "96k"]
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *inputs,
                    "-filter_complex", graph, "-map", "[out]", *audio, "-c:v", "libx264", "-preset", "veryfast",
                    "-g", str(keyframe_every), *([] if scene_cuts else ["-sc_threshold", "0"]),
                    "-t", str(10 * len(clips)), str(path)], check=True, timeout=300)
    return path


def assert_csv_matches(text: str, result: dict) -> None:
    import csv
    import io

    every = list(csv.DictReader(io.StringIO(text)))
    segments, rows = [r for r in every if r["kind"] == "segment"], [r for r in every if r["kind"] == "clip"]
    assert every == segments + rows  # the moments first
    assert len(segments) == len(result.get("segments", []))
    for row, segment in zip(segments, result.get("segments", [])):
        assert (row["label_1"], float(row["confidence_1"])) == (segment["label"], segment["confidence"])
        assert (float(row["start_s"]), float(row["end_s"])) == (segment["start_s"], segment["end_s"])
        first, last = (result["clips"][i] for i in segment["windows"])
        assert (int(row["start_frame"]), int(row["end_frame"])) == (first["start_frame"], last["end_frame"])
    assert len(rows) == len(result["clips"]) > 0
    for row, clip in zip(rows, result["clips"]):
        assert (float(row["start_s"]), float(row["end_s"])) == (clip["start_s"], clip["end_s"])
        assert (int(row["start_frame"]), int(row["end_frame"])) == (clip["start_frame"], clip["end_frame"])
        for rank, action in enumerate(clip["actions"], 1):
            assert (row[f"label_{rank}"], float(row[f"confidence_{rank}"])) == (action["label"], action["confidence"])


def assert_annotated(video: Path, source: Path, result: dict) -> None:
    """`video` is `source` frame for frame with each clip's top label drawn as frontend/annotate.py draws it."""
    import cv2
    import numpy as np

    from frontend.annotate import Painter, segments

    def frames(path: Path) -> list:
        capture = cv2.VideoCapture(str(path))
        out = []
        while (read := capture.read())[0]:
            out.append(read[1])
        capture.release()
        return out

    drawn, original = frames(video), frames(source)
    assert len(drawn) == len(original) > 0 and drawn[0].shape == original[0].shape
    height, width = original[0].shape[:2]
    parts = segments(result, len(original))
    painter = Painter(width, height, parts, len(original))
    for part in parts:
        index = (part.start + part.end) // 2
        x0, y0, x1, y1 = painter.label_box(part)
        expected = painter.draw(original[index].copy(), index, part)
        region = (slice(y0, y1), slice(x0, x1))
        error = np.abs(drawn[index][region].astype(int) - expected[region]).mean()
        untouched = np.abs(drawn[index][region].astype(int) - original[index][region]).mean()
        assert error < 12 < untouched, (part, error, untouched)  # this label, drawn there
        middle = (slice(height // 3, 2 * height // 3), slice(width // 3, 2 * width // 3))
        assert np.abs(drawn[index][middle].astype(int) - original[index][middle]).mean() < 6  # the rest untouched
        bar = slice(height - painter.bar_height, height)  # the timeline of every clip, and the playhead
        assert np.abs(drawn[index][bar].astype(int) - expected[bar]).mean() < 12


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
    from models.runtimes.factory import open_extractor

    return open_extractor(str(saved_model_dir))


@pytest.fixture(scope="session")
def float32_extractor(saved_model_dir):
    """float32 TensorFlow on every machine: the source of truth, and the extractor of tests that compare exact numbers."""
    from models.runtimes.factory import open_extractor

    return open_extractor(str(saved_model_dir), runtime="tensorflow", precision="float32")


@pytest.fixture(scope="session")
def recognizer(extractor):
    from models.recognition.recognizer import ActionRecognizer

    recognizer = ActionRecognizer(extractor)
    yield recognizer
    recognizer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A service as its own process on a fixed loopback port: started, signalled, killed, started again.
    Its output goes to `log` (appended across restarts)."""

    def __init__(self, argv: list[str], *, port: int, env: dict[str, str], log: Path, health: str = "/health"):
        self.argv, self.port, self.env, self.log = argv, port, env, log
        self.url = f"http://127.0.0.1:{port}"
        self.health_url = self.url + health
        self.process: subprocess.Popen | None = None

    @classmethod
    def api(cls, port: int, env: dict[str, str], log: Path) -> "Service":
        return cls([sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)], port=port, env=env, log=log)

    @classmethod
    def page(cls, port: int, env: dict[str, str], log: Path) -> "Service":
        flask = str(Path(sys.executable).parent / "flask")
        return cls([flask, "--app", "frontend", "run", "--host", "127.0.0.1", "--port", str(port)], port=port, env=env,
                   log=log)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> "Service":
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_up()
        return self

    def ensure_up(self) -> None:
        if not self.running:
            self.start()

    def wait_up(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.url} exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.health_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.url} did not come up in {timeout_s} s")

    def wait_exit(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


LIVE_TOKEN_SECRET = "tests-only-live-secret"  # lets tests sign an expired token for the services below


@pytest.fixture(scope="session")
def live_services(tmp_path_factory):
    """The API (real model) and the frontend started as their own processes on loopback ports."""
    api_port, web_port = _free_port(), _free_port()
    temp_uploads = tmp_path_factory.mktemp("api-uploads")
    web_uploads = tmp_path_factory.mktemp("web-uploads")
    env = {**os.environ, "UPLOAD_DIR": str(temp_uploads), "FRONTEND_UPLOAD_DIR": str(web_uploads),
           "API_URL": f"http://127.0.0.1:{api_port}", "PYTHONUNBUFFERED": "1",
           "LIVE_TOKEN_SECRET": LIVE_TOKEN_SECRET, "LIVE_IDLE_TIMEOUT_S": "5"}
    logs = tmp_path_factory.mktemp("service-logs")
    api = Service.api(api_port, env, logs / "api.log")
    web = Service.page(web_port, env, logs / "frontend.log")
    try:
        api.start(wait=False)
        web.start()
        api.wait_up()
        yield {"api": api.url, "web": web.url, "temp_uploads": temp_uploads, "web_uploads": web_uploads,
               "api_log": api.log, "web_log": web.log}
    finally:
        web.stop()
        api.stop()


# Headless Chromium for the page tests (Debian's, installed by `make test`), driven by Playwright.
ARTIFACTS = ROOT / "test-artifacts"  # screenshots
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"]


@contextmanager
def launch_chromium(extra_args: list[str] = ()):
    """Headless Chromium under Playwright, with `extra_args` besides the usual ones."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        yield browser
        browser.close()


@pytest.fixture(scope="module")  # per module: Playwright's loop is not kept open under other modules' tests
def browser():
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session", autouse=True)
def library_folder_removed():
    yield
    shutil.rmtree(LIBRARY_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def temp_uploads_left_empty():
    """After the whole suite, the project's temp_uploads/ holds nothing but its .gitkeep."""
    yield
    leftovers = [p.name for p in (ROOT / "temp_uploads").iterdir() if p.name != ".gitkeep"]
    assert not leftovers, f"temp_uploads/ was left with {leftovers}"


# pytest.ini's markers from what a test uses, so a new test is marked as its fixtures are; modules that are slow
# as a whole say so themselves (`pytestmark`). `make test-fast` leaves every marked test out.
MARKED_BY_FIXTURE = {
    "browser": {"browser", "page", "fake_camera"},
    "postgres": {"postgres"},
    "distributed": {"cluster"},
    "slow": {"live_services", "cluster", "postgres", "game", "games", "trained", "own", "serving"},
}


def pytest_collection_modifyitems(config, items):
    from models.hardware import cuda_gpu_present

    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in MARKED_BY_FIXTURE.items():
            if used & fixtures:
                item.add_marker(marker)
        if item.get_closest_marker("gpu") and not cuda_gpu_present():
            item.add_marker(no_gpu)
