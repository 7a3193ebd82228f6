"""Queue workers (workers/) behind the API as a gateway (api/backends/gateway.py), with the real parts: Debian's
redis-server on a free port, two `celery worker` processes running the real model, and the gateway as two
API processes (`python -m api --workers 2`), so every job is read back through either of them.

The tests run in any order: each starts with Redis up and two live workers, a
worker killed by an earlier test replaced by a fresh one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from benchmarks.cluster_process import RedisServer, running_cluster
from benchmarks.postgres_process import PostgresServer
from service.library.store import fingerprint
from conftest import ARCHERY_AVI, DATA, EXPECTED_TOP1, ROOT, _free_port, assert_csv_matches, files_below, write_real_minute

pytestmark = [pytest.mark.distributed, pytest.mark.postgres, pytest.mark.slow]

CRICKET = DATA / "cricket__kinetics_i3d_v_CricketShot_g04_c01.mp4"  # 79 frames: 1 clip
BASKETBALL = DATA / "basketball__mmaction2_shooting_drill.mp4"  # 300 frames at 29.97 fps: 251 at 25
BASKETBALL_WINDOWS = 7  # 64-frame windows of those, 32 apart, and the tail
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 512  # sniffs as MP4, decodes as nothing
# Redis hands a job to another worker once it has been unacknowledged this long, even while its worker still runs
# it: so it must exceed the longest job here (basketball, 9 clips: 12 s or more on a 2-core AVX2 CPU, and 23 s
# in one CI run on the AMX Xeon in a slow moment, where 12 s made the job run twice and its progress go back).
REDELIVER_AFTER_S = 60
MAX_QUEUED = 3
GAME_PART_S = 20  # the 60-second game below runs in 3 parts


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    return write_real_minute(tmp_path_factory.mktemp("game") / "game.mp4")


def _started_parts(cluster) -> list[tuple[str, int]]:
    """(job id, part) of every "part started" line the workers logged, in order."""
    lines = [json.loads(line) for worker in cluster.workers for line in worker.log.read_text().splitlines()
             if line.startswith("{") and '"part started"' in line]
    return [(line["job_id"], line["part"]) for line in sorted(lines, key=lambda line: line["ts"])]


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres):
    """Two workers and two gateway processes, storing in a real PostgreSQL (the way for workers on several
    machines)."""
    env = {"JOBS_REDELIVER_AFTER_S": str(REDELIVER_AFTER_S), "JOBS_MAX_QUEUED": str(MAX_QUEUED), "LOG_LEVEL": "INFO",
           "JOB_PART_S": str(GAME_PART_S), "DATABASE_URL": postgres.url}
    with running_cluster(2, env=env, gateway_processes=2, logs=tmp_path_factory.mktemp("cluster-logs")) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def uploads_gone_after_each_test(request):
    """Every upload is deleted once its job has run (or been refused), or moved into the library's media folder;
    resumable ones (in resumable/) too."""
    if "cluster" not in request.fixturenames:
        yield
        return
    cluster = request.getfixturevalue("cluster")
    _two_live_workers(cluster)
    yield
    deadline = time.monotonic() + 120
    while (left := [str(p.relative_to(cluster.shared)) for p in files_below(cluster.shared)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"uploads left in SHARED_UPLOAD_DIR: {left}"


def _two_live_workers(cluster) -> None:
    """Redis up and two workers announced: a killed one is replaced (its announcement lapses within the registry's
    TTL), so no test depends on which ran before it."""
    if cluster.redis.process is None or cluster.redis.process.poll() is not None:
        cluster.redis.start()
    while sum(not w.killed and w.process.poll() is None for w in cluster.workers) < 2:
        cluster.add_worker()
    cluster.wait_workers(2, timeout_s=300)


def _live(cluster) -> set[str]:
    """The hostnames of the workers no test has killed."""
    return {w.hostname for w in cluster.workers if not w.killed}


def _submit(api: str, clip: Path, **params) -> httpx.Response:
    return httpx.post(f"{api}/jobs", params=params, files={"video": (clip.name, clip.read_bytes(), "video/mp4")},
                      timeout=60)


def _follow(api: str, job_id: str, timeout_s: float = 300, until=("done", "failed")) -> list[dict]:
    """Every state seen, polling on fresh connections (so both gateway processes answer), until `until`."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{api}/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if seen[-1]["status"] in until:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {seen[-1]['status']} after {timeout_s} s")


