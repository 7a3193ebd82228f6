"""Model-rate sampling on real clips (MODEL_FPS=25): a 60 fps version of a clip, made with FFmpeg's motion
interpolation, is ranked as the clip is, from about as many windows, each 2.56 s of the video."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import DATA, EXPECTED_TOP1

pytestmark = [pytest.mark.slow]

CLIPS = ["basketball__mmaction2_shooting_drill.mp4", "yoga__askanything_yoga.mp4",  # 29.97 and 30 fps
         "armwrestling__mmaction2_demo.mp4", "archery__paddlevideo_example.avi"]  # 28 and 25 fps


@pytest.fixture(scope="module")
def at_60fps(tmp_path_factory) -> dict[str, Path]:
    import imageio_ffmpeg

    out = tmp_path_factory.mktemp("60fps")
    made = {}
    for name in CLIPS:
        made[name] = out / f"{Path(name).stem}.60fps.mp4"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(DATA / name),
                        "-vf", "minterpolate=fps=60", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                        str(made[name])], check=True, timeout=300)
    return made


@pytest.mark.parametrize("name", CLIPS)
def test_a_60fps_clip_ranks_as_its_original(recognizer, at_60fps, name):
    original = recognizer.recognize(DATA / name, top_k_actions=5)
    fast = recognizer.recognize(at_60fps[name], top_k_actions=5)
    assert fast["video"]["fps"] == pytest.approx(60) and fast["video"]["frames"] > 1.9 * original["video"]["frames"]
    assert fast["actions"][0]["label"] == original["actions"][0]["label"] == EXPECTED_TOP1[name]
    assert abs(len(fast["clips"]) - len(original["clips"])) <= 1  # at the source rate: more than twice as many
    for clip in fast["clips"]:
        assert clip["end_s"] - clip["start_s"] == pytest.approx(2.56, abs=0.01)
        assert clip["end_frame"] - clip["start_frame"] == pytest.approx(2.56 * 60, abs=2)  # source frames
    assert fast["clips"][-1]["end_s"] == pytest.approx(original["clips"][-1]["end_s"], abs=0.1)
