"""Keep the folder of uploaded copies small: remove files by age, then the oldest beyond a count."""

from __future__ import annotations

import time
from pathlib import Path


def prune_uploads(folder: Path, *, max_age_s: float, max_files: int, now: float | None = None) -> list[Path]:
    """Delete files older than `max_age_s`, then the oldest until at most `max_files` remain; return them."""
    now = time.time() if now is None else now
    files = sorted((p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime)
    removed = [p for p in files if now - p.stat().st_mtime > max_age_s]
    kept = [p for p in files if p not in removed]
    removed += kept[: max(0, len(kept) - max_files)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
