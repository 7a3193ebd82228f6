"""Highlight reels: every moment of the chosen actions, padded, joined where the pads overlap, cut from the video
into one MP4 with its audio. The API cuts them from a job's kept upload, the page from its own copy.

A reel is cut one of two ways, never both (pieces of two encodings cannot be joined without re-encoding):
stream copy, when the video is H.264 and every piece can start at a keyframe a little before its padded start
(`copy_slack_s`: no quality lost, seconds for a game); else every piece is re-encoded (H.264 + AAC), frame exact."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg

COPYABLE_VIDEO = {"h264"}  # what every browser plays in MP4
ENCODED_BYTES_PER_S = 1_500_000  # what a re-encoded second of 1080p may take at worst (CRF 20, veryfast), for the disk check


class ReelError(RuntimeError):
    """The reel could not be made: the video is unreadable, or ffmpeg failed."""


class ReelTooSlow(ReelError):
    """Cutting took longer than its time limit."""


class NoRoomForReel(ReelError):
    """The reel would not fit on the disk beside the reserve it must leave."""


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def copy_slack_s(pad_s: float) -> float:
    """How much earlier than asked a stream-copied piece may start (at the keyframe before it): as much again as
    its padding, between 0.5 and 2 s (cameras and broadcasts put a keyframe every 0.5-2 s)."""
    return max(0.5, min(2.0, pad_s))


def labels_without_moments(result: dict, labels: Iterable[str]) -> list[str]:
    """The asked labels that no segment of `result` has."""
    found = {segment["label"] for segment in result.get("segments", [])}
    return [label for label in labels if label not in found]


def reel_spans(result: dict, labels: Iterable[str], *, pad_s: float) -> list[Span]:
    """The stretches a reel of `labels` shows: each of their segments padded by `pad_s` both sides (within the
    video), in time order, joined where they overlap or touch."""
    wanted = set(labels)
    duration = result["video"].get("duration_s") or max((s["end_s"] for s in result.get("segments", [])), default=0)
    return joined((max(0.0, s["start_s"] - pad_s), min(duration, s["end_s"] + pad_s))
                  for s in result.get("segments", []) if s["label"] in wanted)


def joined(stretches: Iterable[tuple[float, float]]) -> list[Span]:
    spans: list[Span] = []
    for start, end in sorted(stretches):
        if spans and start <= spans[-1].end:
            spans[-1] = Span(spans[-1].start, max(spans[-1].end, end))
        elif end > start:
            spans.append(Span(start, end))
    return spans


def reel_name(labels: Iterable[str], pad_s: float) -> str:
    """A file name part that tells one reel from another: the same labels and padding, the same reel."""
    key = "\n".join(sorted(set(labels))) + f"\n{pad_s:.2f}"
    return "reel-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def find_reel(folder: Path, owner: str, labels: Iterable[str], pad_s: float) -> tuple[Path, str] | None:
    """(the reel, how it was cut) if it was made before."""
    for mode in ("copy", "encode"):
        if (made := folder / f"{owner}.{reel_name(labels, pad_s)}.{mode}.mp4").is_file():
            return made, mode
    return None


def kept_reel(source: Path, result: dict, labels: Iterable[str], folder: Path, owner: str, *, pad_s: float,
              timeout_s: float = 600, disk_reserve_bytes: int = 0,
              publish: Callable[[Path, Path], None] = os.replace) -> tuple[Path, str]:
    """(the reel, how it was cut): made once as `folder/<owner>.<reel name>.<copy|encode>.mp4`, then found there
    (`publish(partial, made)` moves it in place). Processes asking for the same reel at once wait for the first (a
    lock file beside it), within `timeout_s`."""
    labels, deadline = sorted(set(labels)), time.monotonic() + timeout_s
    stem = f"{owner}.{reel_name(labels, pad_s)}"
    folder.mkdir(parents=True, exist_ok=True)
    with one_maker(folder / f"{stem}.lock", deadline):
        if (made := find_reel(folder, owner, labels, pad_s)) is not None:
            return made
        partial = folder / f"{stem}.partial.mp4"
        try:
            mode = make_reel(source, result, labels, partial, pad_s=pad_s,
                             timeout_s=max(1.0, deadline - time.monotonic()), disk_reserve_bytes=disk_reserve_bytes)
            made = folder / f"{stem}.{mode}.mp4"
            publish(partial, made)
        finally:
            partial.unlink(missing_ok=True)
        return made, mode


@contextlib.contextmanager
def one_maker(lock_path: Path, deadline: float) -> Iterator[None]:
    """Held while one process makes a file that others asking for it at once wait for (until `deadline`)."""
    with open(lock_path, "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ReelTooSlow("the same reel is being made for another request; try again shortly") from None
                time.sleep(0.1)
        yield


@dataclass(frozen=True)
class Source:
    """What the cut needs to know of the video: its codecs and the keyframe at or before each span's start."""

    video_codec: str
    audio_codec: str | None
    keyframes: list[float | None]  # per span: the keyframe to copy from, None when none is close enough


