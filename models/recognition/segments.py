"""Moments: where each action happens, as segments made from the windows' probabilities.

For each label, its probability over the windows is smoothed (a moving average), and a segment is a stretch
where it stays above `min_confidence * keep_ratio` and reaches `min_confidence` somewhere (hysteresis, so a dip
does not cut a segment in two, and a blip does not start one). Its ends are placed where the smoothed
probability crosses half the segment's typical level, between window centres (finer than a hop: a window that
straddles two actions scores each about half). Segments of one label closer than `merge_gap_s` are merged, then
those shorter than `min_length_s` dropped. A segment's confidence is its label's mean probability over its
windows (those centred inside it). Different labels may overlap ("shooting basketball" within "playing
basketball").
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentSettings:
    """The defaults were tuned on games built from the real clips (benchmarks/moments.py, docs/performance.md);
    a request may change the first three."""
    min_confidence: float = 0.2  # a segment's label reaches this smoothed probability somewhere
    merge_gap_s: float = 2.0  # segments of one label closer than this are one
    min_length_s: float = 2.0  # shorter segments are dropped
    smooth_windows: int = 3  # windows in the moving average
    keep_ratio: float = 0.3  # a segment goes on while its label stays above this share of min_confidence
    edge_level: float = 0.8  # its ends are where its label crosses this share of its typical level

    def changed(self, **overrides: float | None) -> SegmentSettings:
        """These settings with the overrides that are not None."""
        return dataclasses.replace(self, **{name: value for name, value in overrides.items() if value is not None})


@dataclass
class _Run:
    label: int
    first: int  # window indices, inclusive
    last: int
    start_s: float
    end_s: float


def smooth(probabilities: np.ndarray, width: int) -> np.ndarray:
    """Moving average over `width` windows (odd), the ends repeated: `(N, C) -> (N, C)`."""
    if width <= 1 or len(probabilities) < 2:
        return probabilities
    half = width // 2
    padded = np.concatenate([np.repeat(probabilities[:1], half, 0), probabilities,
                             np.repeat(probabilities[-1:], half, 0)])
    sums = np.cumsum(np.concatenate([np.zeros_like(probabilities[:1]), padded]), axis=0)
    return (sums[width:] - sums[:-width]) / width


def _stretches(above_low: np.ndarray, above_high: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of `above_low` that hold at least one `above_high`: (first, last) inclusive."""
    runs, start = [], None
    for index, on in enumerate([*above_low, False]):
        if on and start is None:
            start = index
        elif not on and start is not None:
            if above_high[start:index].any():
                runs.append((start, index - 1))
            start = None
    return runs


def _crossing(level: float, a: int, b: int, curve: np.ndarray, centres: np.ndarray) -> float:
    """Where `curve` crosses `level` between the centres of windows `a` and `b`, by linear interpolation."""
    rise = curve[b] - curve[a]
    fraction = 0.5 if rise == 0 else float(np.clip((level - curve[a]) / rise, 0.0, 1.0))
    return float(centres[a] + fraction * (centres[b] - centres[a]))


def _edges(curve: np.ndarray, first: int, last: int, centres: np.ndarray, starts: np.ndarray,
           ends: np.ndarray, edge_level: float) -> tuple[float, float]:
    level = edge_level * float(np.median(curve[first:last + 1]))
    inside = np.flatnonzero(curve[first:last + 1] >= level) + first
    lo, hi = int(inside[0]), int(inside[-1])
    start = float(starts[0]) if lo == 0 else _crossing(level, lo - 1, lo, curve, centres)
    end = float(ends[-1]) if hi == len(curve) - 1 else _crossing(level, hi + 1, hi, curve, centres)
    return start, end


