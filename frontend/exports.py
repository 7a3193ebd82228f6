"""A result as a download, for both the page's results and the library's, from the one registry of formats the API
serves too (`common.exports.EXPORTS`). WebVTT chapters are also the player's chapters track, so they come inline."""

from __future__ import annotations

from flask import Response

from common.exports import EXPORTS
from common.results import download_name

KINDS = tuple(EXPORTS)


def export_response(kind: str, result: dict) -> Response:
    export = EXPORTS[kind]
    if kind == "vtt":
        return Response(export.make(result), mimetype="text/vtt")
    return Response(export.make(result), mimetype=export.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download_name(result, export.suffix)}"'})
