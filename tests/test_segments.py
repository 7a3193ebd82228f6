"""Moments: segments from window probabilities (models/recognition/segments.py), their scoring as temporal action
localization is scored (models/evaluation/segments.py), and both on a game built from the real clips with FFmpeg,
whose truth is known (benchmarks/moments.py), through the real model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.moments import build_game
from conftest import DATA, ROOT
from models.evaluation.segments import Segment, average_precision, evaluate, read_truth, result_segments, \
    window_top1_segments, write_truth
from models.recognition.segments import SegmentSettings, find_segments

LABELS = ("running", "jumping", "sitting", *(f"other {i}" for i in range(97)))  # 100: 0.01 each where nothing happens
HOP, WINDOW = 1.28, 2.56
STEP = SegmentSettings(smooth_windows=1, edge_level=0.5)  # for clean steps: no smoothing, ends half way up


def _windows(count: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(count) * HOP
    return starts, starts + WINDOW


def _probabilities(*stretches: tuple[int, int, int, float], count: int) -> np.ndarray:
    """(label, first, last, probability) stretches over `count` windows; the rest of each row spread evenly."""
    rows = np.zeros((count, len(LABELS)))
    for label, first, last, level in stretches:
        rows[first:last + 1, label] = level
    rest = 1 - rows.sum(axis=1, keepdims=True)
    return rows + (rows == 0) * rest / (rows == 0).sum(axis=1, keepdims=True)


def test_a_clean_stretch_becomes_one_segment_with_ends_between_windows():
    starts, ends = _windows(20)
    probabilities = _probabilities((0, 5, 12, 0.9), count=20)
    found = find_segments(probabilities, starts, ends, LABELS, STEP)
    assert [(s["label"], s["windows"]) for s in found] == [("running", [5, 12])]
    segment = found[0]
    centres = (starts + ends) / 2
    assert centres[4] < segment["start_s"] < centres[5] and centres[12] < segment["end_s"] < centres[13]
    assert segment["confidence"] == pytest.approx(0.9)
    (tighter,) = find_segments(probabilities, starts, ends, LABELS)  # the defaults: smoothed, ends at 0.8 of the level
    assert segment["start_s"] < tighter["start_s"] < tighter["end_s"] < segment["end_s"]


def test_hysteresis_keeps_a_dip_inside_and_ignores_a_blip():
    starts, ends = _windows(30)
    dip = _probabilities((0, 3, 20, 0.9), (1, 25, 25, 0.9), count=30)
    dip[10, 0] = 0.1  # one window where the action is hidden: still inside its segment
    found = find_segments(dip, starts, ends, LABELS, SegmentSettings(smooth_windows=1))
    assert [(s["label"], s["windows"]) for s in found] == [("running", [3, 20])]  # the 1-window jump is too short


def test_merge_gap_and_minimum_length_are_honoured():
    starts, ends = _windows(40)
    two = _probabilities((0, 2, 8, 0.9), (0, 12, 20, 0.9), count=40)  # about 4 s apart
    apart = find_segments(two, starts, ends, LABELS, STEP.changed(merge_gap_s=1.0))
    merged = find_segments(two, starts, ends, LABELS, STEP.changed(merge_gap_s=6.0))
    assert [s["windows"] for s in apart] == [[2, 8], [12, 20]] and [s["windows"] for s in merged] == [[2, 20]]
    assert find_segments(two, starts, ends, LABELS, SegmentSettings(min_length_s=30)) == []
    assert find_segments(two[:0], starts[:0], ends[:0], LABELS) == []


def test_labels_may_overlap_and_segments_come_sorted_by_start():
    starts, ends = _windows(30)
    both = _probabilities((0, 0, 29, 0.3), (1, 10, 20, 0.6), count=30)  # a broad action all along, one within it
    found = find_segments(both, starts, ends, LABELS)
    assert [s["label"] for s in found] == ["running", "jumping"] and found[0]["windows"] == [0, 29]
    assert found[0]["start_s"] == 0.0 and found[0]["end_s"] == pytest.approx(ends[-1])


def test_average_precision_as_activitynet_computes_it():
    truth = [Segment("a", 0, 10), Segment("a", 20, 30)]
    assert average_precision([Segment("a", 0, 10, 0.9), Segment("a", 20, 30, 0.8)], truth, 0.5) == 1.0
    # a confident false one first: precision 0, 1/2, 2/3 at recalls 0, 0.5, 1, interpolated (the best precision at
    # this recall or more) to 2/3 at both steps
    ranked = [Segment("a", 40, 50, 0.99), Segment("a", 1, 10, 0.9), Segment("a", 21, 30, 0.8)]
    assert average_precision(ranked, truth, 0.5) == pytest.approx(2 / 3)
    late = [Segment("a", 1, 10, 0.9), Segment("a", 40, 50, 0.85), Segment("a", 21, 30, 0.8)]  # 1, 1/2, 2/3
    assert average_precision(late, truth, 0.5) == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    duplicate = [Segment("a", 0, 10, 0.9), Segment("a", 0, 10, 0.8)]  # a true segment is matched once
    assert average_precision(duplicate, truth, 0.5) == pytest.approx(0.5)
    assert average_precision([Segment("a", 5, 15, 0.9)], truth, 0.5) == 0.0  # tIoU 1/3
    scores = evaluate([Segment("a", 0, 10, 0.9), Segment("z", 0, 30, 0.9)], truth + [Segment("b", 0, 5)])
    assert scores["labels"] == 2 and scores["map"][0.5] == pytest.approx(0.25)  # a: 0.5, b: 0; z is not scored
    assert scores["recall"][0.5] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    """The clips of tests/data in another order and other lengths than the games that tuned the defaults (seeds 1
    to 3), half of them followed by seconds of no action: about 95 s, 13 moments."""
    folder = tmp_path_factory.mktemp("moments")
    truth = build_game(DATA, folder / "game.mp4", seed=4)
    write_truth(folder / "game.truth.csv", truth)
    return folder / "game.mp4", folder / "game.truth.csv"


def test_a_game_of_real_clips_gets_its_moments(recognizer, game, tmp_path):
    """The segments find the clips of a game the defaults were not tuned on at the goal (mAP at tIoU 0.5 at least
    0.9, at 0.7 at least 0.7), above merging window top-1s by hand; the command line scores the same."""
    video, truth_csv = game
    truth = read_truth(truth_csv)
    result = recognizer.recognize(video)
    ours, baseline = evaluate(result_segments(result), truth), evaluate(window_top1_segments(result), truth)
    assert ours["map"][0.5] >= 0.9 and ours["map"][0.7] >= 0.7, (ours, baseline)
    assert ours["map"][0.7] > baseline["map"][0.7] and ours["predicted"] < baseline["predicted"]
    for segment in result["segments"]:
        first, last = (result["clips"][i] for i in segment["windows"])
        assert first["start_s"] <= segment["start_s"] < segment["end_s"] <= last["end_s"]
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(result))
    printed = subprocess.run([sys.executable, "-m", "models", "evaluate-segments", "--truth", str(truth_csv), str(saved),
                              "--json"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    scores = json.loads(printed.stdout)
    assert scores["segments"]["map"]["0.7"] == pytest.approx(ours["map"][0.7])
    assert scores["window top-1, merged (baseline)"]["map"]["0.5"] == pytest.approx(baseline["map"][0.5])


def test_evaluate_segments_explains_a_bad_truth_file(tmp_path):
    (tmp_path / "truth.csv").write_text("name,from,to\nx,0,1\n")
    (tmp_path / "result.json").write_text(json.dumps({"segments": [], "clips": []}))
    answer = subprocess.run([sys.executable, "-m", "models", "evaluate-segments", "--truth", str(tmp_path / "truth.csv"),
                             str(tmp_path / "result.json")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2 and "the truth needs the columns label, start_s, end_s" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_live_moments_are_told_once_each_when_they_can_no_longer_change():
    """Window by window, with some dropped: each segment is told once, after the stream has moved on past its
    merge gap; what is open at the end comes with `finish`; the same segments as the whole stream at once."""
    from models.recognition.segments import LiveMoments

    starts, ends = _windows(40)
    probabilities = _probabilities((0, 2, 9, 0.9), (1, 14, 22, 0.9), (0, 30, 39, 0.9), count=40)
    kept = [i for i in range(40) if i not in (5, 17, 18)]  # the live session dropped these
    moments, told = LiveMoments(LABELS), []
    for index in kept:
        for segment in moments.add(index, starts[index], ends[index], probabilities[index]):
            told.append((index, segment))
    told += [(None, segment) for segment in moments.finish()]
    whole = find_segments(probabilities[kept], starts[kept], ends[kept], LABELS)
    assert [s["label"] for _, s in told] == ["running", "jumping", "running"]
    assert [(s["label"], s["start_s"], s["end_s"], s["windows"]) for _, s in told] == [
        (s["label"], s["start_s"], s["end_s"], [kept[i] for i in s["windows"]]) for s in whole]
    first_told, first = told[0]
    assert starts[first_told] - first["end_s"] > 2.0 and first_told - first["windows"][1] > 3  # past gap and smoothing
    assert told[-1][0] is None and moments.finish() == []  # the last one at the end, and only once
