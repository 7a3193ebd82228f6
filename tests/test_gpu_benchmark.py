"""`make bench-gpu` (benchmarks/gpu.py) where there is no GPU: it refuses to measure, and its TensorFlow path
(the service's runtime) runs on the CPU when asked, end to end on a real clip: throughput, the accuracy rule
against the float32 reference, and requests through the recognizer."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu
from models.hardware import cuda_gpu_present

pytestmark = pytest.mark.skipif(cuda_gpu_present(), reason="a GPU is here: `make bench-gpu` measures it")


def test_without_a_gpu_it_measures_nothing(tmp_path, capsys):
    assert gpu.main(["--framework", "tensorflow", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_its_tensorflow_path_runs_end_to_end_on_the_cpu(tmp_path, saved_model_dir):
    code = gpu.main(["--framework", "tensorflow", "--allow-cpu", "--handle", str(saved_model_dir),
                     "--precisions", "float32", "--batches", "1", "--videos", "1", "--requests", "2",
                     "--requests-precision", "float32", "--concurrency", "2", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["machine"]["framework"] == "tensorflow" and report["machine"]["gpu"] is None
    [row] = report["throughput"]
    assert (row["precision"], row["batch"]) == ("float32", 1) and row["clips_per_s"] > 0
    accuracy = report["accuracy"]["float32"]  # float32 TensorFlow against itself, batch 8 against batch 1
    assert accuracy["passes"] and accuracy["videos"] == 1 and accuracy["max_logit_diff"] < 1e-2
    [run] = report["requests"]
    assert run["right_top1"] == 2 and run["concurrency"] == 2 and run["flat"] is None  # no GPU memory to read
    assert "| float32 | 1 |" in (tmp_path / "gpu.md").read_text()
