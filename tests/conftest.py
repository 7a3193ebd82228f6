"""Shared fixtures. Tests use the real converted I3D (built by `make setup`) on real clips in tests/data."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA = Path(__file__).resolve().parent / "data"

# Real clips and the Kinetics-400 top-1 a correct I3D gives them (tests/data/CLIPS.md).
EXPECTED_TOP1 = {
    "archery__paddlevideo_example.avi": "archery",
    "armwrestling__mmaction2_demo.mp4": "arm wrestling",
    "baseball__askanything_hitting_baseball.mp4": "hitting baseball",
    "basketball__mmaction2_shooting_drill.mp4": "shooting basketball",
    "bassguitar__askanything_playing_guitar.mp4": "playing bass guitar",
    "cleaningpool__mmaction2_test.mp4": "cleaning pool",
    "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4": "playing cricket",
    "cricket__kinetics_i3d_v_CricketShot_g04_c01_rgb.gif": "playing cricket",
    "makeup__mmaction2_test_ApplyEyeMakeup.avi": "filling eyebrows",
    "pancake__decord_flipping_a_pancake.mkv": "flipping pancake",
    "taichi__stgcn_ta_chi.mp4": "tai chi",
    "weightlifting__stgcn_clean_and_jerk.mp4": "clean and jerk",
    "yoga__askanything_yoga.mp4": "yoga",
    "yoga__uniformer_Tw2yXa6CzWE.mp4": "yoga",
}
CRICKET_MP4 = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"  # 79 frames: two clips, cheap
ARCHERY_AVI = DATA / "archery__paddlevideo_example.avi"  # 131 frames


def write_video(path: Path, num_frames: int, *, size=(320, 240), fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """A synthetic video whose frame i is a flat grey of value 3 * (i % 80), so tests can tell frames apart."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(num_frames):
        writer.write(np.full((size[1], size[0], 3), 3 * (i % 80), np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="session")
def saved_model_dir() -> Path:
    from models.convert import DEFAULT_SAVED_MODEL

    if not (DEFAULT_SAVED_MODEL / "saved_model.pb").is_file():
        pytest.fail(f"{DEFAULT_SAVED_MODEL} is missing: run `make setup` (make test does it)")
    return DEFAULT_SAVED_MODEL


@pytest.fixture(scope="session")
def extractor(saved_model_dir):
    from models.extractor import I3DExtractor

    return I3DExtractor(str(saved_model_dir))


@pytest.fixture(scope="session")
def recognizer(extractor):
    from models.recognizer import ActionRecognizer

    return ActionRecognizer(extractor)
