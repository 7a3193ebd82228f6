"""A result as a download, for both the page's results and the library's: JSON, the clips as CSV, the moments as
WebVTT chapters (the player's chapters track too) or as an EDL for video editors."""

from __future__ import annotations

import json

from flask import Response

from common.exports import chapters_vtt, edit_decision_list
from common.results import clips_csv, download_name

KINDS = ("json", "csv", "vtt", "edl")


def export_response(kind: str, result: dict) -> Response:
    if kind == "vtt":
        return Response(chapters_vtt(result), mimetype="text/vtt")
    body, mimetype, suffix = {
        "json": (lambda: json.dumps(result, indent=2), "application/json", ".result.json"),
        "csv": (lambda: clips_csv(result), "text/csv", ".clips.csv"),
        "edl": (lambda: edit_decision_list(result), "text/plain", ".moments.edl"),
    }[kind]
    return Response(body(), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{download_name(result, suffix)}"'})
