"""One API process per upload folder (api/sole_process.py): a second process, however it is started, is
refused at start-up with the reason and the way out, before it loads a model or touches an upload."""

from __future__ import annotations

import pytest
import os
import subprocess
import sys

from conftest import ROOT, _free_port

pytestmark = [pytest.mark.slow]

THE_WAY_OUT = "run one process per model: API_WORKERS=1, no `uvicorn --workers`"


def _run(argv: list[str], upload_dir, timeout_s: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "UPLOAD_DIR": str(upload_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


def test_a_second_api_process_on_the_same_uploads_is_refused(live_services):
    done = _run([sys.executable, "-m", "api", "--port", str(_free_port())], live_services["temp_uploads"], 120)
    assert done.returncode != 0
    assert "another API process already serves UPLOAD_DIR" in done.stdout + done.stderr
    assert THE_WAY_OUT in done.stdout + done.stderr


def test_uvicorn_with_two_workers_is_refused(tmp_path):
    uvicorn = os.path.join(os.path.dirname(sys.executable), "uvicorn")
    done = _run([uvicorn, "api.main:app", "--port", str(_free_port()), "--workers", "2"], tmp_path / "uploads")
    assert THE_WAY_OUT in done.stdout + done.stderr  # and the parent stopped, or run() would have timed out
    assert list((tmp_path / "uploads").iterdir()) == []



def test_python_m_api_with_two_workers_and_no_broker_is_refused(tmp_path):
    done = _run([sys.executable, "-m", "api", "--port", str(_free_port()), "--workers", "2"], tmp_path / "uploads", 60)
    assert done.returncode == 2 and "JOBS_BROKER_URL" in done.stderr and "one process per model" in done.stderr