def test_the_gateway_answers_for_the_model_its_workers_serve(cluster):
    health = cluster.health()
    assert health == {"status": "ok", "model_loaded": False, "broker": "ok", "workers": 2}
    model = httpx.get(f"{cluster.api}/model").json()
    assert model["heads"] == ["kinetics400"] and model["clip_length"] == 64 and model["loaded"]
    assert "action_api_jobs_queued 0.0" in httpx.get(f"{cluster.api}/metrics").text  # the queue in Redis
    labels = httpx.get(f"{cluster.api}/labels").json()
    assert labels["head"] == "kinetics400" and len(labels["labels"]) == 400
    live = httpx.post(f"{cluster.api}/live/sessions")  # live runs where the model is: an API without a broker
    assert live.status_code == 501 and "not on a gateway" in live.json()["detail"]
    assert len(_children(cluster.gateway.pid, running='spawn_main')) == 2  # two API processes, one state (Redis)
    health = [subprocess.run([sys.executable, "-m", "workers.health", name], cwd=ROOT, env=cluster.env,
                             capture_output=True, text=True, timeout=60) for name in (sorted(_live(cluster))[0], "w9@local")]
    assert [h.returncode for h in health] == [0, 1]  # the worker container's healthcheck
    assert "w9@local has not announced itself" in health[1].stderr


def test_a_job_end_to_end_with_progress_that_never_goes_backwards(cluster):
    response = _submit(cluster.api, BASKETBALL, top_k=3)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and response.headers["Location"] == f"/jobs/{job['id']}"
    seen = _follow(cluster.api, job["id"])
    final = seen[-1]
    assert final["status"] == "done", final
    done = [s["progress"]["clips_done"] for s in seen]
    assert done == sorted(done), done  # never backwards
    assert any(s["status"] == "running" and 0 < s["progress"]["clips_done"] < BASKETBALL_WINDOWS for s in seen)
    assert final["progress"] == {"clips_done": BASKETBALL_WINDOWS, "clips_total": BASKETBALL_WINDOWS, "eta_s": None}
    assert final["worker"] in _live(cluster)
    result = final["result"]
    assert result["actions"][0]["label"] == "shooting basketball" and len(result["actions"]) == 3
    assert result["video"]["filename"] == BASKETBALL.name and len(result["clips"]) == BASKETBALL_WINDOWS
    table = httpx.get(f"{cluster.api}/jobs/{job['id']}?format=csv")  # read from Redis as well
    assert table.status_code == 200
    assert_csv_matches(table.text, result)  # its moments, then its clips
    media = Path(os.environ["DATA_DIR"]) / "media"  # every process's MEDIA_DIR (tests/conftest.py)
    assert (media / f"{result['video']['sha256']}.video").is_file()  # the worker kept it in the library's media
    stored = httpx.get(f"{cluster.api}/videos/{result['video_id']}", timeout=10)  # and stored its result
    assert stored.status_code == 200 and stored.json()["clips"] == result["clips"] and result["cached"] is False
    reel = httpx.get(f"{cluster.api}/jobs/{job['id']}/highlights", params={"label": "shooting basketball"}, timeout=300)
    assert reel.status_code == 200 and reel.headers["content-type"] == "video/mp4" and len(reel.content) > 10_000


