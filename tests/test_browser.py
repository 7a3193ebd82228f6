"""The upload page in headless Chromium (Debian's, installed by `make test`) against both real services.

Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import pytest

import json
import re
from pathlib import Path

from conftest import ARCHERY_AVI, ARTIFACTS, assert_annotated, assert_csv_matches


def test_upload_progress_result_player_and_timeline(page, live_services):
    page.goto(live_services["web"])
    page.screenshot(path=str(ARTIFACTS / "01-upload-page.png"))
    page.set_input_files("#video", str(ARCHERY_AVI))
    assert "archery__paddlevideo_example.avi" in page.inner_text("#chosen")
    page.click("#submit")
    page.wait_for_selector("#status[data-state=processing]", timeout=120_000)
    assert page.inner_text("#status-text").startswith("Recognizing: clip")
    page.screenshot(path=str(ARTIFACTS / "02-processing.png"))
    page.wait_for_selector("#actions li .label", timeout=300_000)
    assert page.inner_text("#actions li .label >> nth=0") == "archery"

    page.wait_for_function("document.querySelector('#player').readyState >= 1", timeout=30_000)
    duration = page.evaluate("document.querySelector('#player').duration")
    assert duration == pytest.approx(131 / 25, abs=0.15)  # the transcoded AVI plays in the browser

    segments = page.locator(".timeline .segment")
    assert segments.count() == 4
    assert "archery" in segments.nth(2).get_attribute("title")
    start = float(segments.nth(2).get_attribute("data-start"))
    segments.nth(2).click()
    page.wait_for_function(f"Math.abs(document.querySelector('#player').currentTime - {start}) < 0.1")
    assert "current" in segments.nth(2).get_attribute("class")
    page.screenshot(path=str(ARTIFACTS / "03-result.png"), full_page=True)

    downloads = {}
    for kind in ("json", "csv", "video"):
        with page.expect_download(timeout=120_000) as download:
            page.click(f"#download-{kind}")
        downloads[kind] = Path(download.value.path())
        assert download.value.suggested_filename.startswith("archery__paddlevideo_example.")
    result = json.loads(downloads["json"].read_text())
    assert result["actions"][0]["label"] == "archery" and len(result["clips"]) == 4
    assert_csv_matches(downloads["csv"].read_text(), result)
    assert_annotated(downloads["video"], ARCHERY_AVI, result)  # frame for frame, each clip's label drawn on it

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    page.screenshot(path=str(ARTIFACTS / "04-phone.png"), full_page=True)


def test_wrong_file_is_refused_before_upload_and_retry_works(page, live_services, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    page.goto(live_services["web"])
    page.set_input_files("#video", str(text))
    assert "not a supported video" in page.inner_text("#error")
    page.click("#submit")
    assert page.is_visible("#error") and not page.is_visible("#status")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    page.set_input_files("#video", str(broken))
    assert not page.is_visible("#error")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=120_000)
    assert "not a video container" in page.inner_text("#error")
    assert page.is_enabled("#submit")  # the user can try again without a reload
    page.screenshot(path=str(ARTIFACTS / "05-error.png"))


def test_a_long_video_shows_its_time_left_and_cancel_stops_it(page, live_services, tmp_path):
    from playwright.sync_api import expect

    from conftest import write_video

    video = write_video(tmp_path / "long-game.avi", 1500)  # 60 s at 25 fps: 46 windows
    page.goto(live_services["web"])
    assert "hours; a whole game is fine" in page.inner_text("label[for=video]")
    page.set_input_files("#video", str(video))
    page.click("#submit")
    expect(page.locator("#status-text")).to_have_text(re.compile(r"clip [1-9]\d* of 46, about \d+ (s|min) left"),
                                                      timeout=120_000)
    assert page.is_visible("#cancel")
    page.screenshot(path=str(ARTIFACTS / "06-long-video-eta.png"))
    page.click("#cancel")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert page.inner_text("#error").startswith("Cancelled.") and not page.is_visible("#cancel")
    assert page.is_enabled("#submit")
    page.screenshot(path=str(ARTIFACTS / "07-cancelled.png"))
