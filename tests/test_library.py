"""The library (service/library/) on SQLite and on a real PostgreSQL (a throwaway cluster of Debian's): a real
result kept, found again by its bytes, listed, searched and deleted; two writers at once; the migrations; the
API's routes, the same video answered from the store, a restart, and a database that goes away and comes back."""

from __future__ import annotations

import json
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from api.app import create_app
from benchmarks.postgres_process import PostgresServer
from conftest import CRICKET_MP4, DATA
from models.recognition.segments import SegmentSettings
from service.library.database import UnsafeDatabase, current_revision, filesystem_of, migrate, open_engine
from service.library.store import Library, analysis, fingerprint, settings_key
from service.settings import Settings

CRICKET = "playing cricket"
SHOOTING = "shooting basketball"
BASKETBALL = DATA / "basketball__mmaction2_shooting_drill.mp4"


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def cricket(recognizer) -> dict:
    return recognizer.recognize(CRICKET_MP4, filename=CRICKET_MP4.name)


@pytest.fixture(params=["sqlite", "postgresql"])
def library(request, tmp_path, postgres):
    url = f"sqlite:///{tmp_path / 'library.db'}" if request.param == "sqlite" else postgres.url
    library = Library.open(Settings(database_url=url))
    yield library
    with library.engine.begin() as db:
        db.execute(text("DELETE FROM moments"))
        db.execute(text("DELETE FROM videos"))
    library.close()


def _asked(**changes) -> dict:
    return analysis(Settings(), head=None, sport=None, top_k=changes.pop("top_k", 5), segments=SegmentSettings())


def test_a_result_is_kept_found_again_listed_searched_and_deleted(library, cricket):
    sha256, size = fingerprint(CRICKET_MP4)
    kept = library.keep(cricket, sha256=sha256, size=size, analysed=_asked())
    video_id = kept["video_id"]
    assert kept["cached"] is False and len(video_id) == 32 and kept["actions"] == cricket["actions"]
    again = library.answer(sha256, _asked())
    assert again["cached"] is True and again["video_id"] == video_id and again["clips"] == cricket["clips"]
    assert library.answer(sha256, _asked(top_k=3)) is None  # asked another way: runs again
    assert library.get(video_id) == {**cricket, "video": {**cricket["video"], "sha256": sha256}, "video_id": video_id,
                                     "has_video": False}  # no media folder here

    total, videos = library.videos()
    assert total == 1 and videos[0]["video_id"] == video_id and videos[0]["sha256"] == sha256
    assert videos[0]["filename"] == CRICKET_MP4.name and videos[0]["windows"] == len(cricket["clips"])
    assert videos[0]["top_actions"][0]["label"] == CRICKET
    assert library.videos(labels=[CRICKET])[0] == 1 and library.videos(labels=["yoga"])[0] == 0
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert library.videos(since=later)[0] == 0 and library.videos(until=later)[0] == 1

    total, moments = library.search(labels=[CRICKET])
    assert total == len([s for s in cricket["segments"] if s["label"] == CRICKET]) >= 1
    first = next(s for s in cricket["segments"] if s["label"] == CRICKET)
    assert moments[0] | {"created_at": None} == {"video_id": video_id, "filename": CRICKET_MP4.name, "label": CRICKET,
                                                  "start_s": first["start_s"], "end_s": first["end_s"],
                                                  "peak_s": first["peak_s"], "confidence": first["confidence"],
                                                  "created_at": None, "has_video": False}
    assert library.search(labels=[CRICKET], min_confidence=first["confidence"] + 1e-6)[0] == total - 1
    assert library.search(labels=[CRICKET], since=later)[0] == 0

    assert library.delete(video_id) and library.get(video_id) is None
    assert library.search(labels=[CRICKET])[0] == 0 and library.videos()[0] == 0 and not library.delete(video_id)