def test_a_resumable_upload_cut_midway_becomes_a_job_on_the_workers(cluster):
    """tus through the two gateway processes: the connection breaks at 60%, the HEAD and the rest go on fresh
    connections (to either process), and the finished upload runs on a queue worker."""
    tus, video = {"Tus-Resumable": "1.0.0"}, BASKETBALL.read_bytes()
    created = httpx.post(f"{cluster.api}/uploads", headers={**tus, "Upload-Length": str(len(video))})
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    cut = int(len(video) * 0.6)
    port = int(cluster.api.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((f"PATCH {location} HTTP/1.1\r\nHost: test\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                      f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(video)}\r\n\r\n").encode()
                     + video[:cut])
        time.sleep(0.3)
    head = httpx.head(f"{cluster.api}{location}", headers=tus)
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == cut
    rest = httpx.patch(f"{cluster.api}{location}", content=video[cut:], headers={
        **tus, "Upload-Offset": str(cut), "Content-Type": "application/offset+octet-stream"})
    assert rest.status_code == 204, rest.text
    final = _follow(cluster.api, location.rsplit("/", 1)[1])[-1]
    assert final["status"] == "done" and final["worker"] in _live(cluster)
    assert final["result"]["actions"][0]["label"] == "shooting basketball"
    assert httpx.delete(f"{cluster.api}{location}", headers=tus).status_code == 204


def test_the_synchronous_route_goes_through_the_queue_with_the_same_answers(cluster):
    api = cluster.api
    response = httpx.post(f"{api}/recognize_action", files={"video": ("c.mp4", CRICKET.read_bytes(), "video/mp4")},
                          timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["actions"][0]["label"] == "playing cricket" and set(body) == {"actions", "head", "sport", "segments",
                                                                               "clips", "video", "timings_ms",
                                                                               "video_id", "cached"}
    raw = httpx.post(f"{api}/recognize_action?top_k=2", content=ARCHERY_AVI.read_bytes(),
                     headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"}, timeout=120)
    assert raw.status_code == 200 and raw.json()["actions"][0]["label"] == "archery" and len(raw.json()["actions"]) == 2
    # the same error codes as one process: 415 at the gateway, 422 from a worker, 422 for an unknown head
    assert httpx.post(f"{api}/recognize_action", files={"video": ("x.mp4", b"not a video", "video/mp4")}).status_code == 415
    bad = httpx.post(f"{api}/recognize_action", files={"video": ("x.mp4", FAKE_MP4, "video/mp4")}, timeout=120)
    assert bad.status_code == 422 and "not a readable video" in bad.json()["detail"]
    head = httpx.post(f"{api}/recognize_action?head=nope", files={"video": ("c.mp4", CRICKET.read_bytes(), "video/mp4")})
    assert head.status_code == 422 and "unknown head 'nope'" in head.json()["detail"]


def test_a_bad_video_fails_its_job_with_422_and_an_unknown_id_is_404(cluster):
    response = _submit(cluster.api, CRICKET)  # a good one beside it
    bad = httpx.post(f"{cluster.api}/jobs", files={"video": ("x.mp4", FAKE_MP4, "video/mp4")})
    assert response.status_code == bad.status_code == 202
    final = _follow(cluster.api, bad.json()["id"])[-1]
    assert final["status"] == "failed" and final["error"]["status_code"] == 422, final
    assert "not a readable video" in final["error"]["detail"] and final["worker"]
    assert _follow(cluster.api, response.json()["id"])[-1]["status"] == "done"
    unknown = httpx.get(f"{cluster.api}/jobs/0123456789abcdef0123456789abcdef")
    assert unknown.status_code == 404 and "no such job" in unknown.json()["detail"]


def test_two_workers_both_take_jobs(cluster):
    ids = [_submit(cluster.api, CRICKET).json()["id"] for _ in range(4)]
    finals = [_follow(cluster.api, job_id)[-1] for job_id in ids]
    assert {f["status"] for f in finals} == {"done"}
    assert {f["result"]["actions"][0]["label"] for f in finals} == {"playing cricket"}
    assert {f["worker"] for f in finals} == _live(cluster)


def test_two_workers_and_two_gateway_processes_writing_at_once_lose_nothing(cluster):
    """Eight jobs at once (as many as the queue takes) through both gateway processes, run by both workers,
    stored in PostgreSQL together:
    five videos, one of them sent four times (one analysis kept, and every answer carries its id). Each is
    listed, found by search and played back from the shared media folder."""
    import concurrent.futures

    clips = [DATA / name for name in ("taichi__stgcn_ta_chi.mp4", "weightlifting__stgcn_clean_and_jerk.mp4",
                                      "yoga__uniformer_Tw2yXa6CzWE.mp4", "bassguitar__askanything_playing_guitar.mp4")]
    sent = [*clips, *[CRICKET] * 4]

    def submitted(clip: Path) -> str:  # as a client does: again after Retry-After while the queue is full
        deadline = time.monotonic() + 300
        while (answer := _submit(cluster.api, clip, top_k=2)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(min(float(answer.headers.get("Retry-After", 1)), 1.0))
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(len(sent)) as pool:
        ids = list(pool.map(submitted, sent))
        finals = list(pool.map(lambda job_id: _follow(cluster.api, job_id, timeout_s=600)[-1], ids))
    assert [f["status"] for f in finals] == ["done"] * len(sent), [f.get("error") for f in finals]
    assert {f["worker"] for f in finals} == _live(cluster)
    results = [f["result"] for f in finals]
    assert len({r["video_id"] for r in results[len(clips):]}) == 1  # the same bytes asked the same way: one
    assert len({r["video_id"] for r in results}) == len(clips) + 1
    for clip, result in zip(sent, results):
        assert result["actions"][0]["label"] == EXPECTED_TOP1[clip.name], clip.name
        stored = httpx.get(f"{cluster.api}/videos/{result['video_id']}", timeout=10).json()
        assert stored["has_video"] and stored["clips"] == result["clips"]
        played = httpx.get(f"{cluster.api}/videos/{result['video_id']}/video", timeout=30)
        assert played.status_code == 200 and played.content == clip.read_bytes()
        found = httpx.get(f"{cluster.api}/search", params={"label": result["segments"][0]["label"], "limit": 200},
                          timeout=10).json()
        assert result["video_id"] in {m["video_id"] for m in found["moments"]}


def test_a_game_stored_before_is_answered_by_the_gateway_without_cutting_it_into_parts(tmp_path, game):
    """The gateway looks a game up in the library before cutting it into parts (a worker asked for one video
    looks it up itself): the same bytes asked the same way are done at once, no task sent, the upload kept."""
    from service.analysis import Analyses, Asked
    from service.jobs import Job
    from service.library.media import Media
    from service.library.store import Library
    from service.queue.celery_app import QUEUE, make_celery
    from service.queue.executor import QueuedJobs
    from service.settings import Settings

    broker = RedisServer(tmp_path / "redis.log").start()
    try:
        settings = Settings(jobs_broker_url=broker.url, shared_upload_dir=tmp_path / "shared", job_part_s=GAME_PART_S,
                            data_dir=tmp_path, reuse_results=True)
        library, media = Library.open(settings), Media.from_settings(settings)
        analyses = Analyses(settings, library, media)  # the gateway's: no model
        analysed = analyses.analysed(Asked(top_k=3, filename="earlier.mp4"))
        stored = library.keep({"video": {"filename": "earlier.mp4", "duration_s": 60.0}, "clips": [{"index": 0}],
                               "head": "kinetics-400", "actions": [], "segments": []},
                              sha256=fingerprint(game)[0], size=game.stat().st_size, analysed=analysed)
        celery = make_celery(settings)
        jobs = QueuedJobs(celery, redis.Redis.from_url(broker.url), lambda: 8, settings=settings,
                          answered=lambda job: analyses.stored_answer(job.video, Asked.of(job)))
        (tmp_path / "shared").mkdir()
        for top_k, cached in ((3, True), (2, False)):
            upload = tmp_path / "shared" / f"{top_k}.upload"
            upload.write_bytes(game.read_bytes())
            job = Job(id=f"job-{top_k}", video=upload, filename="again.mp4", top_k=top_k, head=None)
            jobs.submit(job)
            state = jobs.get(job.id)
            if cached:
                assert state.status == "done" and state.result["video_id"] == stored["video_id"]
                assert state.result["cached"] is True and state.result["video"]["filename"] == "again.mp4"
                assert redis.Redis.from_url(broker.url).llen(QUEUE) == 0 and not upload.exists()
                assert media.source(fingerprint(game)[0]) is not None  # kept for playback and reels
            else:  # asked another way: cut into parts for the workers
                assert state.status == "queued" and redis.Redis.from_url(broker.url).llen(QUEUE) == 3
        library.close()
    finally:
        broker.stop()


def test_a_full_queue_answers_503_with_retry_after(cluster):
    """Both workers busy with a long job, MAX_QUEUED (3) jobs waiting: the next one is refused, not lost."""
    long_jobs = [_submit(cluster.api, BASKETBALL).json()["id"] for _ in range(2)]
    for job_id in long_jobs:
        _follow(cluster.api, job_id, until=("running", "done", "failed"))
    waiting = [_submit(cluster.api, CRICKET) for _ in range(MAX_QUEUED)]
    assert [r.status_code for r in waiting] == [202] * MAX_QUEUED
    refused = _submit(cluster.api, CRICKET)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "10", refused.text
    assert "already waiting for a worker" in refused.json()["detail"]
    for job_id in long_jobs + [r.json()["id"] for r in waiting]:
        assert _follow(cluster.api, job_id)[-1]["status"] == "done"


def test_a_running_job_shows_its_windows_and_stops_when_cancelled(cluster, tmp_path):
    from conftest import write_video

    video = write_video(tmp_path / "long.avi", 1500)  # 60 s at 25 fps: 46 windows
    job_id = _submit(cluster.api, video).json()["id"]
    deadline = time.monotonic() + 240
    while (state := httpx.get(f"{cluster.api}/jobs/{job_id}").json())["progress"]["clips_done"] < 3:
        assert state["status"] in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["progress"]["eta_s"] > 0 and state["worker"] in _live(cluster)
    time.sleep(1)  # the worker sends its windows in batches, every half second
    windows = httpx.get(f"{cluster.api}/jobs/{job_id}/windows").json()
    assert len(windows["windows"]) >= 3 and [w["index"] for w in windows["windows"]] == list(range(windows["next"]))
    cancelled = httpx.delete(f"{cluster.api}/jobs/{job_id}")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled", cancelled.text
    time.sleep(3)  # the worker sees it within a second and stops at its next window
    stopped = httpx.get(f"{cluster.api}/jobs/{job_id}/windows").json()
    time.sleep(2)
    assert httpx.get(f"{cluster.api}/jobs/{job_id}/windows").json()["next"] == stopped["next"] < 46
    assert httpx.get(f"{cluster.api}/jobs/{job_id}").json()["status"] == "cancelled"
    assert httpx.delete(f"{cluster.api}/jobs/nope").status_code == 404  # the upload's deletion: the autouse fixture


def test_a_game_runs_in_parts_on_both_workers_with_the_one_process_result(cluster, game, recognizer):
    job_id = _submit(cluster.api, game, top_k=3).json()["id"]
    seen = _follow(cluster.api, job_id)
    final = seen[-1]
    assert final["status"] == "done", final
    assert [(p["start_s"], p["state"]) for p in final["parts"]] == [(0.0, "done"), (20.48, "done"), (40.96, "done")]
    assert {p["worker"] for p in final["parts"]} == _live(cluster)  # at once, on both
    assert any(s["status"] == "running" and 0 < s["progress"]["clips_done"] < 46 for s in seen)
    done = [s["progress"]["clips_done"] for s in seen]
    assert done == sorted(done) and final["progress"]["clips_total"] == 46
    one = recognizer.recognize(game, top_k_actions=3, filename=game.name)  # one process, one pass
    merged = final["result"]
    assert [a["label"] for a in merged["actions"]] == [a["label"] for a in one["actions"]]
    assert [a["confidence"] for a in merged["actions"]] == pytest.approx([a["confidence"] for a in one["actions"]], abs=1e-3)
    assert merged["video"] == {**one["video"], "sha256": fingerprint(game)[0]}  # the stored bytes, named
    fields = ("index", "start_s", "end_s", "start_frame", "end_frame")
    assert [[c[f] for f in fields] for c in merged["clips"]] == [[c[f] for f in fields] for c in one["clips"]]
    assert [c["actions"][0]["label"] for c in merged["clips"]] == [c["actions"][0]["label"] for c in one["clips"]]
    assert [(s["label"], s["windows"]) for s in merged["segments"]] == [(s["label"], s["windows"]) for s in one["segments"]]
    assert [s["start_s"] for s in merged["segments"]] == pytest.approx([s["start_s"] for s in one["segments"]], abs=0.05)
    windows = httpx.get(f"{cluster.api}/jobs/{job_id}/windows").json()
    assert [w["index"] for w in windows["windows"]] == list(range(46))
    assert [w["start_s"] for w in windows["windows"]] == [c["start_s"] for c in one["clips"]]
    assert sorted(part for job, part in _started_parts(cluster) if job == job_id) == [0, 1, 2]
    found = httpx.get(f"{cluster.api}/search", params={"label": merged["segments"][0]["label"], "limit": 200}).json()
    assert merged["video_id"] in {m["video_id"] for m in found["moments"]}  # the merged game, stored and searchable
    label = merged["segments"][-1]["label"]  # a reel of a game merged from parts, through either gateway process
    reel = httpx.get(f"{cluster.api}/jobs/{job_id}/highlights", params={"label": label, "pad_s": 1}, timeout=300)
    assert reel.status_code == 200 and reel.headers["x-reel-cut"] in ("copy", "encode"), reel.text
    again = httpx.get(f"{cluster.api}/jobs/{job_id}/highlights", params={"label": label, "pad_s": 1}, timeout=300)
    assert again.content == reel.content and again.headers["x-reel-cut"] == reel.headers["x-reel-cut"]


def test_cancelling_a_game_stops_every_part(cluster, game):
    job_id = _submit(cluster.api, game).json()["id"]
    deadline = time.monotonic() + 240
    while (state := httpx.get(f"{cluster.api}/jobs/{job_id}").json())["progress"]["clips_done"] < 2:
        assert state["status"] in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.1)
    cancelled = httpx.delete(f"{cluster.api}/jobs/{job_id}")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled", cancelled.text
    while any(p["state"] in ("queued", "running") for p in httpx.get(f"{cluster.api}/jobs/{job_id}").json()["parts"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    final = httpx.get(f"{cluster.api}/jobs/{job_id}").json()
    assert final["status"] == "cancelled" and final["progress"]["clips_done"] < 46
    assert {p["state"] for p in final["parts"]} <= {"cancelled", "done"}  # the upload's deletion: the autouse fixture


def test_a_worker_killed_mid_part_costs_only_its_part(cluster, game):
    job_id = _submit(cluster.api, game, top_k=3).json()["id"]
    deadline = time.monotonic() + 240
    while True:
        state = httpx.get(f"{cluster.api}/jobs/{job_id}").json()
        running = [p for p in state.get("parts") or () if p["state"] == "running" and p["worker"]]
        if running:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    running = running[0]
    victim = next(w for w in cluster.workers if w.hostname == running["worker"])
    victim.kill()
    final = _follow(cluster.api, job_id, timeout_s=REDELIVER_AFTER_S + 300)[-1]
    assert final["status"] == "done", final
    assert final["result"]["actions"][0]["label"] in {"shooting basketball", "yoga", "tai chi"}
    assert len(final["result"]["clips"]) == 46
    started = [part for job, part in _started_parts(cluster) if job == job_id]
    again = [part for part in set(started) if started.count(part) > 1]
    assert len(again) == 1 and len(started) == 4, started  # only the killed worker's part ran twice
    fresh = cluster.add_worker()  # its healthcheck passes once it has loaded the model and announced itself
    deadline = time.monotonic() + 300
    while subprocess.run([sys.executable, "-m", "workers.health", fresh.hostname], cwd=ROOT, env=cluster.env,
                         capture_output=True, timeout=60).returncode != 0:
        assert fresh.process.poll() is None and time.monotonic() < deadline, fresh.log.read_text()[-2000:]
        time.sleep(1)


def test_a_worker_killed_mid_job_loses_nothing(cluster):
    """SIGKILL the worker running a job: after JOBS_REDELIVER_AFTER_S Redis hands it to the other worker."""
    job_id = _submit(cluster.api, BASKETBALL).json()["id"]
    running = _follow(cluster.api, job_id, until=("running",))[-1]
    while running["progress"]["clips_done"] < 1:
        running = httpx.get(f"{cluster.api}/jobs/{job_id}").json()
        time.sleep(0.05)
    victim = next(w for w in cluster.workers if w.hostname == running["worker"])
    victim.kill()
    final = _follow(cluster.api, job_id, timeout_s=REDELIVER_AFTER_S + 240)[-1]
    assert final["status"] == "done" and final["worker"] != victim.hostname, final
    assert final["result"]["actions"][0]["label"] == "shooting basketball"
    assert final["progress"] == {"clips_done": BASKETBALL_WINDOWS, "clips_total": BASKETBALL_WINDOWS, "eta_s": None}


def test_the_broker_stopped_answers_503_and_the_service_recovers_when_it_returns(cluster):
    cluster.redis.stop()
    try:
        health = httpx.get(f"{cluster.api}/health", timeout=10)
        assert health.status_code == 503 and health.json()["broker"] == "unreachable"
        for response in (_submit(cluster.api, CRICKET),
                         httpx.post(f"{cluster.api}/recognize_action", files={"video": ("c.mp4", CRICKET.read_bytes())},
                                    timeout=30)):
            assert response.status_code == 503 and "Retry-After" in response.headers, response.text
            assert "the job broker (Redis) is not reachable" in response.json()["detail"]
        assert httpx.get(f"{cluster.api}/jobs/0123456789abcdef", timeout=10).status_code == 503
    finally:
        cluster.redis.start()
    cluster.wait_workers(sum(not w.killed for w in cluster.workers), timeout_s=120)  # the workers reconnect and announce themselves again
    response = httpx.post(f"{cluster.api}/recognize_action", files={"video": ("c.mp4", CRICKET.read_bytes())},
                          timeout=120)
    assert response.status_code == 200 and response.json()["actions"][0]["label"] == "playing cricket"


def test_a_worker_on_another_pool_is_refused_before_loading_anything(cluster):
    """One process, the model loaded once in it, and never TensorFlow before a fork: the solo pool only. (A plain
    --pool=prefork already gets solo, the app's configured pool; other pools are refused.)"""
    done = subprocess.run([str(Path(sys.executable).parent / "celery"), "-A", "workers.worker", "worker",
                           "--pool=threads", "-Q", "recognition"], cwd=ROOT, env=cluster.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "recognition workers run with --pool=solo" in done.stdout + done.stderr
    assert "model loaded" not in done.stdout + done.stderr


def _children(pid: int, running: str) -> list[int]:
    """The processes whose parent is `pid` and whose command line has `running` in it."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if parent == pid and running in command:
            children.append(int(stat.parent.name))
    return children


def test_make_cluster_starts_everything_on_one_machine_and_ctrl_c_stops_it(tmp_path):
    """`make cluster`: redis-server, WORKERS workers, the gateway and the page; one Ctrl-C stops them all."""
    ports = {name: _free_port() for name in ("API_PORT", "FRONTEND_PORT", "REDIS_PORT")}
    env = {**os.environ, "SHARED_UPLOAD_DIR": str(tmp_path / "shared"), "FRONTEND_UPLOAD_DIR": str(tmp_path / "web"),
           "FRONTEND_DATA_DIR": str(tmp_path / "data")}
    api, page = f"http://127.0.0.1:{ports['API_PORT']}", f"http://127.0.0.1:{ports['FRONTEND_PORT']}"
    log = tmp_path / "make-cluster.log"
    with open(log, "w") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "cluster", "WORKERS=1",
                                 *(f"{name}={port}" for name, port in ports.items())],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (_get(f"{api}/health").get("workers") == 1 and _get(f"{page}/health")):
            assert make.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        response = httpx.post(f"{api}/recognize_action", files={"video": ("c.mp4", CRICKET.read_bytes())}, timeout=120)
        assert response.status_code == 200 and response.json()["actions"][0]["label"] == "playing cricket"
        assert list((tmp_path / "shared").iterdir()) == []
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=90)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    assert "Traceback" not in log.read_text()
    assert not _get(f"{api}/health") and not _get(f"{page}/health")
    with pytest.raises(OSError):  # redis-server is gone too
        socket.create_connection(("127.0.0.1", ports["REDIS_PORT"]), timeout=2).close()


def _get(url: str) -> dict:
    """The JSON at `url` when it answers 200, else {}."""
    try:
        response = httpx.get(url, timeout=3)
        return response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
