"""Still frames of a video as small JPEGs: the library's posters and its moments' thumbnails."""

from __future__ import annotations

from pathlib import Path

import av
import cv2

THUMBNAIL_WIDTH = 320


class ThumbnailError(RuntimeError):
    """The video has no frame to show there (unreadable, or no video stream)."""


def frame_jpeg(path: Path, at_s: float, *, width: int = THUMBNAIL_WIDTH, quality: int = 80) -> bytes:
    """The frame shown at `at_s` (the last one when past the end), `width` pixels wide, as JPEG bytes: a seek to
    the keyframe before it, then decoding up to it."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ThumbnailError("the video has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base, unit = stream.start_time or 0, stream.time_base
            container.seek(base + int(max(at_s, 0.0) / unit), stream=stream, backward=True, any_frame=False)
            shown = None
            for frame in container.decode(stream):
                shown = frame
                if frame.pts is not None and (frame.pts - base) * unit >= at_s:
                    break
    except av.FFmpegError as exc:
        raise ThumbnailError(f"the video can no longer be read: {exc}") from None
    if shown is None:
        raise ThumbnailError("the video has no frame there")
    height = max(2, round(width * shown.height / max(shown.width, 1) / 2) * 2)
    image = shown.reformat(width=width, height=height, format="bgr24").to_ndarray()
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ThumbnailError("the frame could not be encoded")
    return data.tobytes()
