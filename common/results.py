"""A recognition result as a table: one row per clip, for spreadsheets (`?format=csv` and the page's download)."""

from __future__ import annotations

import csv
import io
from pathlib import PurePath

RANKS = 3  # each clip's top action and the next two
CLIP_COLUMNS = ["index", "start_s", "end_s", "start_frame", "end_frame"]
COLUMNS = CLIP_COLUMNS + [f"{name}_{rank}" for rank in range(1, RANKS + 1) for name in ("label", "confidence")]


def clip_rows(result: dict) -> list[dict]:
    """`result["clips"]` flattened: `COLUMNS` for each clip, empty cells where a clip has fewer actions."""
    rows = []
    for clip in result["clips"]:
        row = {name: clip[name] for name in CLIP_COLUMNS}
        for rank in range(1, RANKS + 1):
            action = clip["actions"][rank - 1] if rank <= len(clip["actions"]) else {"label": "", "confidence": ""}
            row[f"label_{rank}"], row[f"confidence_{rank}"] = action["label"], action["confidence"]
        rows.append(row)
    return rows


def clips_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
    writer.writeheader()
    writer.writerows(clip_rows(result))
    return out.getvalue()


def download_name(result: dict, suffix: str) -> str:
    """`match.avi` + `.clips.csv` -> `match.clips.csv`: a safe file name for a download."""
    stem = PurePath(result.get("video", {}).get("filename") or "video").stem
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._") or "video"
    return f"{safe[:80]}{suffix}"
