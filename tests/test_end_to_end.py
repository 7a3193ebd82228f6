"""Both services started for real on loopback; a clip uploaded through the frontend comes back ranked."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ARCHERY_AVI

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout_s} s")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    api_port, web_port = _free_port(), _free_port()
    temp_uploads = tmp_path_factory.mktemp("api-uploads")
    web_uploads = tmp_path_factory.mktemp("web-uploads")
    env = {**os.environ, "UPLOAD_DIR": str(temp_uploads), "FRONTEND_UPLOAD_DIR": str(web_uploads),
           "API_URL": f"http://127.0.0.1:{api_port}", "PYTHONUNBUFFERED": "1"}
    bin_dir = Path(sys.executable).parent
    api = subprocess.Popen([str(bin_dir / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    web = subprocess.Popen([str(bin_dir / "flask"), "--app", "frontend", "run", "--host", "127.0.0.1", "--port", str(web_port)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{api_port}/health", api)
        _wait_until_up(f"http://127.0.0.1:{web_port}/", web)
        yield {"api": f"http://127.0.0.1:{api_port}", "web": f"http://127.0.0.1:{web_port}",
               "temp_uploads": temp_uploads}
    finally:
        for process in (web, api):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_upload_through_the_frontend(services):
    with open(ARCHERY_AVI, "rb") as f:
        response = httpx.post(f"{services['web']}/recognize", files={"video": ("archery.avi", f, "video/x-msvideo")},
                              timeout=300)
    assert response.status_code == 200, response.text[-2000:]
    page = response.text
    first = re.search(r'<ol id="actions">\s*<li><span class="label">([^<]+)</span>', page)
    assert first and first.group(1) == "archery"
    video_url = re.search(r'<video id="player" src="([^"]+)"', page).group(1)
    video = httpx.get(f"{services['web']}{video_url}", timeout=10)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert list(services["temp_uploads"].iterdir()) == []  # the API deleted its temp file
    assert httpx.get(f"{services['api']}/health", timeout=5).json()["model_loaded"] is True
