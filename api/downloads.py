"""A result as a download (`?format=`), and a reel's file name: shared by the routes of jobs and of the library."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Response

from common.exports import EXPORTS
from common.results import download_name

CSV_RESPONSE = {"content": {"text/csv": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}},
                            "text/plain": {"schema": {"type": "string"}}},
                "description": "csv: a row per segment, then per clip; vtt: WebVTT chapters of the segments; edl: a "
                               "CMX 3600 edit decision list of them; spotting: their peaks as SoccerNet's "
                               "results_spotting.json"}
Format = Annotated[Literal[tuple(EXPORTS)], Query(  # json, csv, vtt, edl, spotting
    description="json: the result; csv: its moments and clips as a table; vtt: chapters; edl: an edit decision "
                "list; spotting: SoccerNet's results_spotting.json")]


def export_response(result: dict, format: str) -> Response:
    """The result in `format` (not json, which the route answers as its model) as a download named after its video."""
    export = EXPORTS[format]
    return Response(export.make(result), media_type=export.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download_name(result, export.suffix)}"'})


def reel_name(result: dict, labels: list[str]) -> str:
    actions = "+".join("".join(c if c.isalnum() else "_" for c in action) for action in sorted(set(labels)))
    return download_name(result, f".{actions[:80]}.highlights.mp4")
