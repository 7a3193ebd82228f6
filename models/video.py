"""Video decoding, frame sampling and clip slicing, shared by serving and training.

Videos are decoded with FFmpeg's libraries through PyAV, with the decoder's own threads, and sampled by
their timestamps at the model's rate (`MODEL_FPS`, 25: I3D was trained on Kinetics at 25 fps, so a 64-frame
window is 2.56 s of the video whatever its rate, variable-rate phone videos included); `source` keeps
every frame. Only the frames sampling keeps are converted: scaled inside FFmpeg (swscale, short side 256)
straight to RGB, then centre-cropped to `(224, 224, 3) uint8`. Frames are kept only while a clip still
needs them: memory is one clip's worth of uint8 frames however long the video is. Clips become floats in
[-1, 1] only when they are batched for the network (`to_model_input`).

Results speak the source's language: each sampled frame keeps its source frame index and its time
(`Timeline`), so a window is reported as source frames and seconds.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
DEFAULT_FPS = 25.0  # used when the container does not say
MODEL_FPS = 25.0  # the rate I3D was trained at (Kinetics converted to 25 fps)
DECODER = "pyav-swscale"  # how frames are prepared; in cache keys, with the sampling


@dataclass(frozen=True)
class Sampling:
    """Which decoded frames the model sees: `fps` frames a second by timestamp (a source frame is repeated
    where the source is slower, dropped where it is faster), or every frame (`fps` None, "source")."""

    fps: float | None = MODEL_FPS

    @classmethod
    def parse(cls, value: str | float | None) -> Sampling:
        """`25`, `"25"`, `"source"` or None (source)."""
        if value is None or str(value).strip().lower() == "source":
            return cls(None)
        fps = float(value)
        if not (math.isfinite(fps) and 1 <= fps <= 120):
            raise ValueError(f"a model frame rate must be 1 to 120 frames a second, or source; got {value!r}")
        return cls(fps)

    @classmethod
    def of_frames(cls, frames_id: str | None) -> Sampling:
        """The sampling a frames id (`ClipSettings.frames_id`, "pyav-swscale/25fps") names; none: source."""
        return cls.parse((frames_id or "source").rpartition("/")[2].removesuffix("fps"))

    @property
    def id(self) -> str:
        """`"25fps"` or `"source"`: in feature cache keys and trained heads' records."""
        return "source" if self.fps is None else f"{self.fps:g}fps"


SOURCE_RATE = Sampling(None)

CROPS = ("centre", "start", "end")  # where the 224 crop sits along the long side: middle, left (top), right (bottom)


@dataclass(frozen=True)
class View:
    """One way of looking at a video, for training on more than one: the 224 crop at the middle or either end of
    the long side, mirrored or not, played faster or slower (`speed` 0.8-1.25, by sampling at the model rate
    over `speed` times as much video), its windows shifted by `offset` model frames. The plain view (the
    default) is what serving sees."""

    crop: str = "centre"
    flip: bool = False
    speed: float = 1.0
    offset: int = 0

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"a view's crop is one of {', '.join(CROPS)}; got {self.crop!r}")
        if not 0.8 - 1e-9 <= self.speed <= 1.25 + 1e-9:
            raise ValueError(f"a view's speed is 0.8 to 1.25; got {self.speed}")
        if self.offset < 0:
            raise ValueError(f"a view's offset is 0 or more model frames; got {self.offset}")

    @property
    def plain(self) -> bool:
        return self == PLAIN_VIEW

    @property
    def id(self) -> str:
        """"" for the plain view, else e.g. "start,flip,x1.25,+16": in feature cache keys beside `frames_id`."""
        if self.plain:
            return ""
        parts = [self.crop] if self.crop != "centre" else []
        parts += ["flip"] if self.flip else []
        parts += [f"x{self.speed:g}"] if self.speed != 1 else []
        parts += [f"+{self.offset}"] if self.offset else []
        return ",".join(parts)

    def sampling(self, base: Sampling) -> Sampling:
        """The sampling that plays the video at `speed`: the model rate over `speed` times the source's time."""
        if self.speed == 1:
            return base
        if base.fps is None:
            raise ValueError("a view at another speed needs a model frame rate (MODEL_FPS), not source sampling")
        return Sampling(base.fps / self.speed)


