"""The annotated video: the upload with each clip's top action and confidence drawn on it and a timeline bar
along the bottom, made from the result already computed (no second inference), as H.264 MP4 with the source's
audio. Frame for frame the source: same frame count, same size (rounded down to even, as H.264 needs)."""

from __future__ import annotations

import colorsys
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX


class AnnotationError(RuntimeError):
    """The video could not be read or written."""


def label_colour(label: str) -> tuple[int, int, int]:
    """BGR of the page's colour for `label` (static/js: hsl(hash % 360, 65%, 45%)), so video and page agree."""
    hue = 0
    for ch in label:
        hue = (hue * 31 + ord(ch)) % 360
    r, g, b = colorsys.hls_to_rgb(hue / 360, 0.45, 0.65)
    return round(b * 255), round(g * 255), round(r * 255)


@dataclass(frozen=True)
class Segment:
    """Frames [start, end) shown with `clip`'s top action: clip i until clip i+1 starts, the last to the end."""

    start: int
    end: int
    label: str
    confidence: float


def segments(result: dict, frames: int) -> list[Segment]:
    clips = result["clips"]
    out = []
    for i, clip in enumerate(clips):
        end = clips[i + 1]["start_frame"] if i + 1 < len(clips) else max(frames, clip["end_frame"])
        top = clip["actions"][0]
        out.append(Segment(clip["start_frame"], end, top["label"], top["confidence"]))
    return out


class Painter:
    """Draws onto BGR frames of one size: the current clip's label box (top left) and the timeline bar."""

    def __init__(self, width: int, height: int, parts: list[Segment], frames: int):
        self.width, self.height, self.parts, self.frames = width, height, parts, max(frames, 1)
        self.scale = max(0.45, min(width, height) / 480)
        self.bar_height = max(8, height // 24)
        self.bar = np.zeros((self.bar_height, width, 3), np.uint8)
        for part in parts:  # the whole timeline, drawn once
            x0, x1 = self._x(part.start), self._x(part.end)
            self.bar[:, x0:max(x1, x0 + 1)] = label_colour(part.label)

    def _x(self, frame: int) -> int:
        return min(self.width, round(frame / self.frames * self.width))

    def label_box(self, part: Segment) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the box that `part`'s label is drawn in."""
        text = self._text(part)
        (w, h), base = cv2.getTextSize(text, FONT, self.scale, self._thickness)
        pad = round(6 * self.scale)
        return 0, 0, min(self.width, w + 2 * pad), min(self.height, h + base + 2 * pad)

    @property
    def _thickness(self) -> int:
        return max(1, round(self.scale * 1.6))

    @staticmethod
    def _text(part: Segment) -> str:
        return f"{part.label} {part.confidence:.0%}".encode("ascii", "replace").decode()

    def draw(self, frame: np.ndarray, index: int, part: Segment) -> np.ndarray:
        x0, y0, x1, y1 = self.label_box(part)
        frame[y0:y1, x0:x1] = (frame[y0:y1, x0:x1] * 0.25 + np.array(label_colour(part.label)) * 0.75).astype(np.uint8)
        pad = round(6 * self.scale)
        (_, h), _ = cv2.getTextSize(self._text(part), FONT, self.scale, self._thickness)
        cv2.putText(frame, self._text(part), (x0 + pad, y0 + pad + h), FONT, self.scale, (255, 255, 255),
                    self._thickness, cv2.LINE_AA)
        frame[self.height - self.bar_height:] = self.bar
        x = min(self.width - 2, self._x(index))  # the playhead
        frame[self.height - self.bar_height:, x:x + 2] = (255, 255, 255)
        return frame


def annotate(source: Path, result: dict, target: Path, *, timeout_s: float = 900) -> Path:
    """Write `target` (.mp4): `source`'s frames with `result`'s clips drawn on them, H.264, audio copied."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise AnnotationError("the uploaded video can no longer be read")
    fps = capture.get(cv2.CAP_PROP_FPS) or result["video"]["fps"]
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) // 2 * 2
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) // 2 * 2
    frames = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), result["video"]["frames"])
    parts = segments(result, frames)
    if not parts or width < 2 or height < 2:
        capture.release()
        raise AnnotationError("the result has no clips to draw")
    painter = Painter(width, height, parts, frames)
    handle, partial = tempfile.mkstemp(suffix=".mp4", dir=target.parent, prefix=f".{target.stem}.")
    os.close(handle)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-framerate", f"{fps:.6f}", "-i", "-",
        "-i", str(source), "-map", "0:v:0", "-map", "1:a:0?",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", partial,
    ]  # fmt: skip
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        index, part = 0, 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            while part + 1 < len(parts) and index >= parts[part].end:
                part += 1
            frame = np.ascontiguousarray(frame[:height, :width])
            encoder.stdin.write(painter.draw(frame, index, parts[part]).tobytes())
            index += 1
        encoder.stdin.close()
        errors = encoder.stderr.read()
        if encoder.wait(timeout=timeout_s) != 0 or index == 0:
            raise AnnotationError(f"the video could not be encoded: {errors.decode(errors='replace')[-300:]}")
        os.replace(partial, target)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnnotationError(f"the video could not be encoded: {exc}") from None
    finally:
        capture.release()
        if encoder.poll() is None:
            encoder.kill()
            encoder.wait()
        Path(partial).unlink(missing_ok=True)
    return target
