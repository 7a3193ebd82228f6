"""Decoding speed on 1080p H.264 at 30 and 60 fps: today's decoder (PyAV, threaded, sampled at the model's
25 fps, cropped and scaled inside FFmpeg) against the OpenCV path the service used before (every frame
decoded to BGR at full size, then resized, cropped and converted: `opencv_frames`), in the same run.

    python -m benchmarks.decoding [--out bench] [--seconds 20]   # prints the table, writes decoding.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "basketball__mmaction2_shooting_drill.mp4"


def opencv_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The service's decoding before PyAV (commit 6c3fcdd): every frame, `prepare_frame`d."""
    import cv2

    from models.video import prepare_frame

    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield prepare_frame(frame)
    finally:
        capture.release()


def make_hd_video(path: Path, seconds: float, fps: int, source: Path = SOURCE) -> Path:
    """`seconds` of `source` looped, scaled to 1920x1080 at `fps` (H.264, as a broadcast or phone gives it);
    kept where it is made, as it takes a while."""
    import imageio_ffmpeg

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(source),
                    "-t", str(seconds), "-vf", f"scale=1920:1080,fps={fps}", "-an", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(partial)], check=True)
    return partial.rename(path)


def _rate(frames: Iterator[np.ndarray], source_frames: int) -> dict:
    started = time.perf_counter()
    kept = sum(1 for _ in frames)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "frames_out": kept, "source_fps": round(source_frames / seconds, 1)}


def decode_figures(out_dir: Path, seconds: float = 20) -> list[dict]:
    """For 1080p at 30 and 60 fps: source frames decoded a second, both ways, and the ratio."""
    from models.video import iter_frames, probe

    rows = []
    for fps in (30, 60):
        video = make_hd_video(out_dir / f"hd-1080p{fps}-{seconds:g}s.mp4", seconds, fps)
        frames = probe(video).frames
        opencv = _rate(opencv_frames(video), frames)
        ours = _rate(iter_frames(video), frames)
        rows.append({"video": f"1080p {fps} fps, {seconds:g} s", "source_frames": frames, "opencv": opencv,
                     "ours": ours, "ratio": round(opencv["seconds"] / ours["seconds"], 2)})
    return rows


def markdown(rows: list[dict]) -> list[str]:
    lines = ["| video | OpenCV, every frame (before) | PyAV, sampled at 25 fps (now) | ratio |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['video']} | {row['opencv']['source_fps']} frames/s | {row['ours']['source_fps']} "
                     f"frames/s ({row['ours']['frames_out']} kept of {row['source_frames']}) | **{row['ratio']}x** |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoding", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    rows = decode_figures(args.out, args.seconds)
    (args.out / "decoding.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(markdown(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
