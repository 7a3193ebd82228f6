"""The API as a separate process on a free local port, and its memory as Linux reports it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def rss_bytes(pid: int | str = "self") -> int:
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int | str = "self") -> int:
    """The most resident memory the process has had (VmHWM), since start or the last `reset_peak_rss`."""
    return _status_kb(pid, "VmHWM") * 1024


def reset_peak_rss(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM := VmRSS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    """Until `url`/health answers 200; RuntimeError if `server` exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not start (exit status {server.poll()})")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


@dataclass
class ApiProcess:
    url: str
    pid: int
    upload_dir: Path
    startup_s: float  # from the process's start until /health said ok (model loaded and warmed up)


@contextmanager
def running_api(env: dict[str, str] | None = None, *, start_timeout_s: float = 300) -> Iterator[ApiProcess]:
    """Start `python -m api` as `make run` does (two malloc arenas), wait until /health says ok."""
    port = free_port()
    uploads = Path(tempfile.mkdtemp(prefix="api-uploads-"))
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "UPLOAD_DIR": str(uploads), "LOG_LEVEL": "WARNING", **(env or {})}
    server = subprocess.Popen([sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        wait_healthy(url, server, start_timeout_s)
        yield ApiProcess(url, server.pid, uploads, time.monotonic() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def running_frontend(api_url: str, env: dict[str, str] | None = None, *, start_timeout_s: float = 60) -> Iterator[str]:
    """The upload page (Flask) on a free local port, talking to `api_url`; yields its URL."""
    port = free_port()
    uploads = Path(tempfile.mkdtemp(prefix="page-uploads-"))
    env = {**os.environ, "API_URL": api_url, "FRONTEND_UPLOAD_DIR": str(uploads), "LOG_LEVEL": "WARNING", **(env or {})}
    server = subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "frontend", "run", "--host",
                               "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, start_timeout_s)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(uploads, ignore_errors=True)
