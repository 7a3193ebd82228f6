"""A result's moments as files other tools read: WebVTT chapters (players), a CMX 3600 edit decision list (video
editors: DaVinci Resolve, Premiere) and SoccerNet's `results_spotting.json` (action spotting scorers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from common.results import clips_csv


def _clock(seconds: float) -> str:
    """WebVTT's hh:mm:ss.mmm."""
    millis = round(max(0.0, seconds) * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def chapters_vtt(result: dict) -> str:
    """One chapter cue per segment, in order of start: "label (confidence%)"."""
    cues = [f"{number}\n{_clock(s['start_s'])} --> {_clock(s['end_s'])}\n{s['label']} ({s['confidence']:.0%})\n"
            for number, s in enumerate(result.get("segments", []), 1)]
    return "WEBVTT\n\n" + "\n".join(cues)


def _timecode(frames: int, fps: int) -> str:
    return f"{frames // (3600 * fps):02d}:{frames // (60 * fps) % 60:02d}:{frames // fps % 60:02d}:{frames % fps:02d}"


def edit_decision_list(result: dict) -> str:
    """CMX 3600: each segment an event cut from the source (its in and out) onto a record timeline laid end to
    end, in whole frames at the video's rate rounded (non-drop), with the clip's name and a comment."""
    video = result.get("video", {})
    fps = max(1, round(video.get("fps") or 25))
    name = video.get("filename") or "video"
    lines = [f"TITLE: {name}", "FCM: NON-DROP FRAME", ""]
    record = 0
    for number, segment in enumerate(result.get("segments", []), 1):
        source_in, source_out = round(segment["start_s"] * fps), round(segment["end_s"] * fps)
        lines += [f"{number:03d}  AX       V     C        {_timecode(source_in, fps)} {_timecode(source_out, fps)} "
                  f"{_timecode(record, fps)} {_timecode(record + source_out - source_in, fps)}",
                  f"* FROM CLIP NAME: {name}",
                  f"* COMMENT: {segment['label']} ({segment['confidence']:.0%})", ""]
        record += source_out - source_in
    return "\r\n".join(lines)


def spotting(result: dict, *, half: int = 1) -> str:
    """Each segment's peak as a point event, in the SoccerNet devkit's `results_spotting.json` shape (its
    evaluation reads `gameTime`, `label`, `position` in milliseconds, `half` and `confidence`)."""
    predictions = []
    for segment in result.get("segments", []):
        peak = segment.get("peak_s", (segment["start_s"] + segment["end_s"]) / 2)
        minutes, seconds = divmod(int(peak), 60)
        predictions.append({"gameTime": f"{half} - {minutes:02d}:{seconds:02d}", "label": segment["label"],
                            "position": str(round(peak * 1000)), "half": str(half),
                            "confidence": f"{segment['confidence']:.6f}"})
    return json.dumps({"UrlLocal": result.get("video", {}).get("filename", ""), "predictions": predictions}, indent=2)


@dataclass(frozen=True)
class Export:
    """A result as a file: how it is made, its media type, the suffix of its name and what a person calls it."""
    make: Callable[[dict], str]
    media_type: str
    suffix: str
    title: str


def _json(result: dict) -> str:
    return json.dumps(result, indent=2)


# Every download of a result, for the API (`?format=`) and the pages alike.
EXPORTS: dict[str, Export] = {
    "json": Export(_json, "application/json", ".result.json", "JSON"),
    "csv": Export(clips_csv, "text/csv; charset=utf-8", ".clips.csv", "CSV"),
    "vtt": Export(chapters_vtt, "text/vtt; charset=utf-8", ".chapters.vtt", "chapters (WebVTT)"),
    "edl": Export(edit_decision_list, "text/plain; charset=utf-8", ".moments.edl", "EDL (video editors)"),
    "spotting": Export(spotting, "application/json", ".results_spotting.json", "SoccerNet spotting"),
}
