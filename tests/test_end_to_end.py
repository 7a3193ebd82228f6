"""Both services started for real on loopback; a clip uploaded through the frontend comes back ranked."""

from __future__ import annotations

import pytest
import json
import re

import httpx

from conftest import ARCHERY_AVI, files_below

pytestmark = [pytest.mark.slow]


def test_upload_through_the_frontend(live_services):
    services = live_services
    with httpx.Client(base_url=services["web"], timeout=300) as browser:  # keeps the session cookie
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/").text).group(1)
        with open(ARCHERY_AVI, "rb") as f:
            response = browser.post("/recognize", data={"csrf_token": token},
                                    files={"video": ("archery.avi", f, "video/x-msvideo")})
    assert response.status_code == 200, response.text[-2000:]
    page = response.text
    first = re.search(r'<ol id="actions">\s*<li><span class="label">([^<]+)</span>', page)
    assert first and first.group(1) == "archery"
    video_url = re.search(r'<video id="player" src="([^"]+)"', page).group(1)
    video = httpx.get(f"{services['web']}{video_url}", timeout=10)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert files_below(services["temp_uploads"]) == []  # the API deleted its temp file
    assert httpx.get(f"{services['api']}/health", timeout=5).json()["model_loaded"] is True


def _json_lines(path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def test_both_services_log_json_with_one_request_id(live_services):
    web = [e for e in _json_lines(live_services["web_log"]) if e["message"] == "recognized"]
    api = [e for e in _json_lines(live_services["api_log"]) if e["message"] == "recognized"]
    assert web and api
    assert web[-1]["request_id"] in {e["request_id"] for e in api}  # the page's id reached the API's log
    assert {"ts", "level", "logger", "clips", "bytes", "ms"} <= set(api[-1])