PLAIN_VIEW = View()
# test-time views: the three crops, mirrored and not (the same windows, so their outputs average window by window)
TEST_TIME_VIEWS = tuple(View(crop, flip) for crop in CROPS for flip in (False, True))


def frames_id(sampling: Sampling = Sampling()) -> str:
    """How frames are decoded and sampled, e.g. "pyav-swscale/25fps": in feature cache keys, trained heads'
    records and accuracy verdicts, since other frames give other features."""
    return f"{DECODER}/{sampling.id}"


class VideoDecodeError(ValueError):
    """The file cannot be opened as a video, or has no decodable frame."""


class VideoLimitError(ValueError):
    """The video is longer or larger than the service accepts; the message names the limit."""


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be at most; None is no limit. Checked on the container's word, then while decoding."""

    max_frames: int | None = None
    max_duration_s: float | None = None
    max_pixels: int | None = None

    def check_frame_size(self, width: int, height: int) -> None:
        if self.max_pixels and width * height > self.max_pixels:
            raise VideoLimitError(f"the video is {width}x{height}; at most {self.max_pixels:,} pixels a frame are accepted")

    def check_length(self, frames: int, fps: float) -> None:
        if self.max_frames and frames > self.max_frames:
            raise VideoLimitError(f"the video has more than {self.max_frames:,} frames, the limit")
        if self.max_duration_s and fps and frames / fps > self.max_duration_s:
            raise VideoLimitError(f"the video is longer than {self.max_duration_s:g} s, the limit")


class Timeline:
    """For each frame the model sees: its source frame index and its time in the source's seconds (from the
    first frame), and how long one such frame lasts. Two compact arrays: a 90-minute game at 25 fps is 2 MB."""

    def __init__(self, frame_s: float = 1 / MODEL_FPS, first: int = 0):
        self.source_index = array("q")
        self.time_s = array("d")
        self.frame_s = frame_s
        self.first = first  # the model frame its first entry is (a part of a video starts later)

    def __len__(self) -> int:
        return len(self.source_index)

    def append(self, source_index: int, time_s: float) -> None:
        self.source_index.append(source_index)
        self.time_s.append(time_s)

    def span(self, start: int, end: int) -> tuple[int, int, float, float]:
        """Model frames [start, end) as `(start_frame, end_frame, start_s, end_s)` of the source (end exclusive;
        a looped short video ends at its last frame)."""
        start, last = start - self.first, min(end - self.first, len(self)) - 1
        return (self.source_index[start], self.source_index[last] + 1, self.time_s[start],
                self.time_s[last] + self.frame_s)


@dataclass
class VideoInfo:
    """What the container says, corrected to what was decoded once decoding ends. `frames` and `fps` are the
    source's; `model_frames` are the frames the model sees after sampling (an estimate until decoding ends),
    `timeline` where each came from."""

    frames: int
    fps: float
    width: int
    height: int
    model_frames: int = 0
    timeline: Timeline = field(default_factory=Timeline, repr=False)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


@dataclass
class Clip:
    """`frames: (clip_len, 224, 224, 3) uint8 RGB` covering source frames [start_frame, end_frame)."""

    index: int
    start_frame: int
    end_frame: int
    frames: np.ndarray = field(repr=False)


def prepare_frame(bgr: np.ndarray) -> np.ndarray:
    """`(H, W, 3) uint8 BGR` -> `(224, 224, 3) uint8 RGB`: short side to 256, centre crop 224."""
    height, width = bgr.shape[:2]
    scale = RESIZE_SHORT_SIDE / min(height, width)
    new_w, new_h = max(CROP_SIZE, round(width * scale)), max(CROP_SIZE, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bgr, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - CROP_SIZE) // 2, (new_w - CROP_SIZE) // 2
    crop = resized[top : top + CROP_SIZE, left : left + CROP_SIZE]
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


