"""`make bench`: this service against the naive baseline (`benchmarks.naive`), measured in one run.

    .venv/bin/python -m benchmarks [--long-seconds 300] [--repeats 2] [--out bench]

Writes `report.json` and `report.md` under --out: decode and preprocessing frames/s, and on 1080p H.264 at 30
and 60 fps against the OpenCV path used before (`benchmarks.decoding`); I3D clips/s for
every runtime and precision this machine offers (and TensorFlow with oneDNN on and off); the accuracy
rule's figures for each OpenVINO precision against float32 TensorFlow on every window of tests/data;
the API with default settings and the API on TensorFlow float32: start-up time, idle RSS, warm latency on
three real clips (and the first request), the long video's time and peak RSS; throughput at 1, 4 and 8
concurrent requests; on a CPU where TensorFlow leaves oneDNN off (AVX2), the API on TensorFlow float32 on
Eigen as well; the naive baseline, on the three clips and the long video; ratios throughout. "Default
settings" are this environment's (RUNTIME, PRECISION, EXTRACTION...), else the service's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from benchmarks.clips import expected_top1
from benchmarks.api_process import ROOT, peak_rss_bytes, reset_peak_rss, rss_bytes, running_api

DATA = ROOT / "tests" / "data"
CLIPS = {name: expected_top1()[name] for name in (  # three real clips: short, medium, 10 s
    "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4", "archery__paddlevideo_example.avi",
    "basketball__mmaction2_shooting_drill.mp4")}
LONG_SOURCE = DATA / "basketball__mmaction2_shooting_drill.mp4"
LONG_FPS = 30  # 5 minutes: 9,000 frames, 280 windows
CONCURRENCY = (1, 4, 8)
TF_FLOAT32 = {"RUNTIME": "tensorflow", "PRECISION": "float32"}
# TensorFlow float32 as this service ran it before it turned oneDNN on where TensorFlow leaves it off (an
# AVX2-only CPU): Conv3D through Eigen. Measured end to end only on such a CPU (or one capped to it).
TF_FLOAT32_EIGEN = {**TF_FLOAT32, "TF_ENABLE_ONEDNN_OPTS": "0"}
SHARED = {"EXTRACTION": "shared"}
SHARED_VARIANTS = ("shared", "shared:recompute<0.5", "shared:recompute<0.8")
MB = 2**20


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    import openvino

    from models.hardware import BF16_CPU_FLAGS, cpu_flags, cpu_kind, isa_cap
    from models.tensorflow_env import import_tensorflow

    tf = import_tensorflow()

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    gpus = [tf.config.experimental.get_device_details(g).get("device_name", "GPU")
            for g in tf.config.list_physical_devices("GPU")]
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1),
            "cpu_kind": cpu_kind(), "isa_cap": isa_cap(), "cpu_kind_uncapped": cpu_kind(cpu_flags(cap="ALL")),
            "bf16_flags": sorted(BF16_CPU_FLAGS & cpu_flags()), "gpus": gpus,
            "python": platform.python_version(), "tensorflow": tf.__version__, "openvino": openvino.__version__}


def make_long_video(path: Path, seconds: int) -> Path:
    """A `seconds`-long 640x360 30 fps H.264 video: a real basketball clip looped."""
    import imageio_ffmpeg

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1",
                    "-i", str(LONG_SOURCE), "-t", str(seconds), "-vf", f"scale=640:360,fps={LONG_FPS}", "-an",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p", str(partial)],
                   check=True)
    return partial.rename(path)


def decode_ours(video: Path) -> dict:
    from models.video import VideoInfo, iter_clips

    info = VideoInfo(0, 0.0, 0, 0)
    started = time.perf_counter()
    clips = sum(1 for _ in iter_clips(video, info=info, limits=_no_limits()))
    seconds = time.perf_counter() - started
    return {"frames": info.frames, "clips": clips, "seconds": round(seconds, 2), "fps": round(info.frames / seconds, 1)}


def _no_limits():
    from models.video import VideoLimits

    return VideoLimits(max_frames=10**7, max_duration_s=10**6, max_pixels=10**8)


def naive_long_video(video: Path) -> dict:
    """The baseline in its own process, model loaded first: the whole video end to end, its peak RSS and
    decode rate."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.naive", str(video)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:  # e.g. killed for memory: that is the finding
        return {"failed": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:] or ''}"}
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["fps"] = round(report["frames"] / report["decode_s"], 1)
    report["seconds"] = round(report["total_s"], 1)
    return report


