"""The upload page in headless Chromium (Debian's, installed by `make test`) against both real services.

Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ARCHERY_AVI, ARTIFACTS, DATA, EXPECTED_TOP1, Service, _free_port, assert_annotated,
                      assert_csv_matches, files_below)
from cutting_proxy import CuttingProxy

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_progress_result_player_and_timeline(page, live_services):
    from playwright.sync_api import expect

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

    assert page.inner_text(".moment-group .label >> nth=0") == "archery"  # the moments lead
    timeline = page.locator("#timeline")
    assert float(timeline.get_attribute("data-view-start")) == 0
    assert float(timeline.get_attribute("data-view-end")) == pytest.approx(131 / 25, abs=0.05)
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.8)  # the window strip, 3/4 in
    page.wait_for_function(f"Math.abs(document.querySelector('#player').currentTime - {0.75 * 131 / 25}) < 0.15")
    assert not page.locator("#clips-details").evaluate("d => d.open")  # the table is folded away
    page.click("#clips-details summary")
    expect(page.locator("#clips-details tbody tr")).to_have_count(4)
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
    # network but what was still unread in socket buffers when the connection went (a few hundred KiB, more when
    # the API was busy just then): never from the start, never past the cut
    assert 0 < offsets[1] <= 0.6 * size
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


def _tiled(result: dict, blocks: int) -> dict:
    """`result` repeated `blocks` times end to end (times shifted by its length), every other copy's moments at
    half their confidence so that the confidence filter has something to do: a game's worth of real windows."""
    length, clips, segments = result["video"]["duration_s"], [], []
    for block in range(blocks):
        shift, scale = block * length, 1.0 if block % 2 == 0 else 0.5
        for clip in result["clips"]:
            clips.append({**clip, "index": len(clips), "start_s": round(clip["start_s"] + shift, 3),
                          "end_s": round(clip["end_s"] + shift, 3)})
        for segment in result["segments"]:
            segments.append({**segment, "start_s": round(segment["start_s"] + shift, 3),
                             "end_s": round(segment["end_s"] + shift, 3), "confidence": segment["confidence"] * scale})
    return {**result, "clips": clips, "segments": segments, "video": {**result["video"], "duration_s": length * blocks}}


