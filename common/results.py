"""A recognition result as a table, for spreadsheets (`?format=csv` and the page's download): a row per segment (the
moments of each action), then a row per clip; the column `kind` tells which."""

from __future__ import annotations

import csv
import io
from pathlib import PurePath

RANKS = 3  # each clip's top action and the next two
CLIP_COLUMNS = ["index", "start_s", "end_s", "start_frame", "end_frame"]
COLUMNS = ["kind"] + CLIP_COLUMNS + [f"{name}_{rank}" for rank in range(1, RANKS + 1) for name in ("label", "confidence")]


def segment_rows(result: dict) -> list[dict]:
    """`result["segments"]`: its label and confidence as the first action, its frames those of its first and last
    windows."""
    clips = result["clips"]
    return [{"kind": "segment", "index": number, "start_s": segment["start_s"], "end_s": segment["end_s"],
             "start_frame": clips[segment["windows"][0]]["start_frame"],
             "end_frame": clips[segment["windows"][1]]["end_frame"],
             "label_1": segment["label"], "confidence_1": segment["confidence"]}
            for number, segment in enumerate(result.get("segments", []))]


def clip_rows(result: dict) -> list[dict]:
    """`result["clips"]` flattened: `COLUMNS` for each clip, empty cells where a clip has fewer actions."""
    rows = []
    for clip in result["clips"]:
        row = {"kind": "clip", **{name: clip[name] for name in CLIP_COLUMNS}}
        for rank in range(1, RANKS + 1):
            action = clip["actions"][rank - 1] if rank <= len(clip["actions"]) else {"label": "", "confidence": ""}
            row[f"label_{rank}"], row[f"confidence_{rank}"] = action["label"], action["confidence"]
        rows.append(row)
    return rows


def clips_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, restval="", lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
    writer.writeheader()
    writer.writerows(segment_rows(result) + clip_rows(result))
    return out.getvalue()


def download_name(result: dict, suffix: str) -> str:
    """`match.avi` + `.clips.csv` -> `match.clips.csv`: a safe file name for a download."""
    stem = PurePath(result.get("video", {}).get("filename") or "video").stem
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._") or "video"
    return f"{safe[:80]}{suffix}"