def read_source(path: Path, spans: list[Span], slack_s: float) -> Source:
    """Seek to each span's start and read the keyframe there (no decoding): a few packets per span."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ReelError("the video has no video stream")
            stream = container.streams.video[0]
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
            base, unit = stream.start_time or 0, stream.time_base
            keyframes = []
            for span in spans:
                target = base + int((span.start + 1e-3) / unit)
                container.seek(target, stream=stream, backward=True, any_frame=False)
                at = None
                for packet in container.demux(stream):
                    if packet.pts is not None and packet.is_keyframe:
                        at = float((packet.pts - base) * unit)
                    break
                keyframes.append(at if at is not None and 0 <= span.start - at + 1e-6 <= slack_s else None)
            return Source(stream.codec_context.name, audio, keyframes)
    except av.FFmpegError as exc:
        raise ReelError(f"the video can no longer be read: {exc}") from None


def estimated_bytes(path: Path, duration_s: float, spans: list[Span], copy: bool) -> int:
    seconds = sum(span.seconds for span in spans)
    share = path.stat().st_size * seconds / max(duration_s, 1e-3)
    return int(share * 1.1 if copy else max(share, 0) + seconds * ENCODED_BYTES_PER_S)


def make_reel(source: Path, result: dict, labels: Iterable[str], target: Path, *, pad_s: float = 2.0,
              timeout_s: float = 600, disk_reserve_bytes: int = 0, allow_copy: bool = True) -> str:
    """Write `target` (.mp4): the reel of `labels` in `result` (the labels must have segments), cut from `source`.
    Returns how it was cut: "copy" or "encode" (always, without `allow_copy`). Nothing is left behind if it fails."""
    spans = reel_spans(result, labels, pad_s=pad_s)
    if not spans:
        raise ReelError("none of those actions has a moment in this result")
    found = read_source(source, spans, copy_slack_s(pad_s))
    copy = allow_copy and found.video_codec in COPYABLE_VIDEO and all(k is not None for k in found.keyframes)
    if copy:  # each piece from its keyframe, a little earlier; then joined again where they meet
        spans = joined((keyframe, span.end) for keyframe, span in zip(found.keyframes, spans))
    need = estimated_bytes(source, result["video"].get("duration_s") or 0, spans, copy)
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free - need < disk_reserve_bytes:
        raise NoRoomForReel(f"a reel of about {need / 1e6:.0f} MB would not leave the {disk_reserve_bytes / 1e6:.0f} MB "
                            "of free disk this service keeps")
    deadline = time.monotonic() + timeout_s
    work = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent))
    try:
        pieces = [_cut(source, span, work / f"{i:05d}.mp4", copy, found.audio_codec, deadline)
                  for i, span in enumerate(spans)]
        os.replace(_join(pieces, work, deadline), target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "copy" if copy else "encode"


@dataclass(frozen=True)
class Piece:
    """A stretch of one of several videos, for a reel across them."""

    source: Path
    span: Span


def make_mixed_reel(pieces: list[Piece], target: Path, *, width: int = 1280, height: int = 720, fps: int = 30,
                    timeout_s: float = 600, disk_reserve_bytes: int = 0) -> None:
    """Write `target` (.mp4): `pieces` of several videos one after another, each re-encoded to one frame size
    (letterboxed), rate and audio layout (silence where a video has none), so that they join. Nothing is left
    behind if it fails."""
    if not pieces:
        raise ReelError("no moments to put in the reel")
    seconds = sum(piece.span.seconds for piece in pieces)
    need = int(seconds * ENCODED_BYTES_PER_S)
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free - need < disk_reserve_bytes:
        raise NoRoomForReel(f"a reel of about {need / 1e6:.0f} MB would not leave the {disk_reserve_bytes / 1e6:.0f} MB "
                            "of free disk this service keeps")
    deadline = time.monotonic() + timeout_s
    frame = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,"
             f"setsar=1,fps={fps}")
    work = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent))
    try:
        cut = []
        for i, piece in enumerate(pieces):
            has_audio = read_source(piece.source, [piece.span], 0).audio_codec is not None
            silence = [] if has_audio else ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000"]
            cut.append(work / f"{i:05d}.mp4")
            _ffmpeg(["-ss", f"{piece.span.start:.3f}", "-i", str(piece.source), *silence, "-t", f"{piece.span.seconds:.3f}",
                     "-map", "0:v:0", "-map", "0:a:0" if has_audio else "1:a:0", "-sn", "-dn", "-vf", frame,
                     "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                     "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", str(cut[-1])], deadline)
        os.replace(_join(cut, work, deadline), target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _join(pieces: list[Path], work: Path, deadline: float) -> Path:
    """The pieces (one encoding) one after another in `work/reel.mp4`, ready to play from the first byte."""
    reel = work / "reel.mp4"
    if len(pieces) == 1:
        _ffmpeg(["-i", str(pieces[0]), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(reel)], deadline)
    else:
        listing = work / "pieces.txt"
        listing.write_text("".join(f"file '{piece.name}'\n" for piece in pieces))
        _ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0", "-c", "copy",
                 "-movflags", "+faststart", str(reel)], deadline)
    return reel


def _cut(source: Path, span: Span, piece: Path, copy: bool, audio_codec: str | None, deadline: float) -> Path:
    seek = ["-ss", f"{span.start + (1e-3 if copy else 0):.3f}", "-i", str(source), "-t", f"{span.seconds:.3f}",
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"]
    if copy:
        audio = ["-c:a", "copy"] if audio_codec == "aac" else ["-c:a", "aac", "-b:a", "160k"]
        codecs = ["-c:v", "copy", *audio, "-avoid_negative_ts", "make_zero"]
    else:
        codecs = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                  "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2"]
    _ffmpeg([*seek, *codecs, str(piece)], deadline)
    return piece


def _ffmpeg(arguments: list[str], deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReelTooSlow("the reel took longer than its time limit")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *arguments]
    try:
        done = subprocess.run(command, capture_output=True, timeout=left, check=False)
    except subprocess.TimeoutExpired:
        raise ReelTooSlow("the reel took longer than its time limit") from None
    except OSError as exc:
        raise ReelError(f"ffmpeg could not run: {exc}") from None
    if done.returncode != 0:
        raise ReelError(f"ffmpeg failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
