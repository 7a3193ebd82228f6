"""Window logits of real clips through any extractor, as the service computes them, and the float32 TensorFlow
reference they are held to (`models.i3d.accuracy.compare`)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

from models.i3d.checkpoint import sha256_of
from models.recognition.batching import ClipBatcher
from models.recognition.recognizer import ClipSettings, run_video
from models.runtimes.factory import open_extractor
from models.video import frames_id


def reference_logits(handle: str, paths: list[Path], *, cache: Path | None = None) -> dict[str, np.ndarray]:
    """float32 TensorFlow window logits of `paths` (the rule's reference), kept in `cache` (an .npz) and
    reused while the videos, the SavedModel's conversion record and the clip settings are unchanged."""
    conversion = Path(handle) / "conversion.json"
    key = hashlib.sha256(json.dumps({
        "videos": {name: sha256_of(Path(p)) for name, p in video_names(paths).items()},
        "conversion": conversion.read_text() if conversion.is_file() else handle, "clip": [64, 32],
        "frames": frames_id(),
    }, sort_keys=True).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return {name: stored[name] for name in stored.files if name != "key"}
    extractor = open_extractor(handle, runtime="tensorflow", precision="float32")
    try:
        logits = window_logits(extractor, paths)
    finally:
        extractor.close()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial.npz")
        np.savez(partial, key=np.array(key), **logits)
        partial.replace(cache)
    return logits


def window_logits(extractor, paths: list[Path], *, clip_len: int = 64, stride: int = 32,
                  extraction: str = "windows", batch_size: int = 1) -> dict[str, np.ndarray]:
    """`{video name: (windows, 400) logits}` for each video: windows in forward passes of `batch_size` (padded),
    or with `extraction` "shared" (or "shared:recompute<P") pooled from shared trunk passes (`models.recognition.shared_trunk`)."""
    clips = ClipSettings.for_extraction(extraction, clip_len=clip_len, stride=stride)
    with ClipBatcher(extractor, batch_size) as batcher:
        return {name: run_video(batcher, path, clips).logits for name, path in video_names(paths).items()}


def video_names(paths: list[Path]) -> dict[str, Path]:
    """`{name: path}`: each video by its file name, or with its folder's where two share one (class folders)."""
    paths = [Path(p) for p in paths]
    counts = Counter(p.name for p in paths)
    return {(p.name if counts[p.name] == 1 else f"{p.parent.name}__{p.name}"): p for p in paths}


def write_derived_clips(paths: list[Path], out_dir: Path) -> list[Path]:
    """Each video mirrored left to right and started 13 frames later (so every window sees other frames), as
    MJPG AVI in `out_dir`: a second set of inputs for the rule when no other real clips are at hand. They are
    not independent clips: same scenes, same labels."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = out_dir / f"{Path(path).stem}__mirrored_from13.avi"
        if not target.is_file():
            capture = cv2.VideoCapture(str(path))
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            frames = []
            while (frame := capture.read()[1]) is not None:
                frames.append(frame)
            capture.release()
            frames = frames[13:] if len(frames) > 13 + 64 else frames
            height, width = frames[0].shape[:2]
            partial = target.with_suffix(".partial.avi")
            writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
            for frame in frames:
                writer.write(cv2.flip(frame, 1))
            writer.release()
            partial.replace(target)
        written.append(target)
    return written
