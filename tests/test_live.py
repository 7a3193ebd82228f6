"""Live recognition against the real services: frames of real clips over the API's WebSocket, every bad input
closed with a clear code and reason (and its session freed), and the live page in headless Chromium whose
fake camera plays a test clip."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import cv2
import httpx
import imageio_ffmpeg
import numpy as np
import pytest
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import ARCHERY_AVI, ARTIFACTS, LIVE_TOKEN_SECRET, launch_chromium

pytestmark = pytest.mark.usefixtures("live_services")


def jpeg_frames(video: Path, short_side: int = 256) -> list[bytes]:
    """The video's frames as the live page sends them: short side 256, JPEG."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        height, width = frame.shape[:2]
        scale = short_side / min(height, width)
        frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    capture.release()
    return frames


def token(api: str) -> str:
    answer = httpx.post(f"{api}/live/sessions", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def open_session(api: str, query: str):
    return connect(f"{api.replace('http', 'ws', 1)}/live?{query}", open_timeout=10, close_timeout=5)


def closed_with(ws, timeout_s: float = 20) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as closed:
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server did not close the session")


def open_sessions(api: str) -> float:
    metrics = httpx.get(f"{api}/metrics", timeout=10).text
    return float(re.search(r"^action_api_live_sessions (\S+)$", metrics, re.M).group(1))


def wait_all_closed(api: str) -> None:
    deadline = time.monotonic() + 10
    while open_sessions(api) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_sessions(api) == 0, "a live session was not freed"


@pytest.fixture
def api(live_services):
    yield live_services["api"]
    wait_all_closed(live_services["api"])


def test_frames_of_a_real_clip_give_its_label_for_every_window(api):
    frames = jpeg_frames(ARCHERY_AVI)  # 131 frames: windows end at frames 64, 96 and 128
    with open_session(api, f"token={token(api)}") as ws:
        ready = json.loads(ws.recv(timeout=10))
        assert ready["type"] == "ready" and (ready["clip_len"], ready["hop"], ready["fps"]) == (64, 32, 25)
        for frame in frames:  # in real time, as a camera would
            ws.send(frame)
            time.sleep(1 / 25)
        windows = [json.loads(ws.recv(timeout=60))]
        while windows[-1]["end_frame"] < 128:  # the newest window is never dropped
            windows.append(json.loads(ws.recv(timeout=60)))
    ends = [w["end_frame"] for w in windows]
    assert ends == sorted(ends) and set(ends) <= {64, 96, 128}
    assert len(windows) + windows[-1]["dropped_windows"] == 3  # on a slow CPU some are dropped, never lost silently
    for window in windows:
        assert window["type"] == "window" and window["head"] == "kinetics400"
        assert window["end_frame"] - window["start_frame"] == 64
        assert window["end_s"] == pytest.approx(window["end_frame"] / 25)
        assert window["actions"][0]["label"] == "archery", window
        assert len(window["actions"]) == 3 and window["latency_ms"] >= window["inference_ms"] > 0


def test_a_moment_is_told_once_the_stream_has_moved_on(api):
    """Archery, then yoga: once yoga has gone on past the merge gap, a segment message tells archery's moment."""
    from conftest import DATA

    frames = jpeg_frames(ARCHERY_AVI) + jpeg_frames(DATA / "yoga__askanything_yoga.mp4")
    messages = []
    with open_session(api, f"token={token(api)}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        for number, frame in enumerate(frames):
            ws.send(frame)
            time.sleep(1 / 50)  # twice real time
            if number % 32 == 0:
                while True:
                    try:
                        messages.append(json.loads(ws.recv(timeout=0.01)))
                    except TimeoutError:
                        break
        deadline = time.monotonic() + 60
        while not any(m["type"] == "segment" for m in messages) and time.monotonic() < deadline:
            messages.append(json.loads(ws.recv(timeout=60)))
    moments = [m for m in messages if m["type"] == "segment"]
    assert moments and moments[0]["label"] == "archery", messages
    assert {w["actions"][0]["label"] for w in messages if w["type"] == "window"} >= {"archery", "yoga"}
    assert moments[0]["start_s"] < 1.0 and moments[0]["end_s"] == pytest.approx(131 / 25, abs=1.5)
    told_after = next(m for m in messages if m["type"] == "window" and m["index"] >= moments[0]["windows"][1] + 3)
    assert messages.index(told_after) < messages.index(moments[0])  # told once the stream moved on, not before


def test_a_slow_model_drops_windows_instead_of_queueing_them(api):
    """Frames sent far faster than the model runs: windows are dropped and counted, never queued without bound."""
    frames = jpeg_frames(ARCHERY_AVI) * 5  # 655 frames at once: 19 windows in a second or two
    with open_session(api, f"token={token(api)}") as ws:
        ws.recv(timeout=10)
        for frame in frames:
            ws.send(frame)
        received = []
        while not received or received[-1]["end_frame"] < len(frames) - 32:
            received.append(json.loads(ws.recv(timeout=60)))
    assert received[-1]["dropped_windows"] > 0
    assert len(received) + received[-1]["dropped_windows"] == (len(frames) - 64) // 32 + 1
    assert len(received) < 10


def png() -> bytes:
    return cv2.imencode(".png", np.zeros((256, 256, 3), np.uint8))[1].tobytes()


def huge_jpeg() -> bytes:  # 4000 x 2200: small as a file, over the 3840 x 2160 pixel limit once decoded
    return cv2.imencode(".jpg", np.zeros((2200, 4000, 3), np.uint8))[1].tobytes()


@pytest.mark.parametrize("send, code, reason", [
    (png, 1003, "not a JPEG image"),
    (lambda: "hello", 1003, "binary message holding one JPEG"),
    (lambda: b"\xff\xd8" + bytes(600 * 1024), 1009, "over the 512 KiB limit"),
    (huge_jpeg, 1003, "4000x2200 frame is over the limit"),
], ids=["png", "text", "too-many-bytes", "too-many-pixels"])
def test_bad_frames_close_the_session_with_a_code_and_a_reason(api, send, code, reason):
    with open_session(api, f"token={token(api)}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        ws.send(jpeg_frames(ARCHERY_AVI)[0])
        ws.send(send())
        got_code, got_reason = closed_with(ws)
    assert got_code == code and reason in got_reason, (got_code, got_reason)


def expired_token() -> str:
    from api.live.tokens import LiveTokens

    return LiveTokens(ttl_s=60, secret=LIVE_TOKEN_SECRET).issue(now=time.time() - 120)


@pytest.mark.parametrize("query, code, reason", [
    (lambda api: "", 4401, "no token"),
    (lambda api: "token=abc.def.ghi", 4401, "invalid token"),
    (lambda api: f"token={expired_token()}", 4401, "the token expired 60 s ago"),
    (lambda api: f"token={token(api)}&head=nope", 4422, "unknown head 'nope'"),
    (lambda api: f"token={token(api)}&sport=quidditch", 4422, "unknown sport 'quidditch'; known: basketball"),
], ids=["no-token", "forged", "expired", "unknown-head", "unknown-sport"])
def test_refused_sessions_close_with_a_code_and_a_reason(api, query, code, reason):
    with open_session(api, query(api)) as ws:
        got_code, got_reason = closed_with(ws)
    assert got_code == code and reason in got_reason, (got_code, got_reason)


def test_a_token_opens_one_session_only(api):
    once = token(api)
    with open_session(api, f"token={once}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with open_session(api, f"token={once}") as again:
            assert closed_with(again) == (4401, "the token was already used; get a new one for each session")


def test_too_many_sessions_are_refused_until_one_closes(api):
    with open_session(api, f"token={token(api)}") as first, open_session(api, f"token={token(api)}") as second:
        for ws in (first, second):  # LIVE_MAX_SESSIONS=2
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with open_session(api, f"token={token(api)}") as third:
            code, reason = closed_with(third)
        assert code == 1013 and "2 live sessions are open" in reason
        first.close()
        deadline = time.monotonic() + 10
        while open_sessions(api) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        with open_session(api, f"token={token(api)}") as fourth:  # the closed one's place is free again
            assert json.loads(fourth.recv(timeout=10))["type"] == "ready"


def test_an_idle_session_is_closed(api):
    with open_session(api, f"token={token(api)}") as ws:
        ws.recv(timeout=10)
        ws.send(jpeg_frames(ARCHERY_AVI)[0])
        started = time.monotonic()
        assert closed_with(ws) == (4408, "no frame for 5 s")  # LIVE_IDLE_TIMEOUT_S=5 in the fixture
    assert time.monotonic() - started >= 4.5


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory) -> Path:
    """ARCHERY_AVI as a Y4M file, which Chromium's fake camera plays in a loop."""
    y4m = tmp_path_factory.mktemp("camera") / "archery.y4m"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(ARCHERY_AVI), "-pix_fmt", "yuv420p",
                    "-r", "25", str(y4m)], check=True)
    return y4m


def test_live_page_names_the_action_seen_by_the_camera(live_services, fake_camera):
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_camera}"]
    with launch_chromium(args) as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{live_services['web']}/live")
        page.click("#live-start")
        expect(page.locator("#live-actions li .label").first).to_have_text("archery", timeout=120_000)
        page.wait_for_selector("#live-history .cell:nth-child(2)", timeout=60_000)
        lag_ms = float(page.get_attribute("#live-lag", "data-ms"))
        assert 0 < lag_ms < 30_000
        assert "archery" in page.get_attribute("#live-history .cell >> nth=0", "title")
        page.screenshot(path=str(ARTIFACTS / "06-live.png"), full_page=True)
        assert not errors, errors
        page.click("#live-stop")
        assert page.inner_text("#live-status") == "Camera off."
    wait_all_closed(live_services["api"])


def test_a_stopping_api_closes_live_sessions_with_1001_and_exits(tmp_path):
    import os
    import signal

    from conftest import Service, _free_port

    port = _free_port()
    env = {**os.environ, "UPLOAD_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    api = Service.api(port, env, tmp_path / "api.log").start()
    try:
        with open_session(api.url, f"token={token(api.url)}") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            api.process.send_signal(signal.SIGTERM)
            assert closed_with(ws) == (1001, "the service is stopping; reconnect in a moment")
        assert api.wait_exit(60) == 0
    finally:
        api.stop()
