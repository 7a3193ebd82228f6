"""Recognise a video container from its first bytes, never from the file name."""

from __future__ import annotations

from pathlib import Path

# name -> test on the first 16 bytes
_SIGNATURES = {
    "mp4/mov": lambda head: head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"),
    "avi": lambda head: head[:4] == b"RIFF" and head[8:12] == b"AVI ",
    "mkv/webm": lambda head: head[:4] == b"\x1a\x45\xdf\xa3",
    "gif": lambda head: head[:6] in (b"GIF87a", b"GIF89a"),
}
SUPPORTED = "MP4, MOV, AVI, MKV, WebM or GIF"


def sniff_container(path: Path) -> str | None:
    """'mp4/mov', 'avi', 'mkv/webm', 'gif', or None for anything else."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 12:
        return None
    return next((name for name, test in _SIGNATURES.items() if test(head)), None)
