"""The upload page in headless Chromium (Debian's, installed by `make test`) against both real services.

Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (ARCHERY_AVI, ARTIFACTS, DATA, EXPECTED_TOP1, Service, _free_port, assert_annotated,
                      assert_csv_matches, files_below)
from cutting_proxy import CuttingProxy


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


@pytest.fixture(scope="module")
def resumable_page(live_services, tmp_path_factory):
    """A second page server whose page sends every file resumably (tus) to the API, through a proxy whose
    network fails on cue."""
    proxy = CuttingProxy(int(live_services["api"].rsplit(":", 1)[1]))
    folder = tmp_path_factory.mktemp("resumable-page")
    env = {**os.environ, "API_URL": live_services["api"], "API_PUBLIC_URL": proxy.url, "RESUMABLE_UPLOAD_MB": "0",
           "FRONTEND_UPLOAD_DIR": str(folder / "uploads"), "FRONTEND_DATA_DIR": str(folder / "data"),
           "PYTHONUNBUFFERED": "1"}
    web = Service.page(_free_port(), env, folder / "frontend.log").start()
    try:
        yield {"web": web.url, "proxy": proxy}
    finally:
        web.stop()
        proxy.close()


def test_an_upload_cut_at_60_percent_resumes_from_there_and_becomes_a_result(page, live_services, resumable_page,
                                                                           tmp_path):
    import httpx
    import imageio_ffmpeg

    clip = DATA / "baseball__askanything_hitting_baseball.mp4"
    video = tmp_path / "baseball-x6.mp4"  # 60 s, 4 MB: the clip six times over (stream copy)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-stream_loop", "5", "-i", str(clip),
                    "-c", "copy", str(video)], check=True, timeout=60)
    proxy, size = resumable_page["proxy"], video.stat().st_size
    offsets, urls = [], []  # Upload-Offset and URL of every PATCH the page sends

    def patched(request) -> None:
        if request.method == "PATCH":
            offsets.append(int(request.headers["upload-offset"]))
            urls.append(request.url)

    page.on("request", patched)
    page.goto(resumable_page["web"])
    page.set_input_files("#video", str(video))
    proxy.arm(cut_after=int(size * 0.6), down_s=2)  # the network drops at 60% of the file, for 2 s
    page.click("#submit")
    page.wait_for_selector("#status[data-state=resuming]", timeout=60_000)
    assert page.inner_text("#status-text") == "Connection lost: resuming where it stopped…"
    page.screenshot(path=str(ARTIFACTS / "10-upload-resuming.png"))
    page.wait_for_selector("#actions li .label", timeout=300_000)
    assert page.inner_text("#actions li .label >> nth=0") == EXPECTED_TOP1[clip.name]
    assert proxy.cuts == 1 and offsets[0] == 0 and len(offsets) == 2
    # The second PATCH goes on where the first was cut: at what reached the API, which is all that crossed the
    # network but what uvicorn still held unread when the connection went (up to a few hundred KiB)
    assert 0.6 * size - 512 * 1024 < offsets[1] <= 0.6 * size
    assert proxy.sent < 1.5 * size  # so the file crossed the network once and a half at most, not twice

    assert page.evaluate("document.querySelector('#player').src").startswith("blob:")  # played from this computer
    page.wait_for_function("document.querySelector('#player').readyState >= 1", timeout=30_000)
    assert page.locator("#download-video").count() == 0  # the file never passed through the page's server
    with page.expect_download(timeout=60_000) as download:
        page.click("#download-json")
    result = json.loads(Path(download.value.path()).read_text())
    assert result["actions"][0]["label"] == EXPECTED_TOP1[clip.name] and result["video"]["filename"] == video.name
    page.screenshot(path=str(ARTIFACTS / "11-resumed-result.png"), full_page=True)
    # the job deleted its video; the upload's record (kept for a late HEAD) goes when the client deletes it
    assert [p.suffix for p in files_below(live_services["temp_uploads"])] == [".json", ".lock"]
    gone = httpx.delete(f"{live_services['api']}/uploads/{urls[0].rsplit('/', 1)[1]}", headers={"Tus-Resumable": "1.0.0"})
    assert gone.status_code == 204 and files_below(live_services["temp_uploads"]) == []


def test_a_resumable_upload_that_is_no_video_is_refused_readably(page, resumable_page, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    page.goto(resumable_page["web"])
    page.set_input_files("#video", str(broken))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert page.inner_text("#error").startswith("The upload was refused: the upload is not a video container")
    assert page.is_enabled("#submit") and not page.is_visible("#status")


def test_the_sport_picker_narrows_the_ranking(page, live_services):
    page.goto(live_services["web"])
    page.select_option("#sport", "target_sports")
    page.set_input_files("#video", str(ARCHERY_AVI))
    page.click("#submit")
    page.wait_for_selector("#actions li .label", timeout=300_000)
    assert page.inner_text("#ranked-by") == "(kinetics400, target_sports)"
    labels = page.locator("#actions li .label").all_inner_texts()
    assert labels[0] == "archery" and set(labels) <= {"archery", "throwing axe", "playing paintball", "bowling"}
    # the moments are the player's chapters
    page.wait_for_function("(t => t && t.cues && t.cues.length > 0)(document.querySelector('#player').textTracks[0])",
                           timeout=30_000)
    track = page.evaluate("(t => ({kind: t.kind, cues: [...t.cues].map(c => c.text)}))"
                          "(document.querySelector('#player').textTracks[0])")
    assert track["kind"] == "chapters" and track["cues"][0].startswith("archery (")
    assert page.locator("#download-edl").count() == 1
    page.goto(f"{live_services['web']}/live")
    assert page.locator("#live-sport option").count() > 20  # the live page offers the same sports
