"""Faults against the real processes: clients that leave or dawdle, oversized headers, an API killed,
restarted or stopped. No inference is spent on an answer nobody reads, nothing is left behind, and every
client gets an answer."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from urllib.parse import urlparse

import httpx
import pytest

from conftest import ARTIFACTS, CRICKET_MP4, ROOT, Service, _free_port, files_below, write_video
from models.video import clip_starts

pytestmark = [pytest.mark.slow]


def _metric(api: str, name: str) -> float:
    text = httpx.get(f"{api}/metrics", timeout=10).text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def _until(condition, timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _request_head(api: str, length: int, content_type: str = "video/x-msvideo") -> tuple[tuple[str, int], bytes]:
    url = urlparse(api)
    head = (f"POST /recognize_action HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nX-Filename: long.avi\r\n\r\n").encode()
    return (url.hostname, url.port), head


def _answer(client: socket.socket, timeout_s: float = 30) -> bytes:
    """What the server sends until it closes the connection (or `timeout_s` passes)."""
    client.settimeout(timeout_s)
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_client_that_leaves_mid_recognition_has_its_clips_cancelled(live_services, tmp_path):
    api = live_services["api"]
    video = write_video(tmp_path / "long.avi", 1600).read_bytes()  # 49 windows
    inferred, cancelled = _metric(api, "action_api_clips_inferred"), _metric(api, "action_api_clips_cancelled")
    address, head = _request_head(api, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video)
        _until(lambda: _metric(api, "action_api_clips_inferred") >= inferred + 2, what="the recognition to start")
    # The client is gone: within a moment no more clips run, and its windows not done are counted as given up.
    _until(lambda: _metric(api, "action_api_recognitions_running") == 0, 30, "the recognition to stop")
    run = _metric(api, "action_api_clips_inferred") - inferred
    for _ in range(30):  # the clip on the model when the client left still finishes; nothing after it
        time.sleep(3)
        settled, run = run, _metric(api, "action_api_clips_inferred") - inferred
        if run == settled:
            break
    given_up = _metric(api, "action_api_clips_cancelled") - cancelled
    assert run < 49 / 2 and 49 - run <= given_up <= 49
    assert files_below(live_services["temp_uploads"]) == []


def test_a_client_that_leaves_mid_upload_leaves_no_file(live_services, tmp_path):
    api = live_services["api"]
    video = write_video(tmp_path / "short.avi", 100).read_bytes()
    address, head = _request_head(api, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video[: len(video) // 2])
        _until(lambda: files_below(live_services["temp_uploads"]), 10, "the upload to start")
    _until(lambda: not files_below(live_services["temp_uploads"]), 10, "the partial upload to be removed")
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200


# --- An API of our own, to be stalled, killed, restarted and stopped (with short time limits). ---

class OwnServices:
    def __init__(self, api: Service, page: Service, uploads):
        self.api, self.page, self.uploads = api, page, uploads

    def uploads_left(self) -> list[str]:
        return [p.name for p in files_below(self.uploads)]


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    api_port, web_port = _free_port(), _free_port()
    uploads = tmp_path_factory.mktemp("own-api-uploads")
    logs = tmp_path_factory.mktemp("own-service-logs")
    env = {**os.environ, "UPLOAD_DIR": str(uploads), "FRONTEND_UPLOAD_DIR": str(tmp_path_factory.mktemp("own-web")),
           "API_URL": f"http://127.0.0.1:{api_port}", "PYTHONUNBUFFERED": "1",
           "UPLOAD_IDLE_TIMEOUT_S": "2", "UPLOAD_TIMEOUT_S": "6", "DRAIN_TIMEOUT_S": "120", "MAX_HEADER_KIB": "8"}
    services = OwnServices(Service.api(api_port, env, logs / "api.log"), Service.page(web_port, env, logs / "web.log"),
                           uploads)
    services.api.start(wait=False)
    services.page.start()
    services.api.wait_up()
    yield services
    services.page.stop()
    services.api.stop()


def test_a_stalled_upload_gets_408_and_gives_up_its_place(own, tmp_path):
    own.api.ensure_up()
    api = own.api.url
    video = write_video(tmp_path / "stalled.avi", 100).read_bytes()
    address, head = _request_head(api, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video[: len(video) // 2])
        _until(lambda: _metric(api, "action_api_recognitions_waiting") == 1, 10, "the upload to hold a place")
        started = time.monotonic()
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"nothing arrived for 2 s" in answer and time.monotonic() - started < 10
    assert _metric(api, "action_api_recognitions_waiting") == 0
    assert own.uploads_left() == []


def test_an_upload_that_drags_on_gets_408(own, tmp_path):
    own.api.ensure_up()
    video = write_video(tmp_path / "slow.avi", 200).read_bytes()
    address, head = _request_head(own.api.url, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head)
        started = time.monotonic()
        try:
            for offset in range(0, len(video), 2048):  # a trickle that never stalls for 2 s but never ends in 6 s
                client.sendall(video[offset: offset + 2048])
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on us: the answer is already waiting
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 408") and b"longer than 6 s" in answer, answer[:300]
    assert time.monotonic() - started < 15
    assert own.uploads_left() == []


def test_oversized_headers_are_refused(own):
    own.api.ensure_up()
    response = httpx.get(f"{own.api.url}/health", headers={"X-Padding": "a" * 10_000})
    assert response.status_code == 431 and "over the 8 KiB limit" in response.json()["detail"]
    address = (urlparse(own.api.url).hostname, own.api.port)
    with socket.create_connection(address) as client:  # far past the limit: the server does not even parse it
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200_000 + b"\r\n\r\n")
        assert _answer(client).startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{own.api.url}/health").status_code == 200


def test_killed_mid_request_then_restarted_leaves_no_upload_and_serves(own, tmp_path):
    own.api.ensure_up()
    video = write_video(tmp_path / "long.avi", 1600).read_bytes()
    address, head = _request_head(own.api.url, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video)
        _until(lambda: _metric(own.api.url, "action_api_clips_inferred") >= 2, what="the recognition to start")
        own.api.process.send_signal(signal.SIGKILL)
        own.api.wait_exit(10)
        assert _answer(client, 5) == b""  # the connection just dies
    assert own.uploads_left() != []  # a kill leaves its upload behind ...
    own.api.start()
    assert own.uploads_left() == []  # ... and the next start sweeps it
    with open(CRICKET_MP4, "rb") as f:
        response = httpx.post(f"{own.api.url}/recognize_action", files={"video": ("cricket.mp4", f)}, timeout=300)
    assert response.status_code == 200 and response.json()["actions"][0]["label"] == "playing cricket"
    assert own.uploads_left() == []


def test_the_page_while_the_api_is_down_and_the_same_upload_after_its_restart(own, page):
    own.api.ensure_up()
    own.api.stop()
    page.goto(own.page.url)
    page.set_input_files("#video", str(CRICKET_MP4))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    message = page.inner_text("#error")
    assert "not reachable right now" in message and "still selected" in message, message
    page.screenshot(path=str(ARTIFACTS / "06-api-down.png"))
    own.api.start()
    page.click("#submit")  # the same file, no reload
    page.wait_for_selector("#actions li .label", timeout=300_000)
    assert page.inner_text("#actions li .label >> nth=0") == "playing cricket"
    assert own.uploads_left() == []


def _recognition_running(api: str, frames: int, tmp_path) -> tuple[threading.Thread, dict]:
    """`api` busy with a synthetic video of `frames` frames sent from a thread;
    returns the thread and where its answer will be."""
    video = write_video(tmp_path / "running.avi", frames).read_bytes()
    answer: dict = {}

    def post() -> None:
        try:
            answer["response"] = httpx.post(f"{api}/recognize_action", content=video,
                                            headers={"Content-Type": "video/x-msvideo"}, timeout=300)
        except httpx.HTTPError as exc:
            answer["error"] = exc

    thread = threading.Thread(target=post)
    thread.start()
    _until(lambda: _metric(api, "action_api_clips_inferred") >= 1 and _metric(api, "action_api_recognitions_running") == 1,
           what="the recognition to start")
    return thread, answer


def test_sigterm_drains_running_recognitions_and_refuses_new_ones(own, tmp_path):
    own.api.ensure_up()
    api = own.api.url
    thread, answer = _recognition_running(api, 600, tmp_path)  # 18 clips: seconds of margin to refuse a new one
    own.api.process.send_signal(signal.SIGTERM)
    _until(lambda: httpx.get(f"{api}/health").status_code == 503, 10, "the drain to begin")
    refused = httpx.post(f"{api}/recognize_action", content=CRICKET_MP4.read_bytes(), headers={"Content-Type": "video/mp4"})
    assert refused.status_code == 503 and "stopping" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    with open(CRICKET_MP4, "rb") as f:
        assert httpx.post(f"{api}/jobs", files={"video": ("c.mp4", f)}).status_code == 503
    thread.join(timeout=150)
    assert answer["response"].status_code == 200 and len(answer["response"].json()["clips"]) == len(clip_starts(600, 64, 32))
    assert own.api.wait_exit(30) == 0  # it exits by itself once the work is done
    assert own.uploads_left() == []


def test_a_second_term_cancels_the_work_in_flight_and_exits_cleanly(own, tmp_path):
    own.api.ensure_up()
    api = own.api.url
    thread, answer = _recognition_running(api, 1600, tmp_path)
    log_start = own.api.log.stat().st_size
    own.api.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    own.api.process.send_signal(signal.SIGTERM)
    assert own.api.wait_exit(30) == 0
    thread.join(timeout=30)
    response = answer["response"]
    assert response.status_code == 503 and "stopped before this recognition finished" in response.json()["detail"]
    log = own.api.log.read_text()[log_start:]
    assert "cancelling the work still in flight" in log and "Traceback" not in log and "Segmentation" not in log
    assert own.uploads_left() == []


def test_make_run_survives_repeated_ctrl_c_and_leaves_nothing_running(tmp_path):
    """Ctrl-C twice on `make run` (the terminal signals the whole group): both services stop, no crash.
    Its trap used to re-enter itself on `kill 0` until bash died of a segmentation fault."""
    api_port, web_port = _free_port(), _free_port()
    env = {**os.environ, "UPLOAD_DIR": str(tmp_path / "uploads"), "FRONTEND_UPLOAD_DIR": str(tmp_path / "web"),
           "FRONTEND_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "run", f"API_PORT={api_port}", f"FRONTEND_PORT={web_port}"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for url in (f"http://127.0.0.1:{api_port}/health", f"http://127.0.0.1:{web_port}/health"):
            _until(lambda: _up(url), 180, url)
        for _ in range(2):
            os.killpg(make.pid, signal.SIGINT)
            time.sleep(0.3)
        make.wait(timeout=60)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Segmentation fault" not in text and "Traceback" not in text, text[-2000:]
    assert not _up(f"http://127.0.0.1:{api_port}/health") and not _up(f"http://127.0.0.1:{web_port}/health")


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
