"""Decoding, frame preparation and clip slicing, on synthetic videos whose frames can be told apart."""

from __future__ import annotations

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from conftest import ARCHERY_AVI, DATA, write_video
from models.containers import sniff_container
from models.video import (
    VideoDecodeError,
    VideoInfo,
    VideoLimitError,
    VideoLimits,
    clip_starts,
    iter_clips,
    prepare_frame,
    read_frames,
    to_model_input,
)


@pytest.mark.parametrize(
    ("num_frames", "clip_len", "stride", "expected"),
    [
        (0, 64, 32, []),
        (1, 64, 32, [0]),  # shorter than a clip: one looped clip
        (63, 64, 32, [0]),
        (64, 64, 32, [0]),  # exactly one clip
        (128, 64, 32, [0, 32, 64]),  # exact multiple: no extra tail clip
        (130, 64, 32, [0, 32, 64, 66]),  # tail clip ends at the last frame
        (79, 64, 32, [0, 15]),
        (300, 64, 32, [0, 32, 64, 96, 128, 160, 192, 224, 236]),
        (100, 16, 50, [0, 50, 84]),  # stride longer than a clip still ends on the last frame
    ],
)
def test_clip_starts(num_frames, clip_len, stride, expected):
    starts = clip_starts(num_frames, clip_len, stride)
    assert starts == expected
    if num_frames >= clip_len:
        assert starts[-1] + clip_len == num_frames  # every frame up to the last is covered


def _frame_values(clip) -> list[int]:
    # Synthetic frame i is a flat grey 3 * (i % 80); MJPG is lossy by a grey level or so.
    return [int(round(float(frame.mean()) / 3)) for frame in clip.frames]


@pytest.mark.parametrize("num_frames", [20, 64, 96, 100])
def test_iter_clips_matches_clip_starts_and_frames(tmp_path, num_frames):
    path = write_video(tmp_path / "v.avi", num_frames)
    info = VideoInfo(0, 0.0, 0, 0)
    clips = list(iter_clips(path, clip_len=32, stride=16, info=info))
    assert info.frames == num_frames and info.fps == pytest.approx(25.0)
    assert (info.width, info.height) == (320, 240)
    assert [c.start_frame for c in clips] == clip_starts(num_frames, 32, 16)
    for index, clip in enumerate(clips):
        assert clip.index == index
        assert clip.frames.shape == (32, 224, 224, 3) and clip.frames.dtype == np.uint8
        assert clip.end_frame == min(clip.start_frame + 32, num_frames)
        if num_frames >= 32:
            assert _frame_values(clip) == [i % 80 for i in range(clip.start_frame, clip.end_frame)]


def test_short_video_is_looped(tmp_path):
    path = write_video(tmp_path / "short.avi", 5)
    (clip,) = iter_clips(path, clip_len=12, stride=6)
    assert (clip.start_frame, clip.end_frame) == (0, 5)
    assert _frame_values(clip) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_single_frame_video_gives_one_clip(tmp_path):
    path = write_video(tmp_path / "one.avi", 1)
    clips = list(iter_clips(path, clip_len=64, stride=32))
    assert len(clips) == 1 and clips[0].frames.shape[0] == 64


@pytest.mark.parametrize("payload", [b"", b"this is not a video", bytes(range(256)) * 64])
def test_not_a_video_raises(tmp_path, payload):
    path = tmp_path / "fake.mp4"
    path.write_bytes(payload)
    with pytest.raises(VideoDecodeError):
        list(iter_clips(path))