def default_extractor(handle: str):
    """I3D as the API opens it in this environment: its RUNTIME and PRECISION, else auto."""
    from models.runtimes.factory import open_extractor

    return open_extractor(handle, runtime=os.environ.get("RUNTIME", "auto"),
                          precision=os.environ.get("PRECISION", "auto"))


def _clips_per_s(extractor, clip: np.ndarray, batch: int, passes: int) -> dict:
    batch_clips = np.repeat(clip[None], batch, axis=0)
    extractor(batch_clips)  # warm-up
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        extractor(batch_clips)
        times.append(time.perf_counter() - started)
    s_per_clip = statistics.median(times) / batch
    return {"batch": batch, "clips_per_s": round(1 / s_per_clip, 3), "s_per_clip": round(s_per_clip, 3)}


def int8_candidates(handle: str) -> list[tuple[str, str]]:
    """`("int8", stem)` for each int8 IR made for `handle` (`make setup` makes the one this kind of CPU runs)."""
    from models.i3d.irs import ir_dir_for
    from models.hardware import int8_ir_name

    return [("int8", stem) for stem in ("plain", "space_to_depth")
            if (ir_dir_for(handle) / f"{int8_ir_name(stem)}.xml").is_file()]


def i3d_throughput(handle: str, clip: np.ndarray) -> list[dict]:
    """Clips/s of I3D alone (median of several passes) for each runtime and precision this machine offers."""
    from models.runtimes.factory import default_batch_size, open_extractor
    from models.runtimes.openvino import OpenVINOI3D
    from models.hardware import bfloat16_unavailable, has_bf16_units, variant_dir
    from models.runtimes.tensorflow import configure_devices

    device = configure_devices()
    bf16 = has_bf16_units()
    rows = []
    for precision in ["float32", "bfloat16"] + (["float16"] if device.gpu_capability else []):
        if not (variant_dir(Path(handle), precision) / "saved_model.pb").is_file():
            continue
        if precision == "bfloat16" and device.gpu_capability is None and not bf16:
            log(f"I3D tensorflow bfloat16: refused on this CPU ({bfloat16_unavailable()})")
            continue
        extractor = open_extractor(handle, runtime="tensorflow", precision=precision)
        for batch in sorted({1, default_batch_size(extractor.device)}):
            row = _clips_per_s(extractor, clip, batch, 5)
            rows.append({"runtime": "tensorflow", "precision": precision, "stem": "plain", "native": True,
                         "xla": extractor.xla, **row})
            log(f"I3D {rows[-1]}")
        extractor.close()
    if device.gpu_capability is None:
        candidates = [("float32", "plain")] + ([("bfloat16", "plain"), ("bfloat16", "space_to_depth")] if bf16 else [])
        for precision, stem in candidates + int8_candidates(handle):
            extractor = OpenVINOI3D(handle, precision=precision, stem=stem)
            rows.append({"runtime": "openvino", "precision": precision, "stem": stem, "native": True, "xla": False,
                         **_clips_per_s(extractor, clip, 1, 7)})
            log(f"I3D {rows[-1]}")
            extractor.close()
    return rows