def test_the_same_analysis_written_by_four_at_once_is_kept_once(library, cricket):
    answers, sha256 = [], "f" * 64

    def keep():
        answers.append(library.keep(cricket, sha256=sha256, size=1, analysed=_asked())["video_id"])

    threads = [threading.Thread(target=keep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and len(set(answers)) == 1 and library.videos()[0] == 1
    rerun = library.keep({**cricket, "video": {**cricket["video"], "filename": "again.mp4"}}, sha256=sha256, size=1,
                         analysed=_asked())  # run again (REUSE_RESULTS off): its own answer, the one stored id
    assert rerun["video_id"] == answers[0] and rerun["video"]["filename"] == "again.mp4" and library.videos()[0] == 1


def test_the_schema_comes_from_the_migrations_and_a_second_run_changes_nothing(library):
    assert current_revision(library.engine) == "0002"
    tables = set(inspect(library.engine).get_table_names())
    assert {"videos", "moments", "alembic_version"} <= tables
    migrate(library.engine)  # another process starting: nothing to do
    assert current_revision(library.engine) == "0002"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_library_of_the_previous_revision_is_upgraded_with_its_videos(kind, tmp_path, postgres, cricket):
    """A library written by 0001 (before videos were kept): brought to the head at start-up, every stored
    analysis still there, found by its bytes, marked as having no video."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else postgres.url
    engine = open_engine(url)
    with engine.begin() as db:  # a clean slate on the shared cluster
        db.execute(text("DROP TABLE IF EXISTS moments"))
        db.execute(text("DROP TABLE IF EXISTS videos"))
        db.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine, "0001")
    sha256, size = fingerprint(CRICKET_MP4)
    with engine.begin() as db:  # what 0001's code wrote
        db.execute(text(
            "INSERT INTO videos (id, sha256, settings_key, filename, size_bytes, duration_s, fps, width, height, frames,"
            " windows, head, sport, settings, top_actions, result, created_at) VALUES (:id, :sha, :key, 'old.mp4', "
            ":size, 3.2, 25, 224, 224, 79, 2, 'kinetics-400', NULL, '{}', '[]', :result, :created)"),
            {"id": "a" * 32, "sha": sha256, "key": settings_key(_asked()), "size": size, "created": datetime.now(timezone.utc),
             "result": zlib.compress(json.dumps({**cricket, "video_id": "a" * 32}).encode())})
        db.execute(text("INSERT INTO moments (video_id, label, start_s, end_s, peak_s, confidence, first_window, "
                        "last_window) VALUES (:id, :label, 0, 3.2, 1.0, 0.9, 0, 1)"), {"id": "a" * 32, "label": CRICKET})
    engine.dispose()
    library = Library.open(Settings(database_url=url))  # as a new release starts on it
    try:
        assert current_revision(library.engine) == "0002"
        assert library.answer(sha256, _asked())["video_id"] == "a" * 32
        assert library.get("a" * 32)["has_video"] is False and library.get("a" * 32)["video"]["sha256"] == sha256
        assert [m["video_id"] for m in library.search(labels=[CRICKET])[1]] == ["a" * 32]
    finally:
        with library.engine.begin() as db:
            db.execute(text("DELETE FROM moments"))
            db.execute(text("DELETE FROM videos"))
        library.close()


def test_a_sqlite_file_on_a_network_share_is_refused_with_the_reason(tmp_path, monkeypatch):
    mounts = "server:/export /mnt/games nfs4 rw 0 0\n/dev/vda1 / ext4 rw 0 0\n"
    assert filesystem_of(tmp_path, mounts) == "ext4" and filesystem_of(tmp_path / "x", "") == ""
    from pathlib import Path
    assert filesystem_of(Path("/mnt/games/season"), mounts) == "nfs4"
    monkeypatch.setattr("service.library.database.filesystem_of", lambda path: "nfs4")
    with pytest.raises(UnsafeDatabase, match="network filesystem .nfs4.*DATABASE_URL=postgresql"):
        open_engine(f"sqlite:///{tmp_path / 'library.db'}")


@pytest.fixture
def serving(saved_model_dir, tmp_path):
    """A started API with results reused, on `database_url` (default: SQLite in its data folder)."""
    started = []

    def start(**settings_changes) -> TestClient:
        settings = Settings(model_handle=str(saved_model_dir), upload_dir=tmp_path / "uploads", data_dir=tmp_path,
                            reuse_results=True, **settings_changes)
        client = TestClient(create_app(settings))
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


def _recognize(client) -> dict:
    response = client.post("/recognize_action", files={"video": ("match.mp4", CRICKET_MP4.read_bytes(), "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_api_keeps_every_result_answers_the_same_video_from_it_and_survives_a_restart(serving):
    client = serving()
    first = _recognize(client)
    assert first["cached"] is False and first["actions"][0]["label"] == CRICKET
    started = time.perf_counter()
    second = _recognize(client)
    assert second["cached"] is True and second["video_id"] == first["video_id"]
    print(f"answered from the library in {time.perf_counter() - started:.3f} s")
    assert {k: v for k, v in second.items() if k != "cached"} == {k: v for k, v in first.items() if k != "cached"}
    renamed = client.post("/recognize_action", files={"video": ("final.mp4", CRICKET_MP4.read_bytes(), "video/mp4")})
    assert renamed.json()["cached"] is True and renamed.json()["video"]["filename"] == "final.mp4"  # the name it came with
    other = client.post("/recognize_action?top_k=2", files={"video": ("m.mp4", CRICKET_MP4.read_bytes(), "video/mp4")})
    assert other.json()["cached"] is False and other.json()["video_id"] != first["video_id"]  # asked another way
    job = client.post("/jobs", files={"video": ("m.mp4", CRICKET_MP4.read_bytes(), "video/mp4")}).json()
    deadline = time.monotonic() + 120
    while (state := client.get(f"/jobs/{job['id']}").json())["status"] != "done":
        assert state["status"] in ("queued", "running") and time.monotonic() < deadline
        time.sleep(0.1)
    assert state["result"]["video_id"] == first["video_id"] and state["result"]["cached"] is True

    listed = client.get("/videos").json()
    assert listed["total"] == 2 and {v["video_id"] for v in listed["videos"]} == {first["video_id"], other.json()["video_id"]}
    assert client.get("/videos", params={"limit": 1, "offset": 1}).json()["videos"][0]["video_id"] == first["video_id"]
    assert client.get(f"/videos/{first['video_id']}").json()["clips"] == first["clips"]
    found = client.get("/search", params={"label": CRICKET}).json()
    assert found["total"] >= 2 and {m["video_id"] for m in found["moments"]} == {first["video_id"], other.json()["video_id"]}
    assert client.get("/search", params={"sport": "cricket"}).json()["total"] == found["total"]
    for bad in ({}, {"label": CRICKET, "min_confidence": 2}, {"label": CRICKET, "since": "yesterday"},
                {"sport": "quidditch"}, {"label": CRICKET, "limit": 0}):
        answer = client.get("/search", params=bad)
        assert answer.status_code == 422 and "detail" in answer.json(), bad
    assert client.get("/videos/nope").status_code == 404

    client.__exit__(None, None, None)  # a restart: everything stored is still there
    client = serving()
    assert client.get("/videos").json()["total"] == 2
    played = client.get(f"/videos/{first['video_id']}/video")  # and playable
    assert played.status_code == 200 and played.content == CRICKET_MP4.read_bytes()
    assert client.delete(f"/videos/{first['video_id']}").status_code == 204
    assert client.get(f"/videos/{first['video_id']}").status_code == 404
    assert client.delete(f"/videos/{first['video_id']}").status_code == 404
    assert {m["video_id"] for m in client.get("/search", params={"label": CRICKET}).json()["moments"]} == {other.json()["video_id"]}
    assert _recognize(client)["cached"] is False  # deleted: recognized anew


def _decoded(data: bytes, tmp_path) -> tuple[float, list[str], tuple[int, int]]:
    """(an MP4's duration, its streams' types, its frame size), every frame decoded."""
    import av

    path = tmp_path / "decoded.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        assert frames
        return (float(container.duration / 1e6), sorted(s.type for s in container.streams),
                (frames[0].width, frames[0].height))


def test_stored_videos_play_show_stills_make_reels_across_games_and_go_within_their_room(serving, tmp_path):
    """Two games kept in the media folder: listed with poster and video links, the video played by byte ranges,
    moments' thumbnails, a game's reel and one reel of a search across both (bounded in length); lowering
    MEDIA_MAX_GB lets the videos go (410) while their analyses, posters and moments stay; a delete takes it all."""
    import cv2
    import numpy as np

    client = serving()
    cricket = _recognize(client)
    with open(BASKETBALL, "rb") as f:
        basketball = client.post("/recognize_action", files={"video": ("drill.mp4", f, "video/mp4")}).json()
    assert basketball["actions"][0]["label"] == SHOOTING
    media = tmp_path / "media"
    for result in (cricket, basketball):
        assert (media / f"{result['video']['sha256']}.video").is_file()
        assert (media / f"{result['video']['sha256']}.poster.jpg").is_file()
    assert not list((tmp_path / "uploads").glob("*"))  # each upload moved in
    listed = {v["video_id"]: v for v in client.get("/videos").json()["videos"]}
    drill = listed[basketball["video_id"]]
    assert drill["has_video"] is True and drill["video_url"] == f"/videos/{basketball['video_id']}/video"
    still = client.get(drill["thumbnail_url"])
    assert still.status_code == 200 and still.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(still.content, np.uint8), cv2.IMREAD_COLOR).shape[1] == 320

    played = client.get(drill["video_url"], headers={"Range": "bytes=100-1099"})
    assert played.status_code == 206 and played.content == BASKETBALL.read_bytes()[100:1100]
    assert played.headers["content-type"] == "video/mp4" and played.headers["accept-ranges"] == "bytes"
    assert client.get(drill["video_url"]).content == BASKETBALL.read_bytes()

    found = client.get("/search", params={"label": SHOOTING}).json()["moments"]
    assert found and all(m["video_id"] == basketball["video_id"] and m["has_video"] for m in found)
    thumb = client.get(found[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    later = client.get(f"/videos/{basketball['video_id']}/thumbnail", params={"at": 8.5})
    assert later.status_code == 200 and later.content not in (thumb.content, still.content)  # another frame

    reel = client.get(f"/videos/{basketball['video_id']}/highlights", params={"label": SHOOTING, "pad_s": 0})
    assert reel.status_code == 200 and reel.headers["content-type"] == "video/mp4", reel.text[:300]
    assert _decoded(reel.content, tmp_path)[0] > 1
    across = client.get("/search/highlights", params={"label": [CRICKET, SHOOTING], "pad_s": 0.5, "max_s": 30})
    assert across.status_code == 200, across.text[:300]
    duration, streams, size = _decoded(across.content, tmp_path)
    moments = int(across.headers["x-reel-moments"])
    assert moments >= 2 and streams == ["audio", "video"] and size == (1280, 720)  # silence where a game has none
    assert duration <= 30 + 0.2
    short = client.get("/search/highlights", params={"label": [CRICKET, SHOOTING], "pad_s": 0.5, "max_s": 4})
    assert short.status_code == 200 and int(short.headers["x-reel-moments"]) < moments
    assert _decoded(short.content, tmp_path)[0] <= 4 + 0.2
    for bad in ({"label": SHOOTING, "max_s": 0}, {}, {"label": "surfing water"}, {"label": SHOOTING, "pad_s": -1}):
        answer = client.get("/search/highlights", params=bad)
        assert answer.status_code == 422 and answer.json()["detail"], bad
    assert client.get("/videos/nope/thumbnail").status_code == 404
    assert client.get("/videos/nope/video").status_code == 404

    client.__exit__(None, None, None)  # a restart with no room: every video goes, their analyses stay
    client = serving(media_max_gb=0)
    listed = {v["video_id"]: v for v in client.get("/videos").json()["videos"]}
    assert {v["has_video"] for v in listed.values()} == {False} and {v["video_url"] for v in listed.values()} == {None}
    gone = client.get(f"/videos/{basketball['video_id']}/video")
    assert gone.status_code == 410 and "no longer kept" in gone.json()["detail"]
    assert client.get(f"/videos/{basketball['video_id']}/highlights", params={"label": SHOOTING}).status_code == 410
    assert client.get(drill["thumbnail_url"]).content == still.content  # the poster stays
    assert client.get(found[0]["thumbnail_url"]).content == still.content  # and stands in for its moments
    assert client.get(later.url).content == still.content
    assert not client.get("/search", params={"label": SHOOTING}).json()["moments"][0]["has_video"]
    assert client.get("/search/highlights", params={"label": SHOOTING}).status_code == 422
    sha = basketball["video"]["sha256"]
    assert [p.name for p in media.glob(f"{sha}*")] == [f"{sha}.poster.jpg"]
    assert client.delete(f"/videos/{basketball['video_id']}").status_code == 204
    assert list(media.glob(f"{sha}*")) == [] and client.get(drill["thumbnail_url"]).status_code == 404


def test_test_time_views_are_another_analysis_of_the_same_bytes(serving):
    """TTA=on changes the result, so the library answers it apart: recognized anew, the same action, stored
    under its own id (and a TTA answer comes back cached to a TTA request only)."""
    client = serving()
    plain = _recognize(client)
    client.__exit__(None, None, None)  # a restart with TTA=on
    views = serving(tta=True)
    tta = _recognize(views)
    assert tta["cached"] is False and tta["video_id"] != plain["video_id"]
    assert tta["actions"][0]["label"] == plain["actions"][0]["label"] == CRICKET
    assert len(tta["clips"]) == len(plain["clips"]) and tta["actions"] != plain["actions"]
    assert _recognize(views)["video_id"] == tta["video_id"]


def test_a_database_that_goes_away_gives_503_and_the_next_request_after_it_returns_works(serving, postgres):
    client = serving(database_url=postgres.url)
    first = _recognize(client)
    postgres.stop()
    try:
        away = client.get("/videos")
        assert away.status_code == 503 and "database is not reachable" in away.json()["detail"]
        assert "Retry-After" in away.headers
        assert client.post("/recognize_action", files={"video": ("m.mp4", CRICKET_MP4.read_bytes(), "video/mp4")}).status_code == 503
    finally:
        postgres.start()
    assert client.get(f"/videos/{first['video_id']}").status_code == 200
    with Library.open(Settings(database_url=postgres.url)).engine.begin() as db:
        db.execute(text("DELETE FROM moments"))
        db.execute(text("DELETE FROM videos"))