INPUT_SCALE, INPUT_OFFSET = np.float32(1 / 127.5), np.float32(1.0)  # uint8 -> [-1, 1]


def to_model_input(clips: np.ndarray) -> np.ndarray:
    """`clips: (N, T, 224, 224, 3) uint8` -> float32 in [-1, 1], the I3D training convention."""
    return clips.astype(np.float32) * INPUT_SCALE - INPUT_OFFSET


def clip_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    """First frame of each clip: every `stride` frames, plus a last clip that ends at the last frame.

    A video shorter than one clip gives one clip at 0 (its frames are looped to fill it).
    """
    if num_frames <= 0:
        return []
    if num_frames <= clip_len:
        return [0]
    starts = list(range(0, num_frames - clip_len + 1, stride))
    if starts[-1] + clip_len < num_frames:
        starts.append(num_frames - clip_len)
    return starts


def _check_slicing(clip_len: int, stride: int) -> None:
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")


def _open(path: str | Path):
    """The container and its first video stream, decoded by as many threads as the codec allows."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError("the file could not be opened as a video") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError("the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: one per core
    return container, stream


def _info(container, stream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    fps = fps if math.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS
    frames = stream.frames
    if not frames:  # MKV and WebM do not say: from the duration
        duration_s = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        frames = max(0, round(duration_s * fps))
    context = stream.codec_context
    return VideoInfo(frames=int(frames), fps=fps, width=int(context.width), height=int(context.height))


def probe(path: str | Path) -> VideoInfo:
    """What the container says of the video at `path`, without decoding it (VideoDecodeError if it opens as
    no video)."""
    container, stream = _open(path)
    with container:
        return _info(container, stream)


class _Preparer:
    """Decoded frames -> `(224, 224, 3) uint8 RGB`, as `prepare_frame` prepares them, inside FFmpeg: a filter
    graph crops the part of the frame that short side 256 and the centre 224x224 keep, then scales it by area
    averaging straight to RGB. Cropping first scales 2.3x fewer pixels of a 16:9 frame: on 1080p H.264 it ran
    at 281 frames/s against 143 for scaling the whole frame and cropping after (2-core Xeon, decoding
    included). Its frames are within 1.2-1.8 grey levels on average of OpenCV's `prepare_frame`."""

    def __init__(self, view: View = PLAIN_VIEW):
        self._graph = None
        self._key: tuple | None = None
        self._view = view

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        key = (frame.width, frame.height, frame.format.name)
        if key != self._key:  # the first frame, or a stream whose size changes midway
            self._graph, self._key = _crop_scale_graph(*key, view=self._view), key
        self._graph.push(frame)
        return self._graph.pull().to_ndarray()


