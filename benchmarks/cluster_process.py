"""A cluster on one machine, as processes: Debian's redis-server, Celery recognition workers and the API as
their gateway, each on free loopback ports. Used by the tests (tests/test_distributed.py) and by
`make bench-cluster`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from benchmarks.api_process import ROOT, free_port, wait_healthy


class RedisServer:
    """redis-server without persistence on a loopback port; `stop()` and `start()` again keep the port."""

    def __init__(self, log: Path, port: int | None = None):
        self.port, self.log = port or free_port(), log
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20) -> "RedisServer":
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log, stderr=subprocess.STDOUT)
        client, deadline = redis.Redis(port=self.port, socket_connect_timeout=1), time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {self.log.read_text()[-1000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@dataclass
class Worker:
    """`celery -A workers.worker worker` as `make worker` runs it, named `name`@local."""
    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    killed: bool = False

    @property
    def hostname(self) -> str:
        return f"{self.name}@local"

    def start(self) -> "Worker":
        argv = [str(Path(sys.executable).parent / "celery"), "-A", "workers.worker", "worker", "--pool=solo",
                "--concurrency=1", "--prefetch-multiplier=1", "-Q", "recognition", "--hostname", self.hostname]
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # Celery's warm shutdown: the job in hand finishes first
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    redis: RedisServer
    workers: list[Worker]
    api: str  # the gateway's URL
    gateway: subprocess.Popen
    shared: Path  # SHARED_UPLOAD_DIR
    env: dict[str, str]
    logs: Path

    def add_worker(self) -> Worker:
        worker = Worker(f"w{len(self.workers) + 1}", self.env, self.logs / f"w{len(self.workers) + 1}.log").start()
        self.workers.append(worker)
        return worker

    def health(self) -> dict:
        return httpx.get(f"{self.api}/health", timeout=5).json()

    def wait_workers(self, count: int, timeout_s: float = 300) -> None:
        """Until the gateway sees `count` live workers (model loaded, warmed up, announced); a worker that
        exits unasked fails it at once."""
        deadline = time.monotonic() + timeout_s
        while self.health().get("workers") != count:
            dead = [w.name for w in self.workers if w.process.poll() is not None and not w.killed]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(w.log.read_text()[-1500:] for w in self.workers)
                raise RuntimeError(f"{count} workers did not come up (dead: {dead}): {logs}")
            time.sleep(0.5)


@contextmanager
def running_cluster(workers: int, *, env: dict[str, str] | None = None, gateway_processes: int = 1,
                    logs: Path | None = None, start_timeout_s: float = 300) -> Iterator[Cluster]:
    """redis-server, `workers` workers and the gateway (`gateway_processes` API processes), all stopped after."""
    logs = logs or Path(tempfile.mkdtemp(prefix="cluster-logs-"))
    shared = Path(tempfile.mkdtemp(prefix="shared-uploads-"))
    broker = RedisServer(logs / "redis.log").start()
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "JOBS_BROKER_URL": broker.url, "SHARED_UPLOAD_DIR": str(shared),
           "UPLOAD_DIR": str(shared), "PYTHONUNBUFFERED": "1", **(env or {})}
    port = free_port()
    gateway: subprocess.Popen | None = None
    cluster = Cluster(broker, [], f"http://127.0.0.1:{port}", None, shared, env, logs)  # type: ignore[arg-type]
    try:
        for _ in range(workers):
            cluster.add_worker()
        with open(logs / "gateway.log", "a") as log:
            gateway = subprocess.Popen([sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port),
                                        "--workers", str(gateway_processes)], cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        cluster.gateway = gateway
        wait_healthy(cluster.api, gateway, start_timeout_s)  # 200 once Redis answers, before any worker
        cluster.wait_workers(workers, start_timeout_s)
        yield cluster
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            gateway.wait(timeout=60)
        for worker in cluster.workers:
            worker.stop()
        broker.stop()
        shutil.rmtree(shared, ignore_errors=True)  # finished jobs' videos, kept for their reels

