"""Keep the folders of uploaded copies and results small: remove uploads by age, then the oldest beyond a count.

Files named `<stem>.<anything>` belong to one upload (its playable copy, its result, its annotated video) and
go together."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path


def prune_uploads(folder: Path, *, max_age_s: float, max_files: int, now: float | None = None) -> list[Path]:
    """Delete the uploads older than `max_age_s`, then the oldest until at most `max_files` remain; return their files."""
    now = time.time() if now is None else now
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in Path(folder).iterdir():
        if path.is_file() and not path.name.startswith("."):
            groups[path.name.partition(".")[0]].append(path)
    newest = {stem: max(p.stat().st_mtime for p in files) for stem, files in groups.items()}
    by_age = sorted(groups, key=newest.__getitem__)
    removed = [stem for stem in by_age if now - newest[stem] > max_age_s]
    kept = [stem for stem in by_age if stem not in removed]
    removed += kept[: max(0, len(kept) - max_files)]
    paths = [path for stem in removed for path in groups[stem]]
    for path in paths:
        path.unlink(missing_ok=True)
    return paths
