"""Clients that leave, against the real API process: no inference is spent on an answer nobody reads, and
nothing is left behind."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlparse

import httpx

from conftest import write_video


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


def test_a_client_that_leaves_mid_recognition_has_its_clips_cancelled(live_services, tmp_path):
    api = live_services["api"]
    video = write_video(tmp_path / "long.avi", 1600).read_bytes()  # 49 windows
    inferred, cancelled = _metric(api, "action_api_clips_inferred"), _metric(api, "action_api_clips_cancelled")
    address, head = _request_head(api, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video)
        _until(lambda: _metric(api, "action_api_clips_inferred") >= inferred + 2, what="the recognition to start")
    # The client is gone: within a moment no more clips run, and the ones queued were skipped.
    _until(lambda: _metric(api, "action_api_recognitions_running") == 0, 30, "the recognition to stop")
    run = _metric(api, "action_api_clips_inferred") - inferred
    for _ in range(30):  # the clip on the model when the client left still finishes; nothing after it
        time.sleep(3)
        settled, run = run, _metric(api, "action_api_clips_inferred") - inferred
        if run == settled:
            break
    assert run < 49 / 2 and _metric(api, "action_api_clips_cancelled") > cancelled
    assert list(live_services["temp_uploads"].iterdir()) == []


def test_a_client_that_leaves_mid_upload_leaves_no_file(live_services, tmp_path):
    api = live_services["api"]
    video = write_video(tmp_path / "short.avi", 100).read_bytes()
    address, head = _request_head(api, len(video))
    with socket.create_connection(address) as client:
        client.sendall(head + video[: len(video) // 2])
        _until(lambda: any(live_services["temp_uploads"].iterdir()), 10, "the upload to start")
    _until(lambda: not any(live_services["temp_uploads"].iterdir()), 10, "the partial upload to be removed")
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200
