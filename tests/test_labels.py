"""Label order and ranking helpers."""

from __future__ import annotations

import hashlib

import numpy as np

from models.labels import KINETICS_LABELS_FILE, kinetics_labels, softmax, top_k
from models.recognition.heads import KineticsHead


def test_kinetics_labels_are_the_i3d_order():
    assert hashlib.md5(KINETICS_LABELS_FILE.read_bytes()).hexdigest() == "41a47d45938e2f6e4f3eac44b26376e5"
    labels = kinetics_labels()
    assert len(labels) == 400 and labels[0] == "abseiling" and labels[-1] == "zumba"


def test_top_k_ranks_and_clamps():
    probs = np.array([0.1, 0.6, 0.3])
    assert top_k(probs, ("a", "b", "c"), 2) == [{"label": "b", "confidence": 0.6}, {"label": "c", "confidence": 0.3}]
    assert len(top_k(probs, ("a", "b", "c"), 10)) == 3


def test_kinetics_head_averages_clip_probabilities():
    logits = np.zeros((2, 400), np.float32)
    logits[0, 5] = logits[1, 7] = 50.0
    probs = KineticsHead().video_probabilities(logits, np.zeros((2, 1024), np.float32))
    assert probs.shape == (400,) and abs(probs.sum() - 1) < 1e-5
    assert abs(probs[5] - 0.5) < 1e-3 and abs(probs[7] - 0.5) < 1e-3
    np.testing.assert_allclose(softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])
