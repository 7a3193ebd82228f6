"""Highlight reels: `GET /jobs/{id}/highlights` on a real game with sound, cut by stream copy or re-encoded, the
reel recognized again as its action; the media folder's bounds; the page's reels of its own results."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import av
import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from common.reels import NoRoomForReel, ReelTooSlow, Span, copy_slack_s, make_reel, reel_spans
from conftest import files_below, write_real_minute
from service.library.media import Media
from service.library.store import Library
from service.settings import Settings

pytestmark = [pytest.mark.slow]

SHOOTING = "shooting basketball"
# basketball, yoga, basketball: two moments of shooting with yoga between
GAME_CLIPS = ("basketball__mmaction2_shooting_drill.mp4", "yoga__askanything_yoga.mp4",
              "basketball__mmaction2_shooting_drill.mp4")


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    """The same 30-s game with a tone, with a keyframe every second (as phones and broadcasts make them) and
    every 15 s only (as some encoders do: a reel from it must be re-encoded)."""
    folder = tmp_path_factory.mktemp("reel-games")
    return {every: write_real_minute(folder / f"game-g{every}.mp4", clips=GAME_CLIPS, keyframe_every=every, sound=True,
                                     scene_cuts=every < 450) for every in (30, 450)}


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def client(saved_model_dir, upload_dir, media_dir):
    settings = Settings(model_handle=str(saved_model_dir), upload_dir=upload_dir, media_dir=media_dir)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _done(client, video: Path) -> dict:
    job = client.post("/jobs", files={"video": (video.name, video.read_bytes(), "video/mp4")})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 300
    while (state := client.get(f"/jobs/{job.json()['id']}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["status"] == "done", state
    return state


def _streams(path: Path) -> tuple[float, list[str]]:
    """(the reel's duration in seconds, its streams' types), every video frame decoded."""
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        assert frames > 0
        return float(container.duration / 1e6), sorted(s.type for s in container.streams)


def test_spans_are_padded_joined_where_pads_meet_and_kept_within_the_video():
    result = {"video": {"duration_s": 60.0}, "segments": [
        {"label": "a", "start_s": 1.0, "end_s": 5.0}, {"label": "b", "start_s": 6.0, "end_s": 9.0},
        {"label": "a", "start_s": 8.0, "end_s": 12.0}, {"label": "a", "start_s": 30.0, "end_s": 59.0}]}
    assert reel_spans(result, ["a"], pad_s=2) == [Span(0.0, 14.0), Span(28.0, 60.0)]  # 3-7 and 6-14 meet
    assert reel_spans(result, ["a"], pad_s=0) == [Span(1.0, 5.0), Span(8.0, 12.0), Span(30.0, 59.0)]
    assert reel_spans(result, ["a", "b"], pad_s=0.5) == [Span(0.5, 12.5), Span(29.5, 59.5)]  # 5.5 touches 5.5
    assert reel_spans(result, ["z"], pad_s=2) == []


def test_a_jobs_reel_shows_every_moment_of_its_action_with_its_sound(client, games, upload_dir, media_dir, tmp_path):
    """Stream copy from the keyframes: each piece starts at most its padding early, the moments are all in it (the
    model ranks the reel as the action), with the game's sound; made once, then the same file; the API's errors."""
    state = _done(client, games[30])
    job_id, result = state["id"], state["result"]
    shooting = [s for s in result["segments"] if s["label"] == SHOOTING]
    assert len(shooting) == 2, result["segments"]  # the two basketball clips, the yoga between them
    sha = result["video"]["sha256"]
    assert (media_dir / f"{sha}.video").is_file() and files_below(upload_dir) == []  # kept, nothing else left

    reel = client.get(f"/jobs/{job_id}/highlights", params={"label": SHOOTING, "pad_s": 1})
    assert reel.status_code == 200, reel.text
    assert reel.headers["content-type"] == "video/mp4" and reel.headers["x-reel-cut"] == "copy"
    assert reel.headers["content-disposition"] == \
        'attachment; filename="game-g30.shooting_basketball.highlights.mp4"'
    saved = tmp_path / "reel.mp4"
    saved.write_bytes(reel.content)
    duration, streams = _streams(saved)
    spans = reel_spans(result, [SHOOTING], pad_s=1)
    assert len(spans) == 2 and streams == ["audio", "video"]
    asked = sum(span.seconds for span in spans)
    assert asked - 0.1 <= duration <= asked + len(spans) * (copy_slack_s(1) + 0.1), (duration, spans)
    ranked = client.app.state.services.recognizer.recognize(saved)
    assert ranked["actions"][0]["label"] == SHOOTING and "yoga" not in {s["label"] for s in ranked["segments"]}

    kept = sorted(p.name for p in media_dir.iterdir())
    again = client.get(f"/jobs/{job_id}/highlights", params={"label": SHOOTING, "pad_s": 1})
    assert again.content == reel.content and sorted(p.name for p in media_dir.iterdir()) == kept

    both = client.get(f"/jobs/{job_id}/highlights", params={"label": [SHOOTING, "yoga"], "pad_s": 1})
    assert both.status_code == 200 and len(both.content) > len(reel.content)
    saved.write_bytes(both.content)
    assert _streams(saved)[0] >= sum(s.seconds for s in reel_spans(result, [SHOOTING, "yoga"], pad_s=1)) - 0.1

    none = client.get(f"/jobs/{job_id}/highlights", params={"label": "surfing water"})
    assert none.status_code == 422 and "no moment of 'surfing water'" in none.json()["detail"]
    assert SHOOTING in none.json()["detail"]  # the labels it does have
    assert client.get(f"/jobs/{job_id}/highlights").status_code == 422  # no label
    assert client.get(f"/jobs/{job_id}/highlights", params={"label": SHOOTING, "pad_s": 99}).status_code == 422
    assert client.get("/jobs/nope/highlights", params={"label": SHOOTING}).status_code == 404
    running = client.post("/jobs", files={"video": ("g.mp4", games[450].read_bytes(), "video/mp4")}).json()["id"]
    busy = client.get(f"/jobs/{running}/highlights", params={"label": SHOOTING})
    assert busy.status_code == 409 and "come when it is done" in busy.json()["detail"]
    client.delete(f"/jobs/{running}")

    (media_dir / f"{sha}.video").unlink()  # as the oldest goes when room is needed
    gone = client.get(f"/jobs/{job_id}/highlights", params={"label": "yoga", "pad_s": 1})
    assert gone.status_code == 410 and "no longer kept" in gone.json()["detail"]
    deadline = time.monotonic() + 30
    while files_below(upload_dir) and time.monotonic() < deadline:  # the cancelled job's upload
        time.sleep(0.1)
    assert files_below(upload_dir) == []


def test_far_apart_keyframes_get_a_frame_exact_reencoded_reel(client, games, tmp_path):
    """With a keyframe every 15 s not every piece can start near its moment by copying: every piece is re-encoded,
    to the frame, with its sound, and the model still ranks the reel as the action."""
    result = client.app.state.services.recognizer.recognize(games[450])
    target = tmp_path / "reel.mp4"
    assert make_reel(games[450], result, [SHOOTING], target, pad_s=0.5) == "encode"
    duration, streams = _streams(target)
    assert streams == ["audio", "video"]
    assert duration == pytest.approx(sum(s.seconds for s in reel_spans(result, [SHOOTING], pad_s=0.5)), abs=0.15)
    assert client.app.state.services.recognizer.recognize(target)["actions"][0]["label"] == SHOOTING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mp4"]  # its pieces deleted


def test_a_reel_without_the_disk_or_the_time_for_it_is_refused_and_leaves_nothing(games, tmp_path):
    result = {"video": {"duration_s": 30.0}, "segments": [{"label": "a", "start_s": 2.0, "end_s": 8.0}]}
    with pytest.raises(NoRoomForReel, match="would not leave"):
        make_reel(games[450], result, ["a"], tmp_path / "r.mp4", disk_reserve_bytes=1 << 60)
    with pytest.raises(ReelTooSlow):
        make_reel(games[450], result, ["a"], tmp_path / "r.mp4", timeout_s=0.01)
    assert list(tmp_path.iterdir()) == []


def test_the_media_folder_keeps_each_video_once_within_its_room_and_marks_what_went(tmp_path):
    """Uploads moved in by their bytes (the same bytes once), a poster each; the oldest go with their reels and
    thumbnails when room is needed, their posters and analyses stay, and the library is told which have no video."""
    library = Library.open(Settings(database_url=f"sqlite:///{tmp_path / 'library.db'}"))
    folder = tmp_path / "media"
    media = Media(folder, max_bytes=3000)

    def stored(name: str, size: int) -> tuple[dict, Path]:
        path = tmp_path / f"{name}.upload"
        path.write_bytes(name.encode() * size)
        result = {"video": {"filename": name, "duration_s": 1.0}, "clips": [], "head": "kinetics-400",
                  "actions": [], "segments": []}
        return library.keep(result, sha256=name * 64, size=size, analysed={"n": name}), path

    (a, a_path), (b, b_path) = stored("a", 1000), stored("b", 1000)
    assert media.keep(a, a_path, library) and media.keep(b, b_path, library)
    assert [v["has_video"] for v in library.videos()[1]] == [True, True]
    (folder / f"{'a' * 64}.{a['video_id']}.reel-1.copy.mp4").write_bytes(b"x" * 500)  # a's reel, a lock, a half-made one
    (folder / f"{'a' * 64}.{a['video_id']}.reel-1.lock").touch()
    (folder / f".{'a' * 64}.{a['video_id']}.reel-2.partial.x1").mkdir()
    (folder / f"{'a' * 64}.poster.jpg").write_bytes(b"jpeg")  # as made from a real video
    now = time.time()
    os.utime(folder / f"{'b' * 64}.video", (now - 10, now - 10))
    os.utime(folder / f"{'a' * 64}.video", (now - 20, now - 20))
    big, big_path = stored("z", 3001)
    assert not media.keep(big, big_path, library)  # more than all the room: not kept, and deleted
    c, c_path = stored("c", 1000)
    assert media.keep(c, c_path, library)  # a (the oldest, 1500 bytes with its reel) makes room
    assert sorted(p.name for p in folder.iterdir()) == sorted([".media.lock", f"{'a' * 64}.poster.jpg",
                                                               f"{'b' * 64}.video", f"{'c' * 64}.video"])
    assert list(tmp_path.glob("*.upload")) == []  # every upload moved or deleted
    kept = {v["video_id"]: v["has_video"] for v in library.videos()[1]}
    assert kept == {a["video_id"]: False, b["video_id"]: True, c["video_id"]: True, big["video_id"]: False}
    assert media.source("b" * 64) == folder / f"{'b' * 64}.video" and media.source("a" * 64) is None
    assert media.thumbnail("a" * 64, 3.0) == folder / f"{'a' * 64}.poster.jpg"  # the video gone: its poster

    again, again_path = stored("b", 1000)  # the same bytes again: one copy, the newest now
    assert media.keep(again, again_path, library) and not again_path.exists()
    media.max_bytes = 1000
    assert media.sweep(library) == 1 and media.source("c" * 64) is None and media.source("b" * 64) is not None
    off = Media(tmp_path / "off", max_bytes=10**9, enabled=False)  # KEEP_VIDEOS=false: results only
    d, d_path = stored("d", 10)
    assert not off.keep(d, d_path, library) and not d_path.exists() and media.source("d" * 64) is None
    library.close()


def test_a_video_deleted_while_its_reel_is_cut_gives_410_and_leaves_nothing(games, tmp_path, monkeypatch):
    """DELETE /videos/{id} as a reel of it is being cut, early (its pieces cannot be read) or late (the reel is
    made but not yet in place): the reel is refused with 410, and no file of it is left."""
    import common.reels
    from service.refusals import Refused

    folder, real_make_reel = tmp_path / "media", common.reels.make_reel
    media = Media(folder, max_bytes=10**9)
    result = {"video": {"duration_s": 30.0, "sha256": "g" * 64}, "video_id": "v1",
              "segments": [{"label": "a", "start_s": 2.0, "end_s": 8.0, "confidence": 0.9},
                           {"label": "b", "start_s": 12.0, "end_s": 18.0, "confidence": 0.8}]}
    upload = tmp_path / "game.upload"
    for label, when in (("a", "before"), ("b", "after")):
        upload.write_bytes(games[30].read_bytes())
        assert media.keep(result, upload)

        def deleted_meanwhile(source, *args, when=when, **kwargs):
            if when == "before":
                media.forget("g" * 64, "v1", bytes_still_used=False)
            mode = real_make_reel(source, *args, **kwargs)
            if when == "after":
                media.forget("g" * 64, "v1", bytes_still_used=False)
            return mode

        monkeypatch.setattr(common.reels, "make_reel", deleted_meanwhile)
        with pytest.raises(Refused) as refused:
            media.reel("g" * 64, "v1", result, [label], pad_s=1)
        assert refused.value.status_code == 410 and "deleted" in str(refused.value), when
        assert [p.name for p in folder.iterdir()] == [".media.lock"], when


def test_the_pages_reels_of_its_own_upload_and_of_its_jobs(live_services, games):
    """A result of the page without JavaScript (synchronous): its reel is cut by the page from its copy; a job
    sent through the page: its reel comes from the API. Both play the moments with sound."""
    with httpx.Client(base_url=live_services["web"], timeout=300) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/").text).group(1)
        with open(games[30], "rb") as f:
            page = browser.post("/recognize", data={"csrf_token": token}, files={"video": ("game.mp4", f, "video/mp4")})
        assert page.status_code == 200, page.text[-2000:]
        stem = re.search(r'href="/results/([0-9a-f]{32})\.json"', page.text).group(1)
        reel = browser.get(f"/results/{stem}/highlights", params={"label": SHOOTING, "pad_s": 1})
        assert reel.status_code == 200 and reel.headers["content-type"] == "video/mp4", reel.text[-500:]
        assert re.search(r'filename="?game\.shooting_basketball\.highlights\.mp4', reel.headers["content-disposition"])
        first = reel.content
        assert browser.get(f"/results/{stem}/highlights", params={"label": SHOOTING, "pad_s": 1}).content == first
        missing = browser.get(f"/results/{stem}/highlights", params={"label": "surfing water"})
        assert missing.status_code == 422 and "no moment of surfing water" in missing.text
        assert browser.get(f"/results/{stem}/highlights").status_code == 422
        assert browser.get(f"/results/{'0' * 32}/highlights", params={"label": SHOOTING}).status_code == 404

        with open(games[30], "rb") as f:
            job = browser.post("/jobs", data={"csrf_token": token}, files={"video": ("game.mp4", f, "video/mp4")})
        assert job.status_code == 202, job.text
        body = job.json()
        deadline = time.monotonic() + 300
        while (state := browser.get(f"/jobs/{body['job_id']}").json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert state["status"] == "done"
        from_api = browser.get(body["downloads"]["highlights"], params={"label": SHOOTING, "pad_s": 1})
        assert from_api.status_code == 200 and from_api.headers["content-type"] == "video/mp4"
        direct = httpx.get(f"{live_services['api']}/jobs/{body['job_id']}/highlights",
                           params={"label": SHOOTING, "pad_s": 1}, timeout=300)
        assert from_api.content == direct.content  # the API's reel, cut from the original upload