def _crop_scale_graph(width: int, height: int, pixel_format: str, *, view: View = PLAIN_VIEW):
    """Shrinking: the source rectangle the centre crop keeps (exact, not rounded to chroma's even pixels),
    scaled to 224x224 by area averaging. Enlarging (frames under 256): scaled whole, then cropped, in RGB.
    A view's crop sits at either end of the long side instead, and a mirrored view is flipped last."""
    scale = RESIZE_SHORT_SIDE / min(width, height)
    new_w, new_h = max(CROP_SIZE, round(width * scale)), max(CROP_SIZE, round(height * scale))
    place = {"centre": lambda room: room // 2, "start": lambda room: 0, "end": lambda room: room}[view.crop]
    left, top = (place(new_w - CROP_SIZE), (new_h - CROP_SIZE) // 2) if new_w >= new_h else \
        ((new_w - CROP_SIZE) // 2, place(new_h - CROP_SIZE))
    graph = av.filter.Graph()
    chain = [graph.add_buffer(width=width, height=height, format=pixel_format, time_base=Fraction(1, 1000))]
    if scale < 1:
        crop_w, crop_h = round(CROP_SIZE * width / new_w), round(CROP_SIZE * height / new_h)
        x, y = round(left * width / new_w), round(top * height / new_h)
        chain += [graph.add("crop", f"{crop_w}:{crop_h}:{x}:{y}:exact=1"),
                  graph.add("scale", f"{CROP_SIZE}:{CROP_SIZE}:flags=area"), graph.add("format", "rgb24")]
    else:
        chain += [graph.add("scale", f"{new_w}:{new_h}:flags=bilinear"), graph.add("format", "rgb24"),
                  graph.add("crop", f"{CROP_SIZE}:{CROP_SIZE}:{left}:{top}")]
    if view.flip:
        chain.append(graph.add("hflip"))
    chain.append(graph.add("buffersink"))
    for upstream, downstream in zip(chain, chain[1:]):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _timed_frames(container, stream, fps: float) -> Iterator[tuple[av.VideoFrame, float]]:
    """Decoded frames with their time in seconds from the first one. A missing or backward timestamp is
    read as one frame after the last. Decoding stops at the first packet FFmpeg cannot read, as a player's
    would, unless nothing was decoded before it."""
    first = last = None
    decoded = 0
    try:
        for frame in container.decode(stream):
            stamp = frame.time
            if stamp is None or (last is not None and first is not None and stamp - first <= last):
                time_s = 0.0 if last is None else last + 1 / fps
            else:
                first = stamp if first is None else first
                time_s = stamp - first
            last = time_s
            decoded += 1
            yield frame, time_s
    except av.FFmpegError as exc:
        if decoded == 0:
            raise VideoDecodeError(f"no decodable video frame ({exc})") from None


def _sampled(timed: Iterator[tuple[int, av.VideoFrame, float]], sampling: Sampling, fps: float, timeline: Timeline,
             first: int = 0, end: int | None = None, view: View = PLAIN_VIEW) -> Iterator[np.ndarray]:
    """The frames the model sees, prepared, noting each in `timeline`: those from model frame `first` to `end`
    (exclusive; None: the video's end) of `timed`, `(source index, frame, time)` in order. At a model rate F,
    frame i (time t_i) stands for every tick k/F in [t_i, t_i+1): none when the source is faster, several
    when slower; only the frames that stand for a tick are converted."""
    prepare = _Preparer(view)
    if sampling.fps is None:
        for index, frame, time_s in timed:
            if index >= first:
                if end is not None and index >= end:
                    return
                timeline.append(index, time_s)
                yield prepare(frame)
        return
    rate = sampling.fps
    held: tuple[int, av.VideoFrame, float] | None = None  # the last frame, until the next one says how long it lasts
    tick = first

    def emit(until_s: float) -> Iterator[np.ndarray]:
        nonlocal tick
        index, frame, time_s = held
        ticks = 0
        while tick / rate < until_s - 1e-9 and (end is None or tick < end):
            timeline.append(index, tick / rate)
            tick += 1
            ticks += 1
        if ticks:
            prepared = prepare(frame)
            for _ in range(ticks):
                yield prepared

    for index, frame, time_s in timed:
        if held is not None:
            yield from emit(time_s)
            if end is not None and tick >= end:
                return
        held = (index, frame, time_s)
    if held is not None:  # the last frame lasts one source frame; a video of one frame still gives one
        yield from emit(held[2] + 1 / fps if tick else max(held[2] + 1 / fps, 1e-6))


def iter_frames(path: str | Path, *, info: VideoInfo | None = None, limits: VideoLimits = VideoLimits(),
                sampling: Sampling = Sampling(), view: View = PLAIN_VIEW) -> Iterator[np.ndarray]:
    """Decode `path` and yield the frames the model sees, `(224, 224, 3) uint8 RGB`, sampled as `sampling`
    says (seen as `view` says: training's other views), checking `limits` as it goes.

    Pass `info` to have it filled from the container (`model_frames` estimated), then corrected once the
    iterator is exhausted: `frames` to the frames decoded, `model_frames` to those yielded, `timeline` where
    each came from. Raises VideoDecodeError when the file opens as no video or no frame decodes,
    VideoLimitError when it exceeds `limits`.
    """
    info = info if info is not None else VideoInfo(0, 0.0, 0, 0)
    sampling = view.sampling(sampling)
    container, stream = _open(path)
    with container:
        opened = _info(container, stream)
        info.fps, info.width, info.height, info.frames = opened.fps, opened.width, opened.height, opened.frames
        info.model_frames = opened.frames if sampling.fps is None else round(opened.frames / opened.fps * sampling.fps)
        info.timeline = Timeline(1 / (sampling.fps or opened.fps))
        limits.check_frame_size(opened.width, opened.height)
        limits.check_length(opened.frames, opened.fps)
        decoded = 0

        def counted() -> Iterator[tuple[int, av.VideoFrame, float]]:
            nonlocal decoded
            for frame, time_s in _timed_frames(container, stream, opened.fps):
                decoded += 1
                if decoded % 256 == 0:  # containers can lie about their length
                    limits.check_length(decoded, opened.fps)
                yield decoded - 1, frame, time_s

        count = 0
        for frame in _sampled(counted(), sampling, opened.fps, info.timeline, first=view.offset, view=view):
            count += 1
            yield frame
    if count == 0:
        raise VideoDecodeError("no decodable video frame")
    info.frames, info.model_frames = decoded, count


@dataclass
class StreamIndex:
    """Every frame's time (seconds from the first, in presentation order) and the keyframes', read from the
    container's packets without decoding: where a part of a long video starts, and which source frame a
    time is. `start` is the first frame's time on the stream's clock."""

    times: array
    keyframes: array
    start: float
    fps: float
    width: int
    height: int

    @property
    def frames(self) -> int:
        return len(self.times)

    def model_frames(self, sampling: Sampling) -> int:
        """How many frames the model sees, exactly as `iter_frames` samples them."""
        if sampling.fps is None:
            return self.frames
        until, rate = self.times[-1] + 1 / self.fps, sampling.fps
        count = max(0, int(until * rate) - 2)
        while count / rate < until - 1e-9:
            count += 1
        return max(count, 1)

    def source_index(self, time_s: float) -> int:
        return bisect.bisect_left(self.times, time_s - 1e-6)

    def keyframe_at_or_before(self, time_s: float) -> float:
        return self.keyframes[max(0, bisect.bisect_right(self.keyframes, time_s + 1e-6) - 1)]


def index_stream(path: str | Path) -> StreamIndex | None:
    """The video's `StreamIndex`, from its packets (a read of the file, no decoding); None when its timestamps
    cannot place a frame (missing, repeated; AVI's), or the first packet is no keyframe: then only one pass
    decodes it."""
    container, stream = _open(path)
    with container:
        if "avi" in container.format.name.split(","):  # AVI stamps packets, not frames (packed B-frames differ)
            return None
        opened = _info(container, stream)
        stamps, keys = [], []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    return None
                stamps.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.FFmpegError:
            return None
        stamps.sort()
        if not stamps or not keys or min(keys) != stamps[0] or len(set(stamps)) != len(stamps):
            return None
        base, unit = stamps[0], float(stream.time_base)
        return StreamIndex(times=array("d", ((pts - base) * unit for pts in stamps)),
                           keyframes=array("d", sorted((pts - base) * unit for pts in keys)), start=base * unit,
                           fps=opened.fps, width=opened.width, height=opened.height)


def iter_model_frames(path: str | Path, index: StreamIndex, first: int, end: int, *, sampling: Sampling = Sampling(),
                      timeline: Timeline | None = None, threads: int = 0) -> Iterator[np.ndarray]:
    """The frames the model sees from model frame `first` to `end` (exclusive), decoded from the keyframe before
    them: the very frames one pass over the whole video gives there (`iter_frames`), noted in `timeline` (its
    `first` set to `first`). Raises VideoDecodeError where the file is damaged. `threads`: the decoder's (0: one a core)."""
    timeline = timeline if timeline is not None else Timeline(first=first)
    timeline.first, timeline.frame_s = first, 1 / (sampling.fps or index.fps)
    target = first / sampling.fps if sampling.fps else index.times[first]
    keyframe = index.keyframe_at_or_before(target)
    for seek in (keyframe > 0, False):  # a seek that lands after the keyframe: again from the start
        container, stream = _open(path)
        stream.thread_count = threads
        with container:
            if seek:
                container.seek(round((index.start + keyframe) / float(stream.time_base)), stream=stream, backward=True)
            frames = _timed_from(container, stream, index, target)
            first_frame = next(frames, None)
            if first_frame is not None and first_frame[2] > target + 1e-6 and seek:
                continue
            yield from _sampled(itertools.chain([first_frame] if first_frame else [], frames), sampling, index.fps,
                                timeline, first, end)
        break
    if len(timeline) < end - first:
        raise VideoDecodeError(f"the video ends at model frame {first + len(timeline)}, before {end}: it is damaged")


def _timed_from(container, stream, index: StreamIndex, target: float) -> Iterator[tuple[int, av.VideoFrame, float]]:
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                raise VideoDecodeError("a frame without a timestamp")
            time_s = frame.time - index.start
            yield index.source_index(time_s), frame, time_s
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"the video is damaged near {target:.1f} s ({exc})") from None


def loop_to_length(frames: list[np.ndarray], length: int) -> np.ndarray:
    """A video shorter than one clip, `frames` looped to `(length, 224, 224, 3)`."""
    return np.stack([frames[i % len(frames)] for i in range(length)])


def iter_clips(
    path: str | Path, *, clip_len: int = 64, stride: int = 32, info: VideoInfo | None = None,
    limits: VideoLimits = VideoLimits(), sampling: Sampling = Sampling(), view: View = PLAIN_VIEW,
) -> Iterator[Clip]:
    """Decode `path` and yield its clips in order, as `clip_starts` places them over the frames the model sees,
    while decoding. A clip's `start_frame` and `end_frame` count those frames (`info.timeline` maps them to
    the source). `info`, `sampling` and the errors are as `iter_frames` says.
    """
    _check_slicing(clip_len, stride)
    window: deque[np.ndarray] = deque(maxlen=clip_len)  # the last clip_len prepared frames
    count = 0
    next_start = 0
    index = 0
    with contextlib.closing(iter_frames(path, info=info, limits=limits, sampling=sampling, view=view)) as frames:
        for frame in frames:
            window.append(frame)
            count += 1
            if count == next_start + clip_len:
                yield Clip(index, next_start, count, np.stack(window))
                index += 1
                next_start += stride
    if count < clip_len:  # shorter than one clip: loop it
        yield Clip(0, 0, count, loop_to_length(list(window), clip_len))
    elif (next_start - stride) + clip_len < count:  # tail: a last clip ending at the last frame
        yield Clip(index, count - clip_len, count, np.stack(window))


def read_frames(path: str | Path, *, max_frames: int | None = None, sampling: Sampling = Sampling(),
                view: View = PLAIN_VIEW) -> np.ndarray:
    """The frames the model sees of a (short) video, `(T, 224, 224, 3) uint8`. For tools and tests, not serving."""
    frames = []
    with contextlib.closing(iter_frames(path, sampling=sampling, view=view)) as stream:
        for frame in stream:
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    return np.stack(frames)


def write_grey_ramp(path: Path, num_frames: int, *, size=(320, 240), fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """A synthetic video whose frame i is a flat grey of value 3 * (i % 80) (tests tell frames apart by it;
    the service warms up on one)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc}")
    for i in range(num_frames):
        writer.write(np.full((size[1], size[0], 3), 3 * (i % 80), np.uint8))
    writer.release()
    return path
