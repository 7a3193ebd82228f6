"""The accuracy rule a faster path must pass before it becomes a default (`models.evaluation` measures it).

Against float32 TensorFlow (the source of truth), over every 64-frame window (stride 32) of real clips:
- the same whole-video top-1 on every clip (whole video = the windows' softmax probabilities averaged);
- whole-video top-5 sharing at least 4 of 5 labels on every clip (top-k sharing k-1 with k < 5 labels: a fine-tuned
  I3D's own);
- per-window top-1 agreement of at least 95% over all windows;
- the largest logit difference, reported (not a pass mark: it depends on the precision).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from models.labels import softmax

MIN_TOP5_OVERLAP = 4
MIN_WINDOW_AGREEMENT = 0.95


@dataclass
class VideoAgreement:
    video: str
    windows: int
    same_top1: bool
    top5_overlap: int
    window_top1_agreement: float
    max_logit_diff: float
    top_k: int = 5  # fewer with fewer labels


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
        out += [f"{v.video}: whole-video top-{v.top_k} shares {v.top5_overlap} of {v.top_k}" for v in self.videos
                if v.top5_overlap < MIN_TOP5_OVERLAP - (5 - v.top_k)]
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
        k = min(5, len(a))
        report.videos.append(VideoAgreement(
            video=video, windows=len(expected), same_top1=bool(a.argmax() == b.argmax()), top_k=k,
            top5_overlap=len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])),
            window_top1_agreement=float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1))),
            max_logit_diff=float(np.abs(expected - got).max()),
        ))
    return report
