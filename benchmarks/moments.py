"""`make bench-moments`: segments scored against games whose moments are known, beside the by-hand baseline
(window top-1s merged), on this machine's default model.

A game is real clips (each with the label a correct model gives it, from CLIPS.md) looped or cut to a few
seconds each, in a shuffled order, scaled into one frame size and rate and joined with FFmpeg, with stretches of
no action after half of them (FFmpeg's moving `life` pattern, as a broadcast cuts to graphics). The truth is
where each clip lies. Games A (tests/data, seed 1) and B (../shared/clips twice over, seed 2) tuned the defaults
of SegmentSettings; C (seed 3) and the test's game (tests/data, seed 4) were not used for it.

`python -m benchmarks.moments` writes bench/moments/ (games cached) with report.md and report.json;
`--out game.mp4 [--clips DIR --seed N --repeats R]` writes one game and `game.truth.csv`."""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import time
from pathlib import Path

from benchmarks.clips import expected_top1
from models.evaluation.segments import (THRESHOLDS, Segment, evaluate, read_truth, result_segments,
                                        window_top1_segments, write_truth)
from models.video import probe


def _duration(path: Path) -> float:
    return probe(path).duration_s


def build_game(folder: Path, out: Path, *, seed: int, repeats: int = 1, min_s: float = 3.0, max_s: float = 9.0,
               max_gap_s: float = 5.0, fps: int = 30, size: tuple[int, int] = (640, 360)) -> list[Segment]:
    """Every clip of `folder` (but GIFs, which repeat an MP4) `repeats` times, each lasting `min_s`..`max_s` s
    (looped when shorter), shuffled by `seed`, half of them followed by up to `max_gap_s` of no action; writes
    the H.264 game to `out` and returns the truth."""
    import imageio_ffmpeg

    labels = {name: label for name, label in expected_top1(folder).items() if not name.endswith(".gif")}
    rng = random.Random(seed)
    pieces = [name for name in sorted(labels) for _ in range(repeats)]
    rng.shuffle(pieces)
    width, height = size
    inputs, filters, truth, at = [], [], [], 0.0
    for index, name in enumerate(pieces):
        clip = folder / name
        length = round(rng.uniform(min_s, max_s) * fps) / fps
        loops = max(0, math.ceil(length / _duration(clip)) - 1)
        inputs += ["-stream_loop", str(loops), "-t", f"{length:.4f}", "-i", str(clip)]
        filters.append(f"[{index}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                       f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},"
                       f"trim=duration={length:.4f},setpts=PTS-STARTPTS[v{index}]")
        truth.append(Segment(labels[name], round(at, 3), round(at + length, 3)))
        at += length
        gap = round(rng.uniform(1.0, max_gap_s) * fps) / fps if rng.random() < 0.5 else 0.0
        if gap:
            filters.append(f"life=size={width}x{height}:rate={fps}:mold=10:ratio=0.3:death_color=#202020:"
                           f"life_color=#c0c0c0:seed={rng.randrange(1 << 16)},trim=duration={gap:.4f},"
                           f"setsar=1,format=yuv420p[g{index}]")
            at += gap
        else:
            filters.append(f"nullsrc=size={width}x{height}:rate={fps}:duration=0,format=yuv420p[g{index}]")
    joined = "".join(f"[v{i}][g{i}]" for i in range(len(pieces)))
    graph = ";".join(filters) + f";{joined}concat=n={2 * len(pieces)}:v=1:a=0[out]"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *inputs,
                    "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", "-g", str(2 * fps), str(out)], check=True, timeout=600)
    return truth


ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "clips"
# name: (clips, seed, repeats, what it was for)
GAMES = {"A": (ROOT / "tests" / "data", 1, 1, "tuned the defaults"), "B": (SHARED, 2, 2, "tuned the defaults"),
         "C": (SHARED, 3, 2, "held out"), "test": (ROOT / "tests" / "data", 4, 1, "held out (tests/test_segments.py)")}


def _game(folder: Path, name: str, clips: Path, seed: int, repeats: int) -> tuple[Path, list[Segment]]:
    video, truth_csv = folder / f"game-{name}.mp4", folder / f"game-{name}.truth.csv"
    if not (video.is_file() and truth_csv.is_file()):
        write_truth(truth_csv, build_game(clips, video, seed=seed, repeats=repeats))
    return video, read_truth(truth_csv)


def report(folder: Path) -> dict:
    from models.hardware import cpu_kind
    from service.model import open_recognizer
    from service.settings import Settings

    folder.mkdir(parents=True, exist_ok=True)
    recognizer = open_recognizer(Settings(warm_up=False))
    rows = {}
    try:
        for name, (clips, seed, repeats, role) in GAMES.items():
            if not clips.is_dir():
                continue
            video, truth = _game(folder, name, clips, seed, repeats)
            started = time.perf_counter()
            result = recognizer.recognize(video)
            rows[name] = {"role": role, "duration_s": result["video"]["duration_s"], "moments": len(truth),
                          "seconds": round(time.perf_counter() - started, 1),
                          "segments": evaluate(result_segments(result), truth),
                          "baseline": evaluate(window_top1_segments(result), truth)}
    finally:
        recognizer.close()
    extractor = recognizer.extractor
    return {"cpu": cpu_kind(), "runtime": extractor.runtime, "precision": extractor.precision, "games": rows}


def _markdown(figures: dict) -> str:
    lines = [f"# Moments: mAP at tIoU 0.3 / 0.5 / 0.7 ({figures['cpu']}, {figures['runtime']} {figures['precision']})",
             "", "| game | length | moments | segments | window top-1 merged (baseline) | role |", "|---|---|---|---|---|---|"]
    for name, row in figures["games"].items():
        ours, base = (" / ".join(f"{row[kind]['map'][t]:.3f}" for t in THRESHOLDS) for kind in ("segments", "baseline"))
        lines.append(f"| {name} | {row['duration_s']:.0f} s | {row['moments']} | {ours} | {base} | {row['role']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write one game here (and its truth beside it) instead")
    parser.add_argument("--clips", type=Path, default=Path("tests/data"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=ROOT / "bench" / "moments")
    args = parser.parse_args(argv)
    if args.out:
        truth = build_game(args.clips, args.out, seed=args.seed, repeats=args.repeats)
        write_truth(args.out.with_suffix(".truth.csv"), truth)
        print(f"wrote {args.out} ({len(truth)} moments) and {args.out.with_suffix('.truth.csv')}")
        return
    figures = report(args.folder)
    (args.folder / "report.json").write_text(json.dumps(figures, indent=2))
    (args.folder / "report.md").write_text(_markdown(figures))
    print(_markdown(figures))


if __name__ == "__main__":
    main()