def test_a_whole_game_reads_as_its_moments_on_a_timeline_that_zooms_and_pans(page, live_services, tmp_path):
    """A real 30-s game (shooting basketball, yoga, shooting basketball, with sound) through the page; its job's
    result tiled to about 4,000 windows (91 minutes) as it reaches the page: the moments grouped with counts and
    time, the filters, the canvas timeline zoomed and panned, the paged table, and a Reel from the API."""
    import av
    from playwright.sync_api import expect

    from conftest import write_real_minute

    game = write_real_minute(tmp_path / "game.mp4", clips=("basketball__mmaction2_shooting_drill.mp4",
                             "yoga__askanything_yoga.mp4", "basketball__mmaction2_shooting_drill.mp4"),
                             keyframe_every=30, sound=True)
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    long: dict = {}

    def job_status(route):
        response = route.fetch()
        body = response.json()
        if body.get("status") == "done":
            real = body["result"]
            long.update(_tiled(real, max(1, 4000 // len(real["clips"]))))
            long["real"] = real
            body["result"] = {k: v for k, v in long.items() if k != "real"}
            long["fulfilled"] = time.perf_counter()
        route.fulfill(response=response, body=json.dumps(body), headers={**response.headers,
                                                                          "content-length": str(len(json.dumps(body)))})

    page.route(re.compile(r".*/jobs/[0-9a-f]{32}$"), job_status)
    page.goto(live_services["web"])
    page.set_input_files("#video", str(game))
    page.click("#submit")
    page.wait_for_selector(".moment-group", timeout=300_000)
    print(f"a result of {len(long['clips'])} windows and {len(long['segments'])} moments rendered in "
          f"{time.perf_counter() - long['fulfilled']:.2f} s (from the answer to the moments shown)")
    assert len(long["clips"]) >= 3900
    expected: dict[str, list] = {}
    for segment in long["segments"]:
        expected.setdefault(segment["label"], []).append(segment)
    groups = page.locator(".moment-group")
    assert groups.count() == len(expected)
    totals = {label: sum(s["end_s"] - s["start_s"] for s in found) for label, found in expected.items()}
    first = max(totals, key=totals.get)  # the action with the most time leads
    assert groups.nth(0).get_attribute("data-label") == first
    assert groups.nth(0).locator(".moment").count() == len(expected[first])
    assert f"{len(expected[first])} ×" in groups.nth(0).inner_text()
    reel = groups.nth(0).locator("a.reel")
    assert reel.get_attribute("href").endswith(f"/highlights?label={first.replace(' ', '%20')}")

    timeline = page.locator("#timeline")
    view = lambda: (float(timeline.get_attribute("data-view-start")), float(timeline.get_attribute("data-view-end")))
    whole = long["video"]["duration_s"]
    assert view() == (0, pytest.approx(whole, abs=0.01))
    assert int(timeline.get_attribute("data-segments")) == len(long["segments"])
    page.screenshot(path=str(ARTIFACTS / "10-game-result.png"), full_page=True)

    page.select_option("#moment-action", "yoga")  # the filter by action: the list and the drawn moments
    assert groups.count() == 1 and groups.nth(0).get_attribute("data-label") == "yoga"
    assert int(timeline.get_attribute("data-segments")) == len(expected["yoga"])
    page.select_option("#moment-action", "")
    page.locator("#moment-min").evaluate("e => { e.value = '60'; e.dispatchEvent(new Event('input')); }")
    confident = [s for s in long["segments"] if s["confidence"] >= 0.6]
    assert 0 < len(confident) < len(long["segments"])
    assert page.locator(".moment").count() == len(confident)
    assert int(timeline.get_attribute("data-segments")) == len(confident)

    moment = page.locator(".moment >> nth=0")  # the first moment plays: the player seeks to it
    start = float(moment.get_attribute("data-start"))
    moment.click()
    page.wait_for_function(f"Math.abs(document.querySelector('#player').currentTime - {start}) < 0.1")

    page.click("#zoom-in")
    page.click("#zoom-in")
    start_s, end_s = view()
    assert end_s - start_s == pytest.approx(whole / 4, rel=0.01)
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    panned = view()
    assert panned[0] == pytest.approx(start_s + 0.3 * (end_s - start_s), rel=0.02)  # dragged left: later times
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)  # over the window strip
    for _ in range(10):
        page.mouse.wheel(0, -120)  # the wheel zooms in around the pointer
    expect(timeline).not_to_have_attribute("data-view-end", str(panned[1]))
    zoomed = view()
    assert zoomed[1] - zoomed[0] < (panned[1] - panned[0]) / 3
    assert "window" in page.inner_text(".timeline-tip")  # what is under the pointer
    page.screenshot(path=str(ARTIFACTS / "11-game-zoomed.png"))
    page.click("#zoom-reset")
    assert view() == (0, pytest.approx(whole, abs=0.01))

    table = page.locator("#clips-details")
    assert not table.evaluate("d => d.open") and table.locator("tbody tr").count() == 0  # folded, and not made yet
    page.click("#clips-details summary")
    expect(table.locator("tbody tr")).to_have_count(100)
    pages = -(-len(long["clips"]) // 100)
    assert page.inner_text("#clips-page") == f"page 1 of {pages}"
    page.click("#clips-next")
    assert page.inner_text("#clips-page") == f"page 2 of {pages}"
    assert table.locator("tbody tr >> nth=0").locator("td >> nth=0").inner_text() == "101"

    with page.expect_download(timeout=300_000) as download:  # the Reel: the API cuts it from the real job
        page.click(f'.moment-group[data-label="{first}"] a.reel')
    with av.open(download.value.path()) as container:
        assert {s.type for s in container.streams} == {"video", "audio"} and container.duration / 1e6 > 5
    assert download.value.suggested_filename.endswith(".highlights.mp4")
    assert errors == []


def test_the_result_page_without_javascript_and_with_it(browser, page, live_services):
    """The plain form's result page: its moments and table readable with JavaScript off; with it on, the same
    moments become the interactive ones, with the timeline and a Reel per action."""
    plain = browser.new_context(java_script_enabled=False)
    try:
        bare = plain.new_page()
        bare.goto(live_services["web"])
        bare.set_input_files("#video", str(ARCHERY_AVI))
        bare.click("#submit")
        bare.wait_for_selector("#moments-static", timeout=300_000)
        assert bare.inner_text("#moments-static .moment-group .label") == "archery"
        assert "/highlights?label=archery" in bare.get_attribute("#moments-static a.reel", "href")
        assert bare.locator("#clips-static tbody tr").count() == 4
    finally:
        plain.close()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_services["web"])
    page.set_input_files("#video", str(ARCHERY_AVI))
    page.evaluate("HTMLFormElement.prototype.submit.call(document.getElementById('upload-form'))")  # as without script
    page.wait_for_selector("#timeline", timeout=300_000)
    assert page.locator("#moments-static").count() == 0 and page.locator("#clips-static").count() == 0
    assert page.get_attribute(".moment-group", "data-label") == "archery"
    with page.expect_download(timeout=300_000) as download:  # cut by the page from its own copy
        page.click(".moment-group a.reel")
    assert download.value.suggested_filename == "archery__paddlevideo_example.archery.highlights.mp4"
    page.screenshot(path=str(ARTIFACTS / "12-result-page.png"), full_page=True)
    assert errors == []
