"""Segments scored against the truth as temporal action localization is (THUMOS14, ActivityNet): for each label in
the truth, predictions ranked by confidence are matched to true segments at a temporal IoU threshold, each true
segment at most once; average precision is the area under the interpolated precision-recall curve, and mAP its
mean over the labels in the truth. Recall: the share of true segments matched at the threshold.

The baseline is what a user does by hand with a per-window result: each window's top-1, runs of the same label
merged into one segment from the first window's start to the last one's end."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

THRESHOLDS = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class Segment:
    label: str
    start_s: float
    end_s: float
    confidence: float = 1.0


def read_truth(path: Path) -> list[Segment]:
    """A CSV with a header and the columns `label, start_s, end_s` (more columns are ignored)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"label", "start_s", "end_s"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: the truth needs the columns label, start_s, end_s (missing: {', '.join(sorted(missing))})")
    return [Segment(row["label"], float(row["start_s"]), float(row["end_s"])) for row in rows]


def write_truth(path: Path, truth: list[Segment]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "start_s", "end_s"])
        writer.writerows([s.label, f"{s.start_s:.3f}", f"{s.end_s:.3f}"] for s in truth)


def result_segments(result: dict) -> list[Segment]:
    return [Segment(s["label"], s["start_s"], s["end_s"], s["confidence"]) for s in result.get("segments", [])]


def window_top1_segments(result: dict) -> list[Segment]:
    """The by-hand baseline: runs of the same top-1 over consecutive windows, merged."""
    merged: list[list] = []  # [label, start, end, confidences]
    for clip in result["clips"]:
        top = clip["actions"][0]
        if merged and merged[-1][0] == top["label"]:
            merged[-1][2] = clip["end_s"]
            merged[-1][3].append(top["confidence"])
        else:
            merged.append([top["label"], clip["start_s"], clip["end_s"], [top["confidence"]]])
    return [Segment(label, start, end, float(np.mean(conf))) for label, start, end, conf in merged]


def tiou(a: Segment, b: Segment) -> float:
    overlap = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
    union = max(a.end_s, b.end_s) - min(a.start_s, b.start_s)
    return max(0.0, overlap) / union if union > 0 else 0.0


def _matches(predicted: list[Segment], truth: list[Segment], threshold: float) -> list[bool]:
    """For predictions in order of confidence: whether each matches a true segment not matched before."""
    taken, hits = [False] * len(truth), []
    for prediction in predicted:
        best, best_iou = -1, threshold
        for index, true in enumerate(truth):
            iou = tiou(prediction, true)
            if not taken[index] and iou >= best_iou:
                best, best_iou = index, iou
        if best >= 0:
            taken[best] = True
        hits.append(best >= 0)
    return hits


def average_precision(predicted: list[Segment], truth: list[Segment], threshold: float) -> float:
    """One label's AP (ActivityNet's interpolation: precision made non-increasing, summed over recall steps)."""
    if not truth:
        return 0.0
    ranked = sorted(predicted, key=lambda s: -s.confidence)
    hits = np.array(_matches(ranked, truth, threshold), dtype=float)
    if not len(hits):
        return 0.0
    tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], tp / len(truth), [1.0]])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(hits) + 1), [0.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def evaluate(predicted: list[Segment], truth: list[Segment], thresholds=THRESHOLDS) -> dict:
    """`{"map": {t: mAP}, "recall": {t: recall}, "labels": n}` over the labels in `truth`."""
    labels = sorted({s.label for s in truth})
    scores: dict = {"map": {}, "recall": {}, "labels": len(labels), "truth": len(truth), "predicted": len(predicted)}
    for threshold in thresholds:
        aps, matched = [], 0
        for label in labels:
            mine = [s for s in predicted if s.label == label]
            theirs = [s for s in truth if s.label == label]
            aps.append(average_precision(mine, theirs, threshold))
            matched += sum(_matches(sorted(mine, key=lambda s: -s.confidence), theirs, threshold))
        scores["map"][threshold] = float(np.mean(aps)) if aps else 0.0
        scores["recall"][threshold] = matched / len(truth) if truth else 0.0
    return scores
