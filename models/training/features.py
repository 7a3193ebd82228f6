"""Per-video I3D feature sequences, cached on disk.

One `.npy` per video, `(clips, 1024) float32`, named by a hash of the video's bytes, the extractor and
the clip settings (and the precision, if not float32, the extraction, if not clip by clip, and the view, if not
the plain one): renaming a file reuses its features, changing a setting does not. Files are written
atomically, so an interrupted run resumes where it stopped. Unreadable videos are skipped and listed.

Training sees more than one view of each video (`augmentation_views`: mirrored, cropped at either end of the
long side, played 0.8x or 1.25x, windows shifted by half a stride), each extracted and cached once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.i3d.checkpoint import sha256_of
from models.recognition.batching import ClipBatcher
from models.recognition.recognizer import ClipSettings, run_video
from models.runtimes.extractor import Extractor
from models.video import CROPS, PLAIN_VIEW, VideoDecodeError, View


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
    if not clips.view.plain:  # another view of the video: other features (plain keys stay as they were)
        key["view"] = clips.view.id
    settings = json.dumps(key, sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


def video_features(batcher: ClipBatcher, path: Path, clips: ClipSettings) -> np.ndarray:
    """`(num_clips, feature_dim) float32` for one video, decoded clip by clip."""
    return run_video(batcher, path, clips).features.astype(np.float32)


def augmentation_views(count: int, stride: int = 32) -> list[View]:
    """The first `count` views of a video for training: the plain one, then one of each kind (mirrored, either
    end, slower, faster, shifted by half a stride), then their combinations, 36 in all."""
    half = max(1, stride // 2)
    kinds = [View(flip=True), View(crop="start"), View(crop="end", flip=True), View(speed=0.8),
             View(speed=1.25, flip=True), View(offset=half), View(crop="start", flip=True, speed=1.25),
             View(crop="end", speed=0.8, offset=half)]
    every = [View(crop, flip, speed, offset) for crop, flip, speed, offset
             in itertools.product(CROPS, (False, True), (1.0, 0.8, 1.25), (0, half))]
    ordered = list(dict.fromkeys([PLAIN_VIEW, *kinds, *every]))
    return ordered[:max(1, count)]


@dataclass
class FeatureSet:
    features: dict[Path, np.ndarray] = field(default_factory=dict)  # the first view's (plain unless asked)
    failed: dict[Path, str] = field(default_factory=dict)  # path -> why it was skipped
    computed: int = 0
    reused: int = 0
    views: dict[Path, list[np.ndarray]] = field(default_factory=dict)  # every view's, in the order asked


def progress_bar(iterable, total: int, description: str, enabled: bool, unit: str = "video"):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, file=sys.stderr)


def extract_all(
    paths: list[Path], extractor: Extractor, *, clips: ClipSettings, cache_dir: Path, progress: bool = True,
    views: Sequence[View] = (PLAIN_VIEW,),
) -> FeatureSet:
    """Features of every readable video in `paths` for each of `views`, from the cache where possible."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = FeatureSet()
    unique = list(dict.fromkeys(paths))
    work = [(path, view) for path in unique for view in views]
    label = "I3D features" if len(views) == 1 else f"I3D features, {len(views)} views"
    with ClipBatcher(extractor, clips.batch_size) as batcher:
        for path, view in progress_bar(work, len(work), label, progress, unit="video" if len(views) == 1 else "view"):
            if path in result.failed:
                continue
            one = FeatureSet()
            _extract_one(path, batcher, dataclasses.replace(clips, view=view), cache_dir, one)
            result.computed, result.reused = result.computed + one.computed, result.reused + one.reused
            if path in one.failed:
                result.failed[path] = one.failed[path]
                result.features.pop(path, None)
                result.views.pop(path, None)
                continue
            result.features.setdefault(path, one.features[path])
            result.views.setdefault(path, []).append(one.features[path])
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
