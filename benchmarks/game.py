"""`make bench-game`: a whole game, end to end, against the service's path before whole games (commit 6c3fcdd:
OpenCV decoding every frame at the source rate), in one run.

    .venv/bin/python -m benchmarks.game [--minutes 30] [--out bench/game]

The game is made once from the real clips in tests/data (each scaled to 1920x1080 at 30 fps, joined, looped
to length; H.264) and kept under --out, outside git, with a 5-minute cut and a 5-minute 60 fps version.
Each recognition is `python -m models predict --json` in a process of its own (model loading included, as
a job's worker has it loaded: its load time is reported apart), measured for wall time and peak RSS (the
process's own, from wait4). The baseline runs from a git worktree of 6c3fcdd beside this checkout, sharing
its virtualenv and converted model. Writes game.json and game.md under --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.decoding import decode_figures, markdown as decoding_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
BASELINE_COMMIT = "6c3fcdd"  # the last commit that decoded with OpenCV at the source rate


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def make_game(out: Path, minutes: float) -> dict[str, Path]:
    """The game, its 5-minute cut and a 5-minute 60 fps version, made once (a reel of every clip, looped)."""
    out.mkdir(parents=True, exist_ok=True)
    reel = out / "reel-1080p30.mp4"
    if not reel.is_file():
        clips = sorted(p for p in DATA.iterdir() if p.suffix in (".mp4", ".avi", ".mkv"))
        inputs = [arg for clip in clips for arg in ("-i", str(clip))]
        scaled = "".join(f"[{i}:v]scale=1920:1080,setsar=1,fps=30,format=yuv420p[v{i}];" for i in range(len(clips)))
        joined = "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[out]"
        _ffmpeg(*inputs, "-filter_complex", scaled + joined, "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "23", "-g", "60", str(reel.with_suffix(".part.mp4")))
        reel.with_suffix(".part.mp4").rename(reel)
    videos = {"game": out / f"game-1080p30-{minutes:g}min.mp4", "cut": out / "game-1080p30-5min.mp4",
              "cut60": out / "game-1080p60-5min.mp4"}
    for name, seconds in (("game", minutes * 60), ("cut", 300)):
        if not videos[name].is_file():  # looping the reel's packets: no second encoding
            _ffmpeg("-stream_loop", "-1", "-i", str(reel), "-t", str(seconds), "-c", "copy",
                    str(videos[name].with_suffix(".part.mp4")))
            videos[name].with_suffix(".part.mp4").rename(videos[name])
    if not videos["cut60"].is_file():
        _ffmpeg("-i", str(videos["cut"]), "-vf", "fps=60", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                "-g", "120", str(videos["cut60"].with_suffix(".part.mp4")))
        videos["cut60"].with_suffix(".part.mp4").rename(videos["cut60"])
    return videos


def baseline_checkout(out: Path) -> Path:
    """A worktree of BASELINE_COMMIT sharing this checkout's .venv and converted model."""
    tree = out / f"baseline-{BASELINE_COMMIT}"
    if not (tree / "models").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(tree), BASELINE_COMMIT],
                       check=True, capture_output=True)
    for name in (".venv", "models/saved"):
        link = tree / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    return tree


def predict(video: Path, *, cwd: Path = ROOT) -> dict:
    """`python -m models predict --json` on `video` in its own process: wall time, peak RSS (its VmHWM), and
    the result's own timings (decoding and inference, without the model's loading)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "models", "predict", str(video), "--json", "--top-k", "3"],
                                   cwd=cwd, stdout=stdout, stderr=stderr)
        peak = 0
        while process.poll() is None:  # its own high-water mark (wait4's ru_maxrss counts the parent's, from the fork)
            peak = max(peak, _high_water_kb(process.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            return {"failed": stderr.read().decode(errors="replace").strip().splitlines()[-1:]}
        result = json.loads(stdout.read())
    windows = len(result["clips"])
    work_s = result["timings_ms"]["total"] / 1000
    return {"video": video.name, "wall_s": round(seconds, 1), "recognition_s": round(work_s, 1),
            "decode_s": round(result["timings_ms"]["decode"] / 1000, 1), "windows": windows,
            "windows_per_s": round(windows / work_s, 2), "source_frames": result["video"]["frames"],
            "decode_fps": round(result["video"]["frames"] / work_s, 1), "peak_rss_mb": round(peak / 1024),
            "top1": result["actions"][0]["label"]}


def _high_water_kb(pid: int) -> int:
    """VmHWM of a running process (kB), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.game", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "game")
    args = parser.parse_args(argv)
    from benchmarks.__main__ import machine

    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "minutes": args.minutes}
    videos = make_game(args.out, args.minutes)
    baseline = baseline_checkout(args.out)
    runs = report["runs"] = {}
    for name, video, cwd in (("ours, 5-minute cut", videos["cut"], ROOT),
                             ("before, 5-minute cut", videos["cut"], baseline),
                             ("ours, 5-minute cut at 60 fps", videos["cut60"], ROOT),
                             ("before, 5-minute cut at 60 fps", videos["cut60"], baseline),
                             (f"ours, the {args.minutes:g}-minute game", videos["game"], ROOT)):
        runs[name] = predict(video, cwd=cwd)
        print(f"{name}: {runs[name]}", file=sys.stderr, flush=True)
    report["decode_hd"] = decode_figures(args.out)
    (args.out / "game.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "game.md").write_text(text)
    print(text)
    return 0


def markdown(report: dict) -> str:
    m, runs, minutes = report["machine"], report["runs"], report["minutes"]
    game = runs[f"ours, the {minutes:g}-minute game"]
    lines = [f"# A whole game ({report['date']})", "",
             f"Machine: {m['cpu']} ({m['cpu_kind']}), {m['cores']} cores; default settings.", "",
             "| run | windows | recognition | windows/s | source frames/s | peak RSS |", "|---|---|---|---|---|---|"]
    for name, run in runs.items():
        if "failed" in run:
            lines.append(f"| {name} | failed: {run['failed']} | | | | |")
            continue
        lines.append(f"| {name} | {run['windows']} | {run['recognition_s']} s | {run['windows_per_s']} | "
                     f"{run['decode_fps']} | {run['peak_rss_mb']} MB |")
    lines += [""]
    if "failed" not in game:
        per_90 = game["recognition_s"] / (minutes * 60) * 90 * 60 / 60
        lines.append(f"At that pace a 90-minute 1080p 30 fps game takes **{per_90:.1f} minutes**.")
    for fps, ours, before in ((30, "ours, 5-minute cut", "before, 5-minute cut"),
                              (60, "ours, 5-minute cut at 60 fps", "before, 5-minute cut at 60 fps")):
        if "failed" not in runs[ours] and "failed" not in runs[before]:
            lines.append(f"- 1080p {fps} fps, 5 minutes: {runs[before]['recognition_s'] / runs[ours]['recognition_s']:.2f}x "
                         f"faster than before end to end ({runs[before]['windows']} windows before, "
                         f"{runs[ours]['windows']} now).")
    cut = runs["ours, 5-minute cut"]
    if "failed" not in game and "failed" not in cut:
        lines.append(f"- Peak RSS on the {minutes:g}-minute game: {game['peak_rss_mb']} MB against {cut['peak_rss_mb']} MB "
                     f"on its 5-minute cut ({game['peak_rss_mb'] / cut['peak_rss_mb'] - 1:+.1%}).")
    lines += ["", "Decoding 1080p H.264, source frames a second:", "", *decoding_table(report["decode_hd"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