def tensorflow_onednn(handle: str) -> dict:
    """TensorFlow float32 with oneDNN off (Eigen) and on, each in its own process (the switch is read at import)."""
    code = ("import json, statistics, time, numpy as np\n"
            "from models.runtimes.factory import open_extractor\n"
            f"e = open_extractor({handle!r}, runtime='tensorflow', precision='float32')\n"
            "clip = np.random.default_rng(0).integers(0, 255, (1, 64, 224, 224, 3), dtype=np.uint8)\n"
            "e(clip); t = []\n"
            "for _ in range(3):\n    s = time.perf_counter(); e(clip); t.append(time.perf_counter() - s)\n"
            "print(json.dumps(statistics.median(t)))\n")
    out = {}
    for name, value in (("eigen", "0"), ("onednn", "1")):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": value})
        out[f"{name}_s_per_clip"] = round(json.loads(done.stdout.strip().splitlines()[-1]), 3) if done.returncode == 0 else None
        log(f"TensorFlow float32, {name}: {out[f'{name}_s_per_clip']} s/clip")
    if out["eigen_s_per_clip"] and out["onednn_s_per_clip"]:
        out["onednn_speedup"] = round(out["eigen_s_per_clip"] / out["onednn_s_per_clip"], 2)
    return out


def accuracy_table(handle: str, derived_dir: Path) -> list[dict]:
    """The accuracy rule's figures on tests/data and on the same clips mirrored and shifted
    (`write_derived_clips`, the clips beyond tests/data that this machine has): for each OpenVINO precision
    this machine offers, and for windows pooled from a shared trunk (`EXTRACTION=shared`, with and without
    re-running unsure windows)."""
    from models.evaluation.logits import reference_logits, window_logits, write_derived_clips
    from models.i3d.accuracy import compare
    from models.i3d.quantize import video_paths
    from models.runtimes.openvino import OpenVINOI3D
    from models.hardware import choose_stem, has_bf16_units

    sets = {"tests/data": video_paths(DATA)}
    sets["derived"] = write_derived_clips(sets["tests/data"], derived_dir)
    caches = {"tests/data": "tensorflow-float32-windows.npz", "derived": "tensorflow-float32-derived.npz"}
    references = {name: reference_logits(handle, paths, cache=Path(handle) / "reference" / caches[name])
                  for name, paths in sets.items()}
    bf16 = [("bfloat16", choose_stem("openvino", "bfloat16"))] if has_bf16_units() else []  # the stem it runs here
    candidates = [("float32", "plain")] + bf16 + int8_candidates(handle)
    rows = []

    def measure(extractor, clip_set: str, extraction: str = "windows") -> None:
        summary = compare(references[clip_set], window_logits(extractor, sets[clip_set], extraction=extraction)).summary()
        rows.append({"runtime": extractor.runtime, "precision": extractor.precision, "stem": extractor.stem,
                     "extraction": extraction, "clips": clip_set, **{k: v for k, v in summary.items() if k != "per_video"}})
        log(f"accuracy {rows[-1]}")

    for precision, stem in candidates:
        extractor = OpenVINOI3D(handle, precision=precision, stem=stem)
        for clip_set in sets:
            measure(extractor, clip_set)
        extractor.close()
    extractor = default_extractor(handle)
    for extraction in SHARED_VARIANTS:
        for clip_set in sets:
            measure(extractor, clip_set, extraction)
    extractor.close()
    return rows


def shared_trunk_throughput(handle: str, frames: np.ndarray) -> dict:
    """Windows/s of I3D alone with `EXTRACTION=shared` (default runtime and precision): one chunk of the long
    video, 384 frames kept and 64 of context each side (512 frames through the trunk), gives 12 windows."""
    extractor = default_extractor(handle)
    chunk = frames[None, :512]
    extractor.trunk_positions(chunk)  # warm-up (compiles the trunk)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        extractor.trunk_positions(chunk)
        times.append(time.perf_counter() - started)
    extractor.close()
    seconds = statistics.median(times)
    row = {"runtime": extractor.runtime, "precision": extractor.precision, "stem": extractor.stem,
           "s_per_chunk": round(seconds, 3), "windows_per_s": round(384 / 32 / seconds, 2)}
    log(f"I3D shared trunk {row}")
    return row


