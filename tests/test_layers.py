"""The layers are a contract (.importlinter, drawn in docs/architecture.md): `lint-imports` holds it, a
forbidden import breaks it with the contract's name, and a queue worker loads no web framework."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = ("frontend", "api", "workers", "service", "models", "common")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.fixture(scope="module")
def copy_of_the_code(tmp_path_factory) -> Path:
    """The project's Python packages and contracts, in a folder of their own (no data, no weights)."""
    root = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", "saved",
                                                                                      "templates", "data"))
    shutil.copy(ROOT / ".importlinter", root)
    return root


@pytest.mark.parametrize("module, line, contract, why", [
    ("service/jobs.py", "import fastapi", "import no web framework", "service is not allowed to import fastapi"),
    ("workers/task.py", "from api.uploads.streaming import save_video", "Layers:", "workers is not allowed to import api"),
    ("models/i3d/network.py", "from models.recognition.batching import ClipBatcher", "models: the CLI above",
     "models.i3d is not allowed to import models.recognition"),
    ("frontend/views.py", "import models.labels", "over HTTP only", "frontend is not allowed to import models"),
    ("api/admission.py", "from api.main import app", "No two siblings", "No cycles are allowed in api"),
    ("api/routes/meta.py", "import models.video", "through the service layer", "api is not allowed to import models"),
    ("workers/task.py", "import models.video", "through the service layer", "workers is not allowed to import models"),
])
def test_a_forbidden_import_breaks_its_contract(copy_of_the_code, module, line, contract, why):
    path = copy_of_the_code / module
    original = path.read_text()
    path.write_text(f"{original}\n{line}  # added by the test\n")
    try:
        done = lint_imports(copy_of_the_code)
    finally:
        path.write_text(original)
    assert done.returncode != 0, done.stdout[-2000:]
    broken = done.stdout.split("Broken contracts")[-1]
    assert contract in broken and why in broken, done.stdout[-3000:]


def test_a_queue_worker_loads_no_web_framework():
    code = ("import sys, workers.worker, workers.health\n"
            "print(sorted(m for m in ('fastapi', 'starlette', 'flask', 'uvicorn', 'api') if m in sys.modules))")
    env = {**os.environ, "JOBS_BROKER_URL": "redis://127.0.0.1:1/0"}  # the Celery app connects to nothing until used
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "[]", done.stdout
