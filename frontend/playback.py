"""Make an uploaded video playable in any browser: H.264 + AAC in MP4 with the index up front.

Browsers play neither AVI nor MPEG-4 Part 2, so every upload is transcoded with the ffmpeg binary that
the imageio-ffmpeg wheel ships. If that fails the original is kept and the page says so.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import imageio_ffmpeg

log = logging.getLogger(__name__)


def transcode_for_browser(source: Path, target: Path, *, timeout_s: float = 300) -> bool:
    """Write `target` (.mp4); True on success. `source` is left in place."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
        "-map", "0:v:0", "-map", "0:a:0?",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-force_key_frames", "expr:gte(t,n_forced)",  # a keyframe a second: reels cut from it by stream copy
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(target),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("transcode failed: %s", exc)
        target.unlink(missing_ok=True)
        return False
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        log.warning("transcode failed: %s", done.stderr.decode(errors="replace")[-500:])
        target.unlink(missing_ok=True)
        return False
    return True
