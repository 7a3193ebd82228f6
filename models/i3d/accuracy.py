"""The accuracy rule a faster path must pass before it becomes a default, and its measurement.

Against float32 TensorFlow (the source of truth), over every 64-frame window (stride 32) of real clips:
- the same whole-video top-1 on every clip (whole video = the windows' softmax probabilities averaged);
- whole-video top-5 sharing at least 4 of 5 labels on every clip;
- per-window top-1 agreement of at least 95% over all windows;
- the largest logit difference, reported (not a pass mark: it depends on the precision).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.labels import softmax

MIN_TOP5_OVERLAP = 4
MIN_WINDOW_AGREEMENT = 0.95


def reference_logits(handle: str, paths: list[Path], *, cache: Path | None = None) -> dict[str, np.ndarray]:
    """float32 TensorFlow window logits of `paths` (the rule's reference), kept in `cache` (an .npz) and
    reused while the videos, the SavedModel's conversion record and the clip settings are unchanged."""
    import hashlib
    import json

    from models.i3d.checkpoint import sha256_of

    conversion = Path(handle) / "conversion.json"
    key = hashlib.sha256(json.dumps({
        "videos": {Path(p).name: sha256_of(Path(p)) for p in paths},
        "conversion": conversion.read_text() if conversion.is_file() else handle, "clip": [64, 32],
    }, sort_keys=True).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return {name: stored[name] for name in stored.files if name != "key"}
    from models.runtimes.extractor import open_extractor

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
    from models.recognition.batching import ClipBatcher
    from models.recognition.recognizer import ClipSettings, run_video

    clips = ClipSettings.for_extraction(extraction, clip_len=clip_len, stride=stride)
    with ClipBatcher(extractor, batch_size) as batcher:
        return {Path(path).name: run_video(batcher, path, clips).logits for path in paths}


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


@dataclass
class VideoAgreement:
    video: str
    windows: int
    same_top1: bool
    top5_overlap: int
    window_top1_agreement: float
    max_logit_diff: float


@dataclass
class AccuracyReport:
    videos: list[VideoAgreement] = field(default_factory=list)

    @property
    def same_top1(self) -> int:
        return sum(v.same_top1 for v in self.videos)

    @property
    def min_top5_overlap(self) -> int:
        return min(v.top5_overlap for v in self.videos)

    @property
    def window_top1_agreement(self) -> float:
        windows = sum(v.windows for v in self.videos)
        return sum(v.window_top1_agreement * v.windows for v in self.videos) / windows

    @property
    def max_logit_diff(self) -> float:
        return max(v.max_logit_diff for v in self.videos)

    @property
    def failures(self) -> list[str]:
        """What breaks the rule, in words (empty when it passes)."""
        out = [f"{v.video}: whole-video top-1 differs" for v in self.videos if not v.same_top1]
        out += [f"{v.video}: whole-video top-5 shares {v.top5_overlap} of 5" for v in self.videos
                if v.top5_overlap < MIN_TOP5_OVERLAP]
        if self.window_top1_agreement < MIN_WINDOW_AGREEMENT:
            out.append(f"per-window top-1 agreement {self.window_top1_agreement:.1%} < {MIN_WINDOW_AGREEMENT:.0%}")
        return out

    @property
    def passes(self) -> bool:
        return not self.failures

    def summary(self) -> dict:
        return {"videos": len(self.videos), "same_top1": self.same_top1, "min_top5_overlap": self.min_top5_overlap,
                "window_top1_agreement": round(self.window_top1_agreement, 4),
                "max_logit_diff": round(self.max_logit_diff, 4), "passes": self.passes, "failures": self.failures,
                "per_video": [asdict(v) for v in self.videos]}


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> AccuracyReport:
    """The rule's figures for `candidate` window logits against `reference`, video by video."""
    report = AccuracyReport()
    for video, expected in reference.items():
        got = candidate[video]
        a, b = softmax(expected).mean(axis=0), softmax(got).mean(axis=0)
        report.videos.append(VideoAgreement(
            video=video, windows=len(expected), same_top1=bool(a.argmax() == b.argmax()),
            top5_overlap=len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])),
            window_top1_agreement=float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1))),
            max_logit_diff=float(np.abs(expected - got).max()),
        ))
    return report
