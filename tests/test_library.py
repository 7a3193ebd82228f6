"""The library (service/library/) on SQLite and on a real PostgreSQL (a throwaway cluster of Debian's): a real
result kept, found again by its bytes, listed, searched and deleted; two writers at once; the migrations; the
API's routes, the same video answered from the store, a restart, and a database that goes away and comes back."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from api.main import app
from benchmarks.postgres_process import PostgresServer
from conftest import CRICKET_MP4
from models.recognition.segments import SegmentSettings
from service.library.database import UnsafeDatabase, current_revision, filesystem_of, migrate, open_engine
from service.library.store import Library, analysis, fingerprint
from service.settings import Settings, get_settings

CRICKET = "playing cricket"


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
    assert library.get(video_id) == {**cricket, "video_id": video_id}

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
                                                  "created_at": None}
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
    assert current_revision(library.engine) == "0001"
    tables = set(inspect(library.engine).get_table_names())
    assert {"videos", "moments", "alembic_version"} <= tables
    migrate(library.engine)  # another process starting: nothing to do
    assert current_revision(library.engine) == "0001"


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
        app.dependency_overrides[get_settings] = lambda: settings
        client = TestClient(app)
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)
    app.dependency_overrides.clear()


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
    assert client.delete(f"/videos/{first['video_id']}").status_code == 204
    assert client.get(f"/videos/{first['video_id']}").status_code == 404
    assert client.delete(f"/videos/{first['video_id']}").status_code == 404
    assert {m["video_id"] for m in client.get("/search", params={"label": CRICKET}).json()["moments"]} == {other.json()["video_id"]}
    assert _recognize(client)["cached"] is False  # deleted: recognized anew


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
