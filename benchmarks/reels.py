"""`make bench-reels`: cutting highlight reels from a whole 1080p game, by stream copy and by re-encoding, in one
run.

    .venv/bin/python -m benchmarks.reels [--minutes 30] [--moments 20] [--out bench/game]

The game is `make bench-game`'s (made once if missing: real clips at 1920x1080, 30 fps, H.264 with a keyframe
every 2 s). The reel is of `--moments` moments of 8 s spread evenly over it, padded by 2 s: what a cut costs
depends on where and how long the pieces are, not on what they show. Writes reels.json under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av

from benchmarks.game import ROOT, make_game
from common.reels import make_reel, reel_spans


def moments(duration_s: float, count: int, length_s: float = 8.0) -> dict:
    step = duration_s / count
    return {"video": {"duration_s": duration_s}, "segments": [
        {"label": "moment", "start_s": round(i * step + step / 3, 2), "end_s": round(i * step + step / 3 + length_s, 2)}
        for i in range(count)]}


def cut(video: Path, result: dict, allow_copy: bool) -> dict:
    with tempfile.TemporaryDirectory(dir=video.parent) as work:
        target = Path(work) / "reel.mp4"
        started = time.perf_counter()
        mode = make_reel(video, result, ["moment"], target, pad_s=2.0, timeout_s=3600, allow_copy=allow_copy)
        seconds = time.perf_counter() - started
        with av.open(str(target)) as container:
            duration = float(container.duration / 1e6)
        return {"mode": mode, "seconds": round(seconds, 2), "reel_s": round(duration, 1),
                "mb": round(target.stat().st_size / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reels", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--moments", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "game")
    args = parser.parse_args(argv)
    from benchmarks.__main__ import machine

    video = make_game(args.out, args.minutes)["game"]
    result = moments(args.minutes * 60, args.moments)
    spans = reel_spans(result, ["moment"], pad_s=2.0)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "video": video.name,
              "moments": args.moments, "asked_s": round(sum(s.seconds for s in spans), 1),
              "copy": cut(video, result, True), "encode": cut(video, result, False)}
    report["encode_over_copy"] = round(report["encode"]["seconds"] / max(report["copy"]["seconds"], 1e-3), 1)
    (args.out / "reels.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
