"""Decoding, frame preparation and clip slicing, on synthetic videos whose frames can be told apart."""

from __future__ import annotations

from fractions import Fraction

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from conftest import ARCHERY_AVI, DATA, write_video
from models.containers import sniff_container
from models.video import (
    SOURCE_RATE,
    Sampling,
    VideoDecodeError,
    VideoInfo,
    VideoLimitError,
    VideoLimits,
    clip_starts,
    iter_clips,
    iter_frames,
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


def _ramp_values(frames) -> list[int]:
    return [int(round(float(frame.mean()) / 3)) for frame in frames]


def test_a_fast_video_is_sampled_at_the_model_rate(tmp_path):
    """50 fps in, 25 a second out: every other frame, each remembered as its source frame and time."""
    path = write_video(tmp_path / "fast.avi", 100, fps=50.0)
    info = VideoInfo(0, 0.0, 0, 0)
    frames = list(iter_frames(path, info=info))
    assert (info.frames, info.fps, info.model_frames) == (100, pytest.approx(50.0), 50)
    assert _ramp_values(frames) == [i % 80 for i in range(0, 100, 2)]
    assert list(info.timeline.source_index) == list(range(0, 100, 2))
    np.testing.assert_allclose(info.timeline.time_s, np.arange(50) / 25, atol=1e-9)
    assert info.timeline.span(0, 32) == (0, 63, 0.0, pytest.approx(32 / 25))  # source frames [0, 63), 1.28 s


def test_a_slow_video_is_repeated_up_to_the_model_rate(tmp_path):
    """10 fps in: each frame stands for the 2 or 3 ticks of 1/25 s it covers, so 2 s are still 50 frames."""
    path = write_video(tmp_path / "slow.avi", 20, fps=10.0)
    info = VideoInfo(0, 0.0, 0, 0)
    values = _ramp_values(iter_frames(path, info=info))
    assert len(values) == info.model_frames == 50 and info.frames == 20
    assert values == [int(k / 2.5) for k in range(50)]  # the latest source frame at or before each tick


def test_source_rate_keeps_every_frame(tmp_path):
    path = write_video(tmp_path / "fast.avi", 100, fps=50.0)
    info = VideoInfo(0, 0.0, 0, 0)
    assert _ramp_values(iter_frames(path, info=info, sampling=SOURCE_RATE)) == [i % 80 for i in range(100)]
    assert info.model_frames == 100 and info.timeline.span(0, 64) == (0, 64, 0.0, pytest.approx(64 / 50))
    assert Sampling.parse("source") == SOURCE_RATE and Sampling.parse("30").id == "30fps"
    with pytest.raises(ValueError):
        Sampling.parse("0")


def test_a_variable_rate_video_is_sampled_by_its_timestamps(tmp_path):
    """A phone-like video whose frames come at irregular times: the model sees, at each tick of 1/25 s, the
    frame shown then, and the windows' times are the video's own."""
    import av

    times = [0.0, 0.03, 0.05, 0.2, 0.21, 0.5, 0.9, 0.92, 0.94, 1.3]
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, time_s in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 25 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    info = VideoInfo(0, 0.0, 0, 0)
    values = [int(round(float(frame.mean()) / 25)) for frame in iter_frames(path, info=info)]
    shown = [max(i for i, t in enumerate(times) if t <= k / 25 + 1e-9) for k in range(len(values))]
    assert values == shown and info.frames == len(times)
    assert len(values) == pytest.approx(1.3 * 25, abs=2)  # the last frame lasts one frame at the stream's rate
    assert list(info.timeline.source_index) == shown


@pytest.mark.parametrize("name", ["archery__paddlevideo_example.avi", "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4",
                                  "cricket__kinetics_i3d_v_CricketShot_g04_c01_rgb.gif",
                                  "pancake__decord_flipping_a_pancake.mkv"])
def test_the_decoder_prepares_frames_as_opencv_does(name):
    """FFmpeg's crop and scale give the frames OpenCV's `prepare_frame` gives, to a grey level or two."""
    import cv2

    capture = cv2.VideoCapture(str(DATA / name))
    expected = np.stack([prepare_frame(capture.read()[1]) for _ in range(16)])
    capture.release()
    got = read_frames(DATA / name, max_frames=16, sampling=SOURCE_RATE)
    assert np.abs(got.astype(int) - expected).mean() < 2.5