def naive_clips(handle: str) -> dict:
    """The baseline end to end on the three clips, model loaded once and warmed up first."""
    import tensorflow as tf

    from benchmarks import naive
    from models.labels import kinetics_labels

    signature = tf.saved_model.load(handle).signatures["serving_default"]
    signature(clips=np.zeros((1, 64, 224, 224, 3), np.float32))
    results = {}
    for name in CLIPS:
        run = naive.recognize(signature, DATA / name)
        results[name] = {"seconds": round(run["total_s"], 2), "decode_s": round(run["decode_s"], 2),
                         "clips": run["clips"], "top1": kinetics_labels()[int(run["probs"].argmax())]}
        log(f"baseline {name}: {results[name]['seconds']} s")
    return results


def _post(client: httpx.Client, path: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post("/recognize_action", files={"video": (path.name, path.read_bytes())})
    response.raise_for_status()
    return time.perf_counter() - started, response.json()


def api_figures(long_video: Path, repeats: int, *, env: dict | None = None, concurrency: bool = True) -> dict:
    env = {"PROCESSING_TIMEOUT_S": "7200", "MAX_CONCURRENT_REQUESTS": str(max(CONCURRENCY)),
           "MAX_UPLOAD_MB": "1024", **(env or {})}
    with running_api(env) as api, httpx.Client(base_url=api.url, timeout=7200) as client:
        model = client.get("/model").json()
        startup = {"startup_s": round(api.startup_s, 1), "idle_rss_mb": round(rss_bytes(api.pid) / MB)}
        log(f"API {model['runtime']} {model['precision']}: {startup}")
        first_name = next(iter(CLIPS))
        first_s, _ = _post(client, DATA / first_name)
        log(f"API first request: {first_s:.2f} s")
        latency = {}
        for name in CLIPS:
            runs = [_post(client, DATA / name) for _ in range(repeats)]
            latency[name] = {"seconds": [round(s, 2) for s, _ in runs], "median_s": round(statistics.median(s for s, _ in runs), 2),
                             "clips": len(runs[0][1]["clips"]), "top1": runs[0][1]["actions"][0]["label"]}
            log(f"API {name}: {latency[name]['seconds']} s")
        idle_rss = rss_bytes(api.pid)
        reset_peak_rss(api.pid)
        long_s, long_result = _post(client, long_video)
        long_run = {"seconds": round(long_s, 1), "clips": len(long_result["clips"]),
                    "frames": long_result["video"]["frames"], "peak_rss_mb": round(peak_rss_bytes(api.pid) / MB),
                    "idle_rss_mb": round(idle_rss / MB), "windows_per_s": round(len(long_result["clips"]) / long_s, 2)}
        log(f"API long video: {long_run}")
        levels = []
        for workers in CONCURRENCY if concurrency else ():
            requests = max(CONCURRENCY)
            reset_peak_rss(api.pid)
            started = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                runs = list(pool.map(lambda _: _post(client, DATA / first_name), range(requests)))
            wall = time.perf_counter() - started
            clips = sum(len(r["clips"]) for _, r in runs)
            levels.append({"concurrent": workers, "requests": requests, "seconds": round(wall, 1),
                           "requests_per_s": round(requests / wall, 3), "clips_per_s": round(clips / wall, 3),
                           "median_latency_s": round(statistics.median(s for s, _ in runs), 1),
                           "peak_rss_mb": round(peak_rss_bytes(api.pid) / MB)})
            log(f"API {workers} concurrent: {levels[-1]}")
        leftover = len(os.listdir(api.upload_dir))
    return {"model": model, **startup, "first_request_s": round(first_s, 2), "first_clip": first_name,
            "latency": latency, "long_video": long_run, "concurrency": levels, "leftover_uploads": leftover}


def _total(latency: dict) -> tuple[float, int]:
    return sum(latency[name]["median_s"] for name in CLIPS), sum(latency[name]["clips"] for name in CLIPS)


def ratios(report: dict) -> dict:
    api, tf32, naive = report["api"], report["api_tensorflow_float32"], report["baseline"]
    ours_total, ours_clips = _total(api["latency"])
    tf_total, _ = _total(tf32["latency"])
    naive_total = sum(naive["clips"][name]["seconds"] for name in CLIPS)
    naive_clips_run = sum(naive["clips"][name]["clips"] for name in CLIPS)
    first = api["latency"][api["first_clip"]]["median_s"]
    default = next(r for r in report["i3d"] if r["runtime"] == api["model"]["runtime"]
                   and r["precision"] == api["model"]["precision"] and r["stem"] == api["model"]["stem"])
    tf_i3d = next(r for r in report["i3d"] if r["runtime"] == "tensorflow" and r["precision"] == "float32" and r["batch"] == 1)
    out = {
        "i3d_default_vs_tensorflow_float32": round(default["clips_per_s"] / tf_i3d["clips_per_s"], 2),
        "end_to_end_vs_tensorflow_float32": round(tf_total / ours_total, 2),
        "long_video_vs_tensorflow_float32": round(tf32["long_video"]["seconds"] / api["long_video"]["seconds"], 2),
        "end_to_end_vs_baseline": round(naive_total / ours_total, 2),
        # The baseline drops each video's tail frames (fewer clips); per clip, the work is the same.
        "end_to_end_per_clip_vs_baseline": round((naive_total / naive_clips_run) / (ours_total / ours_clips), 2),
        "first_request_vs_warm": round(api["first_request_s"] / first, 2),
        "startup_vs_tensorflow_float32": round(api["startup_s"] / tf32["startup_s"], 2),
        "idle_rss_vs_tensorflow_float32": round(api["idle_rss_mb"] / tf32["idle_rss_mb"], 2),
        "throughput_8_vs_1": round(api["concurrency"][-1]["clips_per_s"] / api["concurrency"][0]["clips_per_s"], 2),
        "shared_i3d_vs_windows": round(report["i3d_shared"]["windows_per_s"] / default["clips_per_s"], 2),
        "shared_long_video_vs_windows": round(api["long_video"]["seconds"] / report["api_shared"]["long_video"]["seconds"], 2),
    }
    long = naive["long_video"]
    if "api_tensorflow_eigen" in report:
        eigen = report["api_tensorflow_eigen"]
        out["end_to_end_vs_tensorflow_eigen"] = round(_total(eigen["latency"])[0] / ours_total, 2)
        out["long_video_vs_tensorflow_eigen"] = round(eigen["long_video"]["seconds"] / api["long_video"]["seconds"], 2)
    if "fps" in long:
        out["long_video_vs_baseline"] = round(long["seconds"] / api["long_video"]["seconds"], 2)
        out["decode_speedup"] = round(report["decode"]["fps"] / long["fps"], 2)
        out["peak_rss_reduction"] = round(long["peak_rss_bytes"] / MB / api["long_video"]["peak_rss_mb"], 1)
    return out


def markdown(report: dict) -> str:
    from benchmarks.decoding import markdown as decoding_table

    m, api, tf32, naive, r = (report["machine"], report["api"], report["api_tensorflow_float32"], report["baseline"],
                              report["ratios"])
    long, nlong = api["long_video"], naive["long_video"]
    am = api["model"]
    kind = m["cpu_kind"] if not m.get("isa_cap") else (
        f"{m['cpu_kind_uncapped']}, its oneDNN kernels capped to {m['isa_cap']} by ONEDNN_MAX_CPU_ISA: runs as {m['cpu_kind']}")
    lines = [
        f"# Benchmark ({report['date']})", "",
        f"Machine: {m['cpu']} ({kind}), {m['cores']} cores, {m['memory_gb']} GB RAM, "
        f"GPU: {', '.join(m['gpus']) or 'none'}; TensorFlow {m['tensorflow']}, OpenVINO {m['openvino']}. "
        f"Default settings ran {am['runtime']} {am['precision']} ({am['stem']} stem) on {am['device']}, batch {am['batch_size']}.", "",
        "| figure | default settings | TensorFlow float32 | naive baseline | default vs TF float32 |", "|---|---|---|---|---|",
    ]
    for name in CLIPS:
        ours, tf_, base = api["latency"][name], tf32["latency"][name], naive["clips"][name]
        lines.append(f"| warm end-to-end, {name} | {ours['median_s']} s ({ours['clips']} clips) | {tf_['median_s']} s "
                     f"| {base['seconds']} s ({base['clips']} clips) | {tf_['median_s'] / ours['median_s']:.2f}x |")
    lines.append(f"| three clips together | | | {r['end_to_end_vs_baseline']}x vs baseline | "
                 f"**{r['end_to_end_vs_tensorflow_float32']}x** |")
    lines.append(f"| {report['long_seconds']} s {LONG_FPS} fps video ({long['clips']} windows) | {long['seconds']} s "
                 f"({long['windows_per_s']} windows/s) | {tf32['long_video']['seconds']} s | "
                 + (f"{nlong['seconds']} s ({nlong['clips_run']} windows; {r['long_video_vs_baseline']}x vs baseline)"
                    if "fps" in nlong else nlong["failed"])
                 + f" | **{r['long_video_vs_tensorflow_float32']}x** |")
    shared = report["api_shared"]["long_video"]
    lines.append(f"| that video, EXTRACTION=shared | {shared['seconds']} s ({shared['windows_per_s']} windows/s, "
                 f"peak RSS {shared['peak_rss_mb']} MB) | | | {tf32['long_video']['seconds'] / shared['seconds']:.2f}x "
                 f"({r['shared_long_video_vs_windows']}x default) |")
    lines.append(f"| peak RSS on that video | {long['peak_rss_mb']} MB | {tf32['long_video']['peak_rss_mb']} MB | "
                 + (f"{round(nlong['peak_rss_bytes'] / MB)} MB | |" if "fps" in nlong else f"{nlong['failed']} | |"))
    lines.append(f"| API start-up (load, warm-up) | {api['startup_s']} s | {tf32['startup_s']} s | | "
                 f"{r['startup_vs_tensorflow_float32']}x the time |")
    lines.append(f"| API idle RSS | {api['idle_rss_mb']} MB | {tf32['idle_rss_mb']} MB | | "
                 f"{r['idle_rss_vs_tensorflow_float32']}x the memory |")
    if "fps" in nlong:
        lines.append(f"| decode + preprocess, long video | {report['decode']['fps']} frames/s | | {nlong['fps']} frames/s "
                     f"| {r['decode_speedup']}x vs baseline |")
    lines += ["", "Decoding 1080p H.264, source frames a second, before and now:", "", *decoding_table(report["decode_hd"])]
    lines += ["", f"First request after start-up: {api['first_request_s']} s; the same clip warm: "
              f"{api['latency'][api['first_clip']]['median_s']} s (ratio {r['first_request_vs_warm']}).", "",
              "| I3D alone: runtime | precision | stem | batch | native | clips/s | s/clip | vs TF float32 |",
              "|---|---|---|---|---|---|---|---|"]
    tf_rate = next(row["clips_per_s"] for row in report["i3d"] if row["runtime"] == "tensorflow"
                   and row["precision"] == "float32" and row["batch"] == 1)
    for row in report["i3d"]:
        lines.append(f"| {row['runtime']}{' + XLA' if row['xla'] else ''} | {row['precision']} | {row['stem']} | "
                     f"{row['batch']} | {'yes' if row['native'] else 'emulated'} | {row['clips_per_s']} | "
                     f"{row['s_per_clip']} | {row['clips_per_s'] / tf_rate:.2f}x |")
    trunk = report["i3d_shared"]
    lines += ["", f"I3D alone with EXTRACTION=shared ({trunk['runtime']} {trunk['precision']}, {trunk['stem']} stem): "
              f"{trunk['s_per_chunk']} s for a 512-frame chunk that serves 12 windows, {trunk['windows_per_s']} windows/s "
              f"({r['shared_i3d_vs_windows']}x the same precision window by window)."]
    if "api_tensorflow_eigen" in report:
        lines += ["", *eigen_table(report)]
    onednn = report["tensorflow_onednn"]
    lines += ["", f"TensorFlow float32, one clip: Eigen {onednn['eigen_s_per_clip']} s, oneDNN {onednn['onednn_s_per_clip']} s"
              + (f" ({onednn['onednn_speedup']}x)." if "onednn_speedup" in onednn else "."), "",
              "| accuracy rule vs TF float32 | clips | whole-video top-1 same | min top-5 overlap | "
              "windows top-1 same | max logit diff | passes |", "|---|---|---|---|---|---|---|"]
    for row in report["accuracy"]:
        lines.append(f"| {row['runtime']} {row['precision']} ({row['stem']}), {row['extraction']} | {row['clips']} | "
                     f"{row['same_top1']}/{row['videos']} | "
                     f"{row['min_top5_overlap']} | {row['window_top1_agreement']:.1%} | {row['max_logit_diff']} | "
                     f"{'yes' if row['passes'] else 'no: ' + '; '.join(row['failures'])} |")
    lines += ["", f"| concurrent requests ({api['first_clip']}) | requests/s | clips/s | median latency | peak RSS |",
              "|---|---|---|---|---|"]
    for row in api["concurrency"]:
        lines.append(f"| {row['concurrent']} | {row['requests_per_s']} | {row['clips_per_s']} | "
                     f"{row['median_latency_s']} s | {row['peak_rss_mb']} MB |")
    return "\n".join(lines) + "\n"


def eigen_table(report: dict) -> list[str]:
    """Default settings against TensorFlow float32 on Eigen, end to end (see TF_FLOAT32_EIGEN)."""
    api, eigen, r = report["api"], report["api_tensorflow_eigen"], report["ratios"]
    lines = ["| end to end vs TensorFlow float32 on Eigen (oneDNN off) | default settings | TF float32, Eigen | ratio |",
             "|---|---|---|---|"]
    for name in CLIPS:
        ours, base = api["latency"][name]["median_s"], eigen["latency"][name]["median_s"]
        lines.append(f"| warm, {name} | {ours} s | {base} s | {base / ours:.2f}x |")
    lines.append(f"| three clips together | | | **{r['end_to_end_vs_tensorflow_eigen']}x** |")
    lines.append(f"| {report['long_seconds']} s {LONG_FPS} fps video | {api['long_video']['seconds']} s | "
                 f"{eigen['long_video']['seconds']} s (peak RSS {eigen['long_video']['peak_rss_mb']} MB) | "
                 f"**{r['long_video_vs_tensorflow_eigen']}x** |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from benchmarks.decoding import decode_figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-seconds", type=int, default=300, help="length of the generated 640x360 video")
    parser.add_argument("--repeats", type=int, default=3, help="warm requests per clip")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    from models.paths import DEFAULT_SAVED_MODEL
    from models.tensorflow_env import onednn_off_by_default
    from models.video import read_frames

    handle = os.environ.get("MODEL_HANDLE", str(DEFAULT_SAVED_MODEL))
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "long_seconds": args.long_seconds, "machine": machine()}
    log(f"machine: {report['machine']}")
    long_video = make_long_video(args.out / f"long-640x360-{args.long_seconds}s-{LONG_FPS}fps.mp4", args.long_seconds)
    report["decode"] = decode_ours(long_video)
    log(f"decode (ours): {report['decode']}")
    report["decode_hd"] = decode_figures(args.out)
    log(f"decode 1080p: {report['decode_hd']}")
    report["baseline"] = {"long_video": naive_long_video(long_video)}
    log(f"baseline long video: {report['baseline']['long_video']}")
    report["i3d"] = i3d_throughput(handle, read_frames(LONG_SOURCE, max_frames=64))
    report["i3d_shared"] = shared_trunk_throughput(handle, read_frames(long_video, max_frames=512))
    report["tensorflow_onednn"] = tensorflow_onednn(handle)
    report["accuracy"] = accuracy_table(handle, args.out / "derived-clips")
    report["baseline"]["clips"] = naive_clips(handle)
    report["api"] = api_figures(long_video, args.repeats)
    report["api_tensorflow_float32"] = api_figures(long_video, args.repeats, env=TF_FLOAT32, concurrency=False)
    report["api_shared"] = api_figures(long_video, args.repeats, env=SHARED, concurrency=False)
    if onednn_off_by_default():
        report["api_tensorflow_eigen"] = api_figures(long_video, args.repeats, env=TF_FLOAT32_EIGEN, concurrency=False)
    report["ratios"] = ratios(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
