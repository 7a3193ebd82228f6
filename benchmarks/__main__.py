"""`make bench`: this service against the naive baseline (`benchmarks.naive`), measured in one run.

    .venv/bin/python -m benchmarks [--long-seconds 300] [--repeats 2] [--out bench]

Writes `report.json` and `report.md` under --out: decode and preprocessing frames/s, I3D clips/s per
precision, warm API latency on three real clips (and the first request after start-up), peak RSS of
the API on a long 640x360 video, throughput at 1, 4 and 8 concurrent requests, the same figures for the
baseline, and ratios against it.
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

from benchmarks.api_process import ROOT, peak_rss_bytes, reset_peak_rss, rss_bytes, running_api

DATA = ROOT / "tests" / "data"
CLIPS = {  # three real clips (CLIPS.md labels): short, medium, 10 s
    "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4": "playing cricket",
    "archery__paddlevideo_example.avi": "archery",
    "basketball__mmaction2_shooting_drill.mp4": "shooting basketball",
}
LONG_SOURCE = DATA / "basketball__mmaction2_shooting_drill.mp4"
CONCURRENCY = (1, 4, 8)
MB = 2**20


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    import tensorflow as tf

    from models.precision import BF16_CPU_FLAGS, cpu_flags

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    gpus = [tf.config.experimental.get_device_details(g).get("device_name", "GPU")
            for g in tf.config.list_physical_devices("GPU")]
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1),
            "bf16_flags": sorted(BF16_CPU_FLAGS & cpu_flags()), "gpus": gpus,
            "python": platform.python_version(), "tensorflow": tf.__version__}


def make_long_video(path: Path, seconds: int) -> Path:
    """A `seconds`-long 640x360 25 fps H.264 video: a real basketball clip looped."""
    import imageio_ffmpeg

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1",
                    "-i", str(LONG_SOURCE), "-t", str(seconds), "-vf", "scale=640:360,fps=25", "-an",
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
    """The baseline in its own process: decode the whole video, run one clip; its peak RSS and decode rate."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.naive", str(video), "--clips", "1"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:  # e.g. killed for memory: that is the finding
        return {"failed": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:] or ''}"}
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["fps"] = round(report["frames"] / report["decode_s"], 1)
    return report


def i3d_throughput(handle: str, clip: np.ndarray) -> list[dict]:
    """Clips/s of I3D alone for each precision this machine can run, at batch 1 and the device's batch."""
    from models.extractor import I3DExtractor, configure_devices, default_batch_size
    from models.precision import BF16_CPU_FLAGS, cpu_flags, variant_dir

    device = configure_devices()
    precisions = ["float32", "bfloat16"] + (["float16"] if device.gpu_capability else [])
    rows = []
    for precision in precisions:
        if not (variant_dir(Path(handle), precision) / "saved_model.pb").is_file():
            continue
        native = precision == "float32" or device.gpu_capability is not None or bool(BF16_CPU_FLAGS & cpu_flags())
        extractor = I3DExtractor(handle, precision=precision)
        for batch in sorted({1, default_batch_size(extractor.device)}):
            batch_clips = np.repeat(clip[None], batch, axis=0)
            extractor(batch_clips if native else batch_clips[:, :16])  # warm-up (emulated: a short one)
            passes = (5 if batch == 1 else 3) if native else 1
            started = time.perf_counter()
            for _ in range(passes):
                extractor(batch_clips)
            seconds = time.perf_counter() - started
            rows.append({"precision": precision, "native": native, "batch": batch, "xla": extractor.xla,
                         "clips_per_s": round(passes * batch / seconds, 3),
                         "s_per_clip": round(seconds / (passes * batch), 3)})
            log(f"I3D {precision} batch {batch}: {rows[-1]['s_per_clip']} s/clip")
        extractor.close()
    return rows


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


def api_figures(long_video: Path, repeats: int) -> dict:
    env = {"PROCESSING_TIMEOUT_S": "7200", "MAX_CONCURRENT_REQUESTS": str(max(CONCURRENCY)),
           "MAX_UPLOAD_MB": "1024"}
    with running_api(env) as api, httpx.Client(base_url=api.url, timeout=7200) as client:
        model = client.get("/model").json()
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
                    "idle_rss_mb": round(idle_rss / MB)}
        log(f"API long video: {long_run}")
        concurrency = []
        requests = max(CONCURRENCY)
        for workers in CONCURRENCY:
            reset_peak_rss(api.pid)
            started = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                runs = list(pool.map(lambda _: _post(client, DATA / first_name), range(requests)))
            wall = time.perf_counter() - started
            clips = sum(len(r["clips"]) for _, r in runs)
            concurrency.append({"concurrent": workers, "requests": requests, "seconds": round(wall, 1),
                                "requests_per_s": round(requests / wall, 3), "clips_per_s": round(clips / wall, 3),
                                "median_latency_s": round(statistics.median(s for s, _ in runs), 1),
                                "peak_rss_mb": round(peak_rss_bytes(api.pid) / MB)})
            log(f"API {workers} concurrent: {concurrency[-1]}")
        leftover = len(os.listdir(api.upload_dir))
    return {"model": model, "first_request_s": round(first_s, 2), "first_clip": first_name, "latency": latency,
            "long_video": long_run, "concurrency": concurrency, "leftover_uploads": leftover}


