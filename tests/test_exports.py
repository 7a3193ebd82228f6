"""A result's moments as other tools read them (common/exports.py): WebVTT chapters, a CMX 3600 edit decision list
and SoccerNet's results_spotting.json; through the API too."""

from __future__ import annotations

import json
import re

from common.exports import chapters_vtt, edit_decision_list, spotting

RESULT = {
    "segments": [
        {"label": "shooting basketball", "start_s": 4.5, "end_s": 12.25, "peak_s": 8.96, "confidence": 0.8123, "windows": [2, 8]},
        {"label": "dunking basketball", "start_s": 3725.0, "end_s": 3731.5, "peak_s": 3728.64, "confidence": 0.5, "windows": [2900, 2904]},
    ],
    "video": {"filename": "final/game 1.mp4", "fps": 29.97, "frames": 120000, "duration_s": 4004.0},
}


def test_chapters_are_webvtt_cues_of_the_segments():
    text = chapters_vtt(RESULT)
    assert text.startswith("WEBVTT\n\n")
    assert "1\n00:00:04.500 --> 00:00:12.250\nshooting basketball (81%)\n" in text
    assert "2\n01:02:05.000 --> 01:02:11.500\ndunking basketball (50%)\n" in text
    assert chapters_vtt({"segments": []}) == "WEBVTT\n\n"


def test_the_edit_decision_list_is_cmx_3600_at_the_videos_rate():
    lines = edit_decision_list(RESULT).split("\r\n")
    assert lines[:2] == ["TITLE: final/game 1.mp4", "FCM: NON-DROP FRAME"]
    events = [line for line in lines if re.match(r"^\d{3}  ", line)]
    assert events == [  # source in/out, then record in/out laid end to end, at 30 frames a second
        "001  AX       V     C        00:00:04:15 00:00:12:08 00:00:00:00 00:00:07:23",  # 233 frames
        "002  AX       V     C        01:02:05:00 01:02:11:15 00:00:07:23 00:00:14:08"]  # and 195 more
    assert "* FROM CLIP NAME: final/game 1.mp4" in lines and "* COMMENT: shooting basketball (81%)" in lines


def test_spotting_is_soccernets_results_file_of_the_peaks():
    body = json.loads(spotting(RESULT))
    assert body["UrlLocal"] == "final/game 1.mp4"
    assert body["predictions"] == [
        {"gameTime": "1 - 00:08", "label": "shooting basketball", "position": "8960", "half": "1", "confidence": "0.812300"},
        {"gameTime": "1 - 62:08", "label": "dunking basketball", "position": "3728640", "half": "1", "confidence": "0.500000"}]