def test_truncated_video_decodes_what_it_can_or_says_why(tmp_path):
    data = ARCHERY_AVI.read_bytes()
    path = tmp_path / "truncated.avi"
    path.write_bytes(data[: len(data) // 2])
    try:
        clips = list(iter_clips(path))
    except VideoDecodeError:
        return
    assert clips and all(c.frames.shape == (64, 224, 224, 3) for c in clips)


@pytest.mark.parametrize(("height", "width"), [(240, 320), (320, 240), (100, 100), (1080, 1920), (224, 224)])
def test_prepare_frame_short_side_centre_crop(height, width):
    bgr = np.zeros((height, width, 3), np.uint8)
    bgr[..., 0] = 255  # blue in BGR
    rgb = prepare_frame(bgr)
    assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8
    assert rgb[..., 2].min() == 255 and rgb[..., 0].max() == 0  # converted to RGB


def test_prepare_frame_keeps_the_centre():
    bgr = np.zeros((256, 512, 3), np.uint8)
    bgr[:, 256 - 100 : 256 + 100] = 200  # a centred stripe 200 px wide survives the crop whole
    rgb = prepare_frame(bgr)
    assert rgb[:, 12:212].min() == 200 and rgb[:, :5].max() == 0 and rgb[:, -5:].max() == 0


def test_model_input_range():
    clips = np.array([0, 127, 255], np.uint8).reshape(1, 3, 1, 1, 1)
    values = to_model_input(clips).ravel()
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, [-1.0, -0.00392157, 1.0], atol=1e-6)


@pytest.mark.parametrize("name", ["archery__paddlevideo_example.avi", "pancake__decord_flipping_a_pancake.mkv",
                                  "cricket__kinetics_i3d_v_CricketShot_g04_c01_rgb.gif"])
def test_real_containers_decode(name):
    frames = read_frames(DATA / name, max_frames=10)
    assert frames.shape == (10, 224, 224, 3)


@pytest.mark.parametrize(("name", "container"), [
    ("archery__paddlevideo_example.avi", "avi"), ("cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4", "mp4/mov"),
    ("pancake__decord_flipping_a_pancake.mkv", "mkv/webm"), ("cricket__kinetics_i3d_v_CricketShot_g04_c01_rgb.gif", "gif"),
])
def test_container_is_sniffed_from_bytes(tmp_path, name, container):
    renamed = tmp_path / "upload.txt"  # the name says nothing
    renamed.write_bytes((DATA / name).read_bytes())
    assert sniff_container(renamed) == container


@pytest.mark.parametrize("payload", [b"", b"RIFF", b"hello world, not a video", b"%PDF-1.7\n" + bytes(100)])
def test_non_containers_are_not_sniffed(tmp_path, payload):
    path = tmp_path / "x.mp4"
    path.write_bytes(payload)
    assert sniff_container(path) is None


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(num_frames=st.integers(0, 5000), clip_len=st.integers(1, 300), stride=st.integers(1, 300))
def test_clip_starts_cover_every_frame(num_frames, clip_len, stride):
    starts = clip_starts(num_frames, clip_len, stride)
    if num_frames == 0:
        assert starts == []
        return
    assert starts[0] == 0 and starts == sorted(set(starts))
    if num_frames <= clip_len:
        assert starts == [0]
        return
    assert all(0 <= s <= num_frames - clip_len for s in starts)
    assert starts[-1] + clip_len == num_frames  # the tail is covered
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))  # no gap longer than the stride
    if stride <= clip_len:  # overlapping or touching clips leave no frame out
        covered = set()
        for s in starts:
            covered.update(range(s, s + clip_len))
        assert covered == set(range(num_frames))


def test_limits_stop_long_and_large_videos(tmp_path):
    path = write_video(tmp_path / "v.avi", 300, size=(320, 240))
    with pytest.raises(VideoLimitError, match="more than 100 frames"):
        list(iter_clips(path, limits=VideoLimits(max_frames=100)))
    with pytest.raises(VideoLimitError, match="longer than 5 s"):
        list(iter_clips(path, limits=VideoLimits(max_duration_s=5)))
    with pytest.raises(VideoLimitError, match="320x240"):
        list(iter_clips(path, limits=VideoLimits(max_pixels=320 * 200)))
    assert len(list(iter_clips(path, limits=VideoLimits(max_frames=300, max_duration_s=12)))) == 9


@pytest.mark.parametrize(("suffix", "codec", "container"), [(".webm", "libvpx-vp9", "mkv/webm"),
                                                            (".mov", "libx264", "mp4/mov")])
def test_webm_and_mov_decode(tmp_path, suffix, codec, container):
    import subprocess

    import imageio_ffmpeg

    target = tmp_path / f"cricket{suffix}"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i",
                    str(DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"), "-c:v", codec, str(target)],
                   check=True, timeout=120)
    assert sniff_container(target) == container
    assert read_frames(target).shape == (79, 224, 224, 3)
