"""Per-video I3D feature sequences, cached on disk.

One `.npy` per video, `(clips, 1024) float32`, named by a hash of the video's bytes, the extractor and
the clip settings (and the precision, if not float32, and the extraction, if not clip by clip): renaming a file reuses its features, changing a setting does not. Files are written
atomically, so an interrupted run resumes where it stopped. Unreadable videos are skipped and listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.i3d.checkpoint import sha256_of
from models.recognition.batching import ClipBatcher
from models.recognition.recognizer import ClipSettings, run_video
from models.runtimes.extractor import Extractor
from models.video import VideoDecodeError


def cache_key(path: Path, *, extractor_id: str, clips: ClipSettings, precision: str = "float32",
              stem: str = "plain") -> str:
    key = {"video": sha256_of(path), "extractor": extractor_id, "clip_len": clips.clip_len, "stride": clips.stride}
    if precision != "float32":  # float32 keys stay as they were
        key["precision"] = precision
    if precision == "int8" and stem != "plain":  # each stem's int8 model is quantized on its own: other features
        key["stem"] = stem
    if clips.extraction_id != "windows":  # so do keys of windows run clip by clip
        key["extraction"] = clips.extraction_id
    key["frames"] = clips.frames_id  # decoder and sampling: features of other frames are other features
    settings = json.dumps(key, sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


def video_features(batcher: ClipBatcher, path: Path, clips: ClipSettings) -> np.ndarray:
    """`(num_clips, feature_dim) float32` for one video, decoded clip by clip."""
    return run_video(batcher, path, clips).features.astype(np.float32)


@dataclass
class FeatureSet:
    features: dict[Path, np.ndarray] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)  # path -> why it was skipped
    computed: int = 0
    reused: int = 0


def _progress(iterable, total: int, description: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit="video", file=sys.stderr)


def extract_all(
    paths: list[Path], extractor: Extractor, *, clips: ClipSettings, cache_dir: Path, progress: bool = True
) -> FeatureSet:
    """Features of every readable video in `paths`, from the cache where possible."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = FeatureSet()
    with ClipBatcher(extractor, clips.batch_size) as batcher:
        for path in _progress(list(dict.fromkeys(paths)), len(set(paths)), "I3D features", progress):
            _extract_one(path, batcher, clips, cache_dir, result)
    return result


def _extract_one(path: Path, batcher: ClipBatcher, clips: ClipSettings, cache_dir: Path, result: FeatureSet) -> None:
    extractor = batcher.extractor
    try:
        key = cache_key(path, extractor_id=extractor.extractor_id, clips=clips, precision=extractor.precision,
                        stem=extractor.stem)
        cached = cache_dir / f"{key}.npy"
    except OSError as exc:
        result.failed[path] = f"cannot read: {exc.strerror or exc}"
        return
    if cached.is_file():
        result.features[path] = np.load(cached)
        result.reused += 1
        return
    try:
        features = video_features(batcher, path, clips)
    except VideoDecodeError as exc:
        result.failed[path] = str(exc)
        return
    fd, staging = tempfile.mkstemp(dir=cache_dir, suffix=".npy.part")
    with os.fdopen(fd, "wb") as f:
        np.save(f, features)
    os.replace(staging, cached)
    result.features[path] = features
    result.computed += 1