def ratios(report: dict) -> dict:
    api, naive = report["api"], report["baseline"]
    ours_total = sum(api["latency"][name]["median_s"] for name in CLIPS)
    naive_total = sum(naive["clips"][name]["seconds"] for name in CLIPS)
    first = api["latency"][api["first_clip"]]["median_s"]
    ours_clips = sum(api["latency"][name]["clips"] for name in CLIPS)
    naive_clips_run = sum(naive["clips"][name]["clips"] for name in CLIPS)
    out = {
        "end_to_end_speedup": round(naive_total / ours_total, 2),
        # The baseline drops each video's tail frames (fewer clips); per clip, the work is the same.
        "end_to_end_per_clip_speedup": round((naive_total / naive_clips_run) / (ours_total / ours_clips), 2),
        "first_request_vs_warm": round(api["first_request_s"] / first, 2),
        "throughput_8_vs_1": round(api["concurrency"][-1]["clips_per_s"] / api["concurrency"][0]["clips_per_s"], 2),
    }
    long = naive["long_video"]
    if "fps" in long:
        out["decode_speedup"] = round(report["decode"]["fps"] / long["fps"], 2)
        out["peak_rss_reduction"] = round(long["peak_rss_bytes"] / MB / api["long_video"]["peak_rss_mb"], 1)
    return out


def markdown(report: dict) -> str:
    m, api, naive, r = report["machine"], report["api"], report["baseline"], report["ratios"]
    long, nlong = api["long_video"], naive["long_video"]
    lines = [
        f"# Benchmark ({report['date']})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, GPU: {', '.join(m['gpus']) or 'none'}, "
        f"bfloat16 CPU flags: {', '.join(m['bf16_flags']) or 'none'}; TensorFlow {m['tensorflow']}. "
        f"The API ran {api['model']['precision']} on {api['model']['device']}, batch {api['model']['batch_size']}.", "",
        "| figure | this service | naive baseline | ratio |", "|---|---|---|---|",
    ]
    for name in CLIPS:
        ours, base = api["latency"][name], naive["clips"][name]
        lines.append(f"| warm end-to-end, {name} | {ours['median_s']} s ({ours['clips']} clips) "
                     f"| {base['seconds']} s ({base['clips']} clips) | {base['seconds'] / ours['median_s']:.2f}x |")
    lines.append(f"| end-to-end, three clips together | | | **{r['end_to_end_speedup']}x** |")
    lines.append(f"| end-to-end per clip (the baseline skips tail frames) | | | **{r['end_to_end_per_clip_speedup']}x** |")
    if "fps" in nlong:
        lines.append(f"| decode + preprocess, {report['long_seconds']} s 640x360 video | {report['decode']['fps']} frames/s "
                     f"| {nlong['fps']} frames/s | {r['decode_speedup']}x |")
        lines.append(f"| peak RSS on that video | {long['peak_rss_mb']} MB (API, whole recognition) "
                     f"| {round(nlong['peak_rss_bytes'] / MB)} MB (decode + 1 clip) | **{r['peak_rss_reduction']}x less** |")
    else:
        lines.append(f"| peak RSS on the long video | {long['peak_rss_mb']} MB | {nlong['failed']} | |")
    lines += ["", f"First request after start-up: {api['first_request_s']} s; the same clip warm: "
              f"{api['latency'][api['first_clip']]['median_s']} s (ratio {r['first_request_vs_warm']}).",
              f"Long video: {long['frames']} frames, {long['clips']} clips in {long['seconds']} s through the API "
              f"(RSS idle {long['idle_rss_mb']} MB, peak {long['peak_rss_mb']} MB).", "",
              "| I3D precision | batch | native | clips/s | s/clip |", "|---|---|---|---|---|"]
    for row in report["i3d"]:
        lines.append(f"| {row['precision']}{' + XLA' if row['xla'] else ''} | {row['batch']} | "
                     f"{'yes' if row['native'] else 'emulated'} | {row['clips_per_s']} | {row['s_per_clip']} |")
    lines += ["", f"| concurrent requests ({api['first_clip']}) | requests/s | clips/s | median latency | peak RSS |",
              "|---|---|---|---|---|"]
    for row in api["concurrency"]:
        lines.append(f"| {row['concurrent']} | {row['requests_per_s']} | {row['clips_per_s']} | "
                     f"{row['median_latency_s']} s | {row['peak_rss_mb']} MB |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-seconds", type=int, default=300, help="length of the generated 640x360 video")
    parser.add_argument("--repeats", type=int, default=3, help="warm requests per clip")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    from models.convert import DEFAULT_SAVED_MODEL
    from models.video import read_frames

    handle = os.environ.get("MODEL_HANDLE", str(DEFAULT_SAVED_MODEL))
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "long_seconds": args.long_seconds, "machine": machine()}
    log(f"machine: {report['machine']}")
    long_video = make_long_video(args.out / f"long-640x360-{args.long_seconds}s.mp4", args.long_seconds)
    report["decode"] = decode_ours(long_video)
    log(f"decode (ours): {report['decode']}")
    report["baseline"] = {"long_video": naive_long_video(long_video)}
    log(f"baseline long video: {report['baseline']['long_video']}")
    report["i3d"] = i3d_throughput(handle, read_frames(LONG_SOURCE, max_frames=64))
    report["baseline"]["clips"] = naive_clips(handle)
    report["api"] = api_figures(long_video, args.repeats)
    report["ratios"] = ratios(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