def find_segments(probabilities: np.ndarray, starts: np.ndarray, ends: np.ndarray, labels: tuple[str, ...] | list[str],
                  settings: SegmentSettings = SegmentSettings()) -> list[dict]:
    """Segments from windows: `probabilities (N, len(labels))` of windows spanning `starts`..`ends` seconds (N
    each, in order) -> `[{label, start_s, end_s, peak_s, confidence, windows: [first, last]}]` sorted by start
    (`peak_s`: the centre of its window where its label is most probable)."""
    if len(probabilities) == 0:
        return []
    probabilities = np.asarray(probabilities, dtype=np.float64)
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    curves = smooth(probabilities, settings.smooth_windows)
    centres = (starts + ends) / 2
    high, low = settings.min_confidence, settings.min_confidence * settings.keep_ratio
    runs: list[_Run] = []
    for label in np.flatnonzero(curves.max(axis=0) >= high):
        curve = curves[:, label]
        merged: list[_Run] = []
        for first, last in _stretches(curve >= low, curve >= high):
            start, end = _edges(curve, first, last, centres, starts, ends, settings.edge_level)
            if merged and start - merged[-1].end_s <= settings.merge_gap_s:
                merged[-1].last, merged[-1].end_s = last, max(end, merged[-1].end_s)
            else:
                merged.append(_Run(int(label), first, last, start, end))
        runs += [run for run in merged if run.end_s - run.start_s >= settings.min_length_s]
    runs.sort(key=lambda run: (run.start_s, run.end_s))
    for run in runs:  # its windows: those centred inside it (the edges' windows are mostly outside)
        inside = np.flatnonzero((centres >= run.start_s) & (centres <= run.end_s))
        if len(inside):
            run.first, run.last = int(inside[0]), int(inside[-1])
    return [{"label": labels[run.label], "start_s": round(run.start_s, 3), "end_s": round(run.end_s, 3),
             "peak_s": round(float(centres[run.first + int(np.argmax(curves[run.first:run.last + 1, run.label]))]), 3),
             "confidence": round(float(probabilities[run.first:run.last + 1, run.label].mean()), 6),
             "windows": [run.first, run.last]} for run in runs]


class LiveMoments:
    """Segments of a stream as it plays: after each window, those that can no longer grow or merge with a later
    one, each told once. Windows may skip (a live session drops the ones the model cannot keep up with). The
    last `keep_windows` windows are kept, so a moment longer than they span is told from where they begin."""

    def __init__(self, labels: tuple[str, ...] | list[str], settings: SegmentSettings = SegmentSettings(), *,
                 keep_windows: int = 512):
        self.labels, self.settings = labels, settings
        self._windows: deque[tuple[int, float, float, np.ndarray]] = deque(maxlen=keep_windows)
        self._told_until: dict[str, int] = {}  # label -> the last window of its last segment told

    def add(self, index: int, start_s: float, end_s: float, probabilities: np.ndarray) -> list[dict]:
        """Window `index` (its span in seconds, its probabilities) -> the segments it closes."""
        self._windows.append((index, start_s, end_s, np.asarray(probabilities, dtype=np.float64)))
        return self._closed(final=False)

    def finish(self) -> list[dict]:
        """At the end of the stream: the segments still open, closed."""
        return self._closed(final=True)

    def _closed(self, *, final: bool) -> list[dict]:
        indices = [w[0] for w in self._windows]
        found = find_segments(np.stack([w[3] for w in self._windows]), [w[1] for w in self._windows],
                              [w[2] for w in self._windows], self.labels, self.settings)
        newest_index, newest_start = indices[-1], self._windows[-1][1]
        closed = []
        for segment in found:
            first, last = (indices[i] for i in segment["windows"])
            settled = newest_index - last > self.settings.smooth_windows  # the smoothing no longer reaches it
            if (final or (settled and newest_start - segment["end_s"] > self.settings.merge_gap_s)) \
                    and last > self._told_until.get(segment["label"], -1):
                self._told_until[segment["label"]] = last
                closed.append({**segment, "windows": [first, last]})
        return closed
