"""The Library page in headless Chromium against both real services: analysed videos listed with their posters,
durations, top actions and dates, each opening its stored result with its video; a search whose moments play in
place and stop at their ends; a video deleted from the page. And the same pages without JavaScript."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import ARCHERY_AVI, ARTIFACTS, CRICKET_MP4, DATA
from models.video import probe

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOOTING = "shooting basketball"
BASKETBALL = DATA / "basketball__mmaction2_shooting_drill.mp4"  # 300 frames at 29.97 fps: 10 s


def _fresh_copy(video: Path, folder: Path) -> Path:
    """The same frames in other bytes (stream-copied with a tag): a video the session's library has not seen, so
    it is a new analysis, listed first (the same bytes would be the analysis an earlier test stored)."""
    import imageio_ffmpeg

    copy = folder / f"{uuid.uuid4().hex[:8]}-{video.name}"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(video), "-map", "0", "-c", "copy",
                    "-metadata", f"comment={copy.stem}", str(copy)], check=True)
    return copy


def _recognized(api: str, video, name: str) -> dict:
    with open(video, "rb") as f:
        answer = httpx.post(f"{api}/recognize_action", files={"video": (name, f, "video/mp4")}, timeout=300)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _until(page, script: str, timeout_s: float = 30):
    """Poll `script` (an expression) in the page until it is truthy; its value."""
    deadline = time.monotonic() + timeout_s
    while not (value := page.evaluate(script)):
        assert time.monotonic() < deadline, f"never true: {script}"
        time.sleep(0.1)
    return value


def test_the_library_lists_opens_searches_plays_moments_in_place_and_deletes(page, live_services, tmp_path):
    from playwright.sync_api import expect

    api, web, tag = live_services["api"], live_services["web"], uuid.uuid4().hex[:8]
    drill = _recognized(api, _fresh_copy(BASKETBALL, tmp_path), f"drill-{tag}.mp4")
    cricket = _recognized(api, _fresh_copy(CRICKET_MP4, tmp_path), f"cricket-{tag}.mp4")

    page.goto(f"{web}/library")
    card = page.locator(f".video-card[data-video-id='{drill['video_id']}']")
    expect(card).to_have_count(1)  # the newest first: on the first page
    assert card.locator(".title").inner_text() == f"drill-{tag}.mp4"
    assert card.locator(".duration").inner_text() == "0:10"
    assert card.locator(".top-actions li").first.inner_text().startswith(SHOOTING)
    assert card.locator("time").get_attribute("datetime")[:10] == time.strftime("%Y-%m-%d", time.gmtime())
    poster = f".video-card[data-video-id='{drill['video_id']}'] img"
    assert _until(page, f"document.querySelector(\"{poster}\").complete && "
                        f"document.querySelector(\"{poster}\").naturalWidth") == 320  # the poster, through the page
    page.screenshot(path=str(ARTIFACTS / "13-library.png"), full_page=True)

    card.locator("a.title").click()  # its stored result, its video played from the library
    page.wait_for_url(f"**/library/{drill['video_id']}")
    assert page.inner_text("h1") == f"drill-{tag}.mp4"
    assert page.inner_text("#actions li .label >> nth=0") == SHOOTING
    _until(page, "document.querySelector('#player').readyState >= 1")
    assert page.evaluate("document.querySelector('#player').duration") == pytest.approx(10.0, abs=0.2)
    assert page.locator(".moment-group a.reel").count() >= 1  # its reels, cut from the library's copy

    page.goto(f"{web}/library")
    page.fill("#search-label", SHOOTING)
    page.click(".library-search button")
    page.wait_for_selector("#search-results")
    moment = page.locator(f".moment-card:has(a[href*='{drill['video_id']}'])").first
    start, end = float(moment.get_attribute("data-start")), float(moment.get_attribute("data-end"))
    assert 0 <= start < end <= 10.1
    moment.scroll_into_view_if_needed()
    moment.locator("a.play").click()  # plays here, from its start, and stops at its end
    player = f".moment-card[data-video*='{drill['video_id']}'] video"
    _until(page, f"(v => v && !v.paused && v.currentTime > {start} + 0.2)(document.querySelector(\"{player}\"))")
    assert page.url.endswith(f"/library?label={SHOOTING.replace(' ', '+')}")  # in place: still the search
    stopped = _until(page, f"(v => v.paused && v.currentTime)(document.querySelector(\"{player}\"))",
                     timeout_s=end - start + 15)
    assert stopped == pytest.approx(end, abs=0.5)
    page.screenshot(path=str(ARTIFACTS / "14-library-search.png"), full_page=True)

    page.goto(f"{web}/library")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f".video-card[data-video-id='{cricket['video_id']}'] button.delete").click()
    page.wait_for_load_state()
    expect(page.locator(f".video-card[data-video-id='{cricket['video_id']}']")).to_have_count(0)
    assert httpx.get(f"{api}/videos/{cricket['video_id']}", timeout=10).status_code == 404


def test_the_library_pages_without_javascript(live_services, tmp_path):
    api, web, tag = live_services["api"], live_services["web"], uuid.uuid4().hex[:8]
    video = _fresh_copy(BASKETBALL, tmp_path)
    drill = _recognized(api, video, f"plain-{tag}.mp4")
    with httpx.Client(base_url=web, timeout=300) as browser:
        listing = browser.get("/library")
        assert listing.status_code == 200 and f"plain-{tag}.mp4" in listing.text
        found = browser.get("/library", params={"label": SHOOTING})
        assert found.status_code == 200 and f'/library/{drill["video_id"]}?t=' in found.text  # opens at the moment
        unknown = browser.get("/library", params={"label": "quidditch"})
        assert unknown.status_code == 200 and "not an action this model names" in unknown.text
        stored = browser.get(f"/library/{drill['video_id']}", params={"t": 2.5})
        assert stored.status_code == 200 and f'/library/{drill["video_id"]}/video#t=2.50' in stored.text
        assert SHOOTING in stored.text and "Download:" in stored.text
        part = browser.get(f"/library/{drill['video_id']}/video", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == video.read_bytes()[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{video.stat().st_size}"
        table = browser.get(f"/library/{drill['video_id']}.csv")
        assert table.status_code == 200 and table.headers["content-disposition"].endswith('.clips.csv"')
        reel = browser.get("/library/search/highlights", params={"label": SHOOTING, "max_s": 10})
        assert reel.status_code == 200 and reel.headers["content-type"] == "video/mp4" and len(reel.content) > 10_000
        avi = _recognized(api, _fresh_copy(ARCHERY_AVI, tmp_path), f"plain-{tag}.avi")  # a kind browsers do not play
        played = browser.get(f"/library/{avi['video_id']}/video", headers={"Range": "bytes=0-"})
        assert played.status_code == 206 and played.headers["content-type"] == "video/mp4"  # transcoded here, once
        (tmp_path / "played.mp4").write_bytes(played.content)
        assert probe(tmp_path / "played.mp4").duration_s == pytest.approx(131 / 25, abs=0.1)
        again = browser.get(f"/library/{avi['video_id']}/video", headers={"Range": "bytes=0-99"})
        assert again.status_code == 206 and again.content == played.content[:100]
        missing = browser.get(f"/library/{'0' * 32}")
        assert missing.status_code == 404 and "Not found" in missing.text
        assert browser.get("/library/not-an-id").status_code == 404
        token = re.search(r'name="csrf_token" value="([^"]+)"', listing.text).group(1)
        refused = browser.post(f"/library/{drill['video_id']}/delete", data={"csrf_token": "forged"})
        assert refused.status_code == 400 and "expired" in refused.text
        gone = browser.post(f"/library/{drill['video_id']}/delete", data={"csrf_token": token})
        assert gone.status_code == 303 and gone.headers["location"].endswith("/library")
        assert browser.get(f"/library/{drill['video_id']}").status_code == 404
