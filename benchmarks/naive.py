"""The usual implementation of this service, as the benchmark's baseline.

It reads the whole video into RAM as float64, stretches every frame to 224x224 (no crop), and runs one
float32 clip per forward pass at stride 32 (a video shorter than a clip is repeated to fill it). It uses
the same converted I3D, so the comparison is about the pipeline around the model.

    python -m benchmarks.naive VIDEO [--model DIR] [--clips N]   # prints JSON: timings and peak RSS
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np


def load_video(path: str | Path) -> np.ndarray:
    """`(T, 224, 224, 3) float64` in [-1, 1]: every frame, stretched."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (224, 224)))
    capture.release()
    video = np.array(frames, dtype=np.float64)
    del frames
    video /= 127.5
    video -= 1.0
    return video


def clip_logits(signature, video: np.ndarray, *, clip_len: int = 64, stride: int = 32, max_clips: int | None = None):
    """Logits of each clip, one forward pass per clip."""
    if len(video) < clip_len:
        video = np.concatenate([video] * (clip_len // len(video) + 1))
    logits = []
    for start in range(0, len(video) - clip_len + 1, stride)[:max_clips]:
        clip = video[start:start + clip_len][None].astype(np.float32)
        logits.append(signature(clips=clip)["logits"].numpy()[0])
    return np.array(logits)


def recognize(signature, path: str | Path) -> dict:
    """Whole-video probabilities (clip softmaxes averaged) and where the time went."""
    started = time.perf_counter()
    video = load_video(path)
    decoded = time.perf_counter()
    logits = clip_logits(signature, video)
    done = time.perf_counter()
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (exp / exp.sum(axis=1, keepdims=True)).mean(axis=0)
    return {"probs": probs, "frames": len(video), "clips": len(logits), "decode_s": decoded - started,
            "infer_s": done - decoded, "total_s": done - started}


def main(argv: list[str] | None = None) -> int:
    """In its own process, so its peak RSS is its own: decode the video, run its clips (`--clips`: the first N)."""
    from benchmarks.api_process import peak_rss_bytes
    from models.paths import DEFAULT_SAVED_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default=str(DEFAULT_SAVED_MODEL))
    parser.add_argument("--clips", type=int, default=None, help="run only the first N clips (default: all)")
    args = parser.parse_args(argv)
    import tensorflow as tf

    signature = tf.saved_model.load(args.model).signatures["serving_default"]
    started = time.perf_counter()
    video = load_video(args.video)
    decode_s = time.perf_counter() - started
    logits = clip_logits(signature, video, max_clips=args.clips)
    total_s = time.perf_counter() - started
    print(json.dumps({"frames": len(video), "video_bytes": video.nbytes, "decode_s": decode_s, "clips_run": len(logits),
                      "total_s": total_s, "peak_rss_bytes": peak_rss_bytes()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
