"""The API through its real lifespan: the real SavedModel on real clips, and bad inputs."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import hypothesis
import hypothesis.strategies as st
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from service.settings import Settings
from conftest import ARCHERY_AVI, CRICKET_MP4, assert_csv_matches, write_video
from models.hardware import choose_runtime, has_bf16_units
from models.video import VideoLimits


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(saved_model_dir, upload_dir):
    # no video kept in the library's media (KEEP_VIDEOS=false; tests/test_highlights.py keeps them): every upload
    # is deleted
    settings = Settings(model_handle=str(saved_model_dir), upload_dir=upload_dir, max_upload_mb=5, keep_videos=False,
                        media_dir=upload_dir.with_name(f"{upload_dir.name}-media"))
    for leftover in ("crashed.upload", ".warm-up-crashed.avi"):  # as a killed process leaves them
        (upload_dir / leftover).write_bytes(b"x")
    with TestClient(create_app(settings)) as test_client:  # runs the lifespan: loads and warms the model once
        assert list(upload_dir.iterdir()) == []  # swept, and the warm-up video deleted
        yield test_client


@pytest.fixture(autouse=True)
def no_leftovers(upload_dir):
    yield
    assert list(upload_dir.iterdir()) == [], "an upload was left behind in the temp folder"


def _check_result(body: dict, *, filename: str, top_k: int):
    assert body["head"] == "kinetics400"
    assert len(body["actions"]) == top_k
    confidences = [a["confidence"] for a in body["actions"]]
    assert confidences == sorted(confidences, reverse=True) and 0 < confidences[0] <= 1
    assert body["video"]["filename"] == filename
    for clip in body["clips"]:
        assert 0 <= clip["start_s"] < clip["end_s"] <= body["video"]["duration_s"] + 1e-6
        assert len(clip["actions"]) == 3
    assert body["segments"] == sorted(body["segments"], key=lambda s: (s["start_s"], s["end_s"]))
    for segment in body["segments"]:
        assert 0 <= segment["start_s"] < segment["end_s"] <= body["video"]["duration_s"] + 1e-6
        assert 0 <= segment["windows"][0] <= segment["windows"][1] < len(body["clips"]) and 0 < segment["confidence"] <= 1
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"] > 0


def test_multipart_upload_ranks_cricket_first(client):
    with open(CRICKET_MP4, "rb") as f:
        response = client.post("/recognize_action", files={"video": (CRICKET_MP4.name, f, "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    _check_result(body, filename=CRICKET_MP4.name, top_k=5)
    assert body["actions"][0]["label"] == "playing cricket"
    assert body["video"]["frames"] == 79 and body["video"]["fps"] == pytest.approx(25)
    assert [(c["start_frame"], c["end_frame"]) for c in body["clips"]] == [(0, 64), (15, 79)]
    assert body["clips"][-1]["end_s"] == pytest.approx(79 / 25)
    assert [(s["label"], s["start_s"], s["end_s"], s["windows"]) for s in body["segments"]] == [
        ("playing cricket", 0.0, pytest.approx(79 / 25), [0, 1])]  # one moment, the whole clip


@pytest.mark.slow
def test_segment_settings_can_be_changed_per_request_within_reason(client):
    """min_confidence, merge_gap_s and min_length_s change how moments are found (jobs too); nonsense is 422."""
    def post(route: str, **params):
        return client.post(route, params=params, content=ARCHERY_AVI.read_bytes(), headers={"Content-Type": "video/x-msvideo"})

    assert [s["label"] for s in post("/recognize_action").json()["segments"]] == ["archery"]
    assert post("/recognize_action", min_length_s=30).json()["segments"] == []  # longer than the 5.2 s video
    picky = post("/recognize_action", min_confidence=1.0).json()["segments"]
    assert picky == [] or all(s["confidence"] > 0.9 for s in picky)
    job = post("/jobs", min_length_s=30).json()
    assert _wait_for(client, job["id"])[-1]["result"]["segments"] == []
    for params in ({"min_confidence": 0}, {"min_confidence": 1.5}, {"merge_gap_s": -1}, {"min_length_s": "long"}):
        for route in ("/recognize_action", "/jobs"):
            refused = post(route, **params)
            assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] in params, refused.text


def test_raw_body_avi_with_top_k(client):
    response = client.post(
        "/recognize_action?top_k=3",
        content=ARCHERY_AVI.read_bytes(),
        headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    _check_result(body, filename="archery.avi", top_k=3)
    assert body["actions"][0]["label"] == "archery"
    assert len(body["clips"]) == 4  # 131 frames: 0, 32, 64 and the tail at 67
    table = client.post("/recognize_action?format=csv", content=ARCHERY_AVI.read_bytes(),
                        headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert_csv_matches(table.text, body)


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"files": {"clip": ("a.mp4", b"x", "video/mp4")}}, 422, "field 'video' is missing"),
        ({"files": {"video": ("a.mp4", b"", "video/mp4")}}, 422, "empty"),
        ({"files": {"video": ("a.mp4", b"not a video at all" * 100, "video/mp4")}}, 415, "not a video container"),
        ({"content": b"\x00" * 4096, "headers": {"Content-Type": "video/mp4"}}, 415, "not a video container"),
        ({"content": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096, "headers": {"Content-Type": "video/mp4"}}, 422,
         "not a readable video"),
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "multipart field 'video'"),
        ({"content": b"", "headers": {"Content-Type": "video/mp4"}}, 422, "empty"),
        ({"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "boundary"),
        ({"content": b"\x00" * (6 * 1024 * 1024), "headers": {"Content-Type": "video/mp4"}}, 413, "5 MiB"),
    ],
    ids=["wrong-field", "empty-file", "text-file", "zero-bytes", "mp4-header-only", "text-plain", "empty-raw",
         "no-boundary", "too-large"],
)
def test_bad_uploads_get_4xx_with_detail(client, kwargs, status, fragment):
    response = client.post("/recognize_action", **kwargs)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize("query", ["top_k=0", "top_k=401", "top_k=five"])
def test_bad_top_k(client, query):
    with open(CRICKET_MP4, "rb") as f:
        response = client.post(f"/recognize_action?{query}", files={"video": ("c.mp4", f, "video/mp4")})
    assert response.status_code == 422


def test_health_labels_model_docs(client):
    assert client.get("/health").json() == {"status": "ok", "model_loaded": True}
    labels = client.get("/labels").json()
    assert labels["head"] == "kinetics400" and len(labels["labels"]) == 400
    assert "massaging person's head" in labels["labels"]
    model = client.get("/model").json()
    assert model["extractor"] == "i3d-kinetics400-rgb" and model["head"] == "kinetics400"
    assert model["device"].startswith(("CPU", "GPU")) and model["loaded"] is True
    assert model["runtime"] == choose_runtime()
    if model["device"] == "CPU":  # OpenVINO: int8 where validated; else bfloat16 with AMX or AVX512-BF16, or float32
        assert model["precision"] in ("int8", "bfloat16" if has_bf16_units() else "float32")
        assert model["xla"] is False
    assert (model["clip_length"], model["clip_stride"]) == (64, 32)
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/recognize_action"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "video/*"} <= set(body)


def test_metrics_and_request_id(client):
    response = client.get("/health", headers={"X-Request-ID": "abc123"})
    assert response.headers["X-Request-ID"] == "abc123"
    assert len(client.get("/health").headers["X-Request-ID"]) == 16
    text = client.get("/metrics").text
    assert 'action_api_requests_total{method="POST",route="/recognize_action",status="200"}' in text
    assert 'action_api_errors_total{route="/recognize_action",status="415"}' in text
    assert "action_api_request_seconds_bucket" in text and "action_api_clips_queued 0.0" in text and "action_api_model_loaded 1.0" in text
    clips = [line for line in text.splitlines() if line.startswith("action_api_clips_processed_total ")]
    assert clips and float(clips[0].split()[1]) >= 6  # cricket (2 clips) + archery (4 clips) earlier in this module


def _wait_for(client, job_id: str, timeout_s: float = 300) -> list[dict]:
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/jobs/{job_id}").json()
        seen.append(body)
        if body["status"] in ("done", "failed"):
            return seen
        time.sleep(0.2)
    raise TimeoutError(job_id)


def test_job_reports_progress_then_the_same_result(client, upload_dir):
    response = client.post("/jobs?top_k=3", content=ARCHERY_AVI.read_bytes(),
                           headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running") and response.headers["Location"] == f"/jobs/{job['id']}"
    seen = _wait_for(client, job["id"])
    final = seen[-1]
    assert final["status"] == "done" and final["progress"] == {"clips_done": 4, "clips_total": 4, "eta_s": None}
    assert {s["status"] for s in seen} >= {"running", "done"}
    assert any(0 < s["progress"]["clips_done"] < 4 for s in seen)  # progress while it ran
    _check_result(final["result"], filename="archery.avi", top_k=3)
    assert final["result"]["actions"][0]["label"] == "archery"
    assert list(upload_dir.iterdir()) == []  # the job deleted its file
    no_reel = client.get(f"/jobs/{job['id']}/highlights", params={"label": "archery"})  # KEEP_VIDEOS=false here
    assert no_reel.status_code == 410 and "no longer kept" in no_reel.json()["detail"]
    table = client.get(f"/jobs/{job['id']}?format=csv")  # the same clips, for a spreadsheet
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert table.headers["content-disposition"] == 'attachment; filename="archery.clips.csv"'
    assert_csv_matches(table.text, final["result"])


def test_a_long_job_shows_its_windows_and_eta_and_stops_when_cancelled(client, upload_dir, tmp_path):
    video = write_video(tmp_path / "long.avi", 1500)  # 60 s at 25 fps: 46 windows
    job_id = client.post("/jobs", content=video.read_bytes(), headers={"Content-Type": "video/x-msvideo"}).json()["id"]
    deadline = time.monotonic() + 120
    while (state := client.get(f"/jobs/{job_id}").json())["progress"]["clips_done"] < 3:
        assert state["status"] in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["status"] == "running" and state["progress"]["clips_total"] == 46 and state["progress"]["eta_s"] > 0
    first = client.get(f"/jobs/{job_id}/windows").json()
    assert first["status"] == "running" and len(first["windows"]) >= 3 and first["next"] == len(first["windows"])
    assert [w["index"] for w in first["windows"]] == list(range(first["next"]))
    assert first["windows"][1]["start_s"] == 1.28 and first["windows"][1]["end_s"] == 3.84  # 2.56 s windows
    later = client.get(f"/jobs/{job_id}/windows", params={"since": first["next"]}).json()
    assert all(w["index"] >= first["next"] for w in later["windows"])
    cancelled = client.delete(f"/jobs/{job_id}")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    while any(upload_dir.iterdir()):  # the running job stops at its next window and deletes its upload
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    final = client.get(f"/jobs/{job_id}").json()
    assert final["status"] == "cancelled" and final["progress"]["clips_done"] < 46 and final.get("result") is None
    assert client.delete("/jobs/nope").status_code == 404
    assert client.get("/jobs/nope/windows").status_code == 404


def test_failed_job_and_unknown_job(client):
    assert client.post("/jobs", files={"video": ("x.mp4", b"not a video", "video/mp4")}).status_code == 415
    fake_mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 512  # sniffs as MP4, decodes as nothing
    response = client.post("/jobs", files={"video": ("x.mp4", fake_mp4, "video/mp4")})
    assert response.status_code == 202
    final = _wait_for(client, response.json()["id"])[-1]
    assert final["status"] == "failed" and final["error"]["status_code"] == 422
    assert "not a readable video" in final["error"]["detail"]
    no_table = client.get(f"/jobs/{response.json()['id']}?format=csv")
    assert no_table.status_code == 409 and "the job failed" in no_table.json()["detail"]
    assert client.get("/jobs/nope").status_code == 404
    assert client.get(f"/jobs/{response.json()['id']}?format=xml").status_code == 422
    assert client.post("/jobs", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_full_queue_answers_503_with_retry_after(client, upload_dir):
    from service.jobs import InProcessJobs

    release = threading.Event()
    blocked = InProcessJobs(lambda job: release.wait(30) and {"ok": True}, max_queued=1)
    video = ("a.mp4", CRICKET_MP4.read_bytes(), "video/mp4")
    services = client.app.state.services
    real, services.jobs = services.jobs, blocked
    try:
        first = client.post("/jobs", files={"video": video}).json()["id"]
        deadline = time.monotonic() + 10
        while blocked.get(first).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post("/jobs", files={"video": video}).status_code == 202  # queued
        response = client.post("/jobs", files={"video": video})
        assert response.status_code == 503 and response.headers["Retry-After"] == "10"
        assert "busy" in response.json()["detail"]
    finally:
        release.set()
        blocked.close()
        services.jobs = real
    assert blocked.get(first).status == "done"


def test_finished_jobs_expire(tmp_path):
    from service.jobs import InProcessJobs, Job

    jobs = InProcessJobs(lambda job: {"ok": True}, ttl_s=0.2)
    video = tmp_path / "v.upload"
    video.write_bytes(b"x")
    job = Job(video=video, filename="v", top_k=1, head=None)
    jobs.submit(job)
    deadline = time.monotonic() + 5
    while job.status != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert jobs.get(job.id).result == {"ok": True} and not video.exists()
    time.sleep(0.3)
    assert jobs.get(job.id) is None
    jobs.close()



def _raw(client, data: bytes, query: str = "", **headers):
    return client.post(f"/recognize_action{query}", content=data, headers={"Content-Type": "video/mp4", **headers})


def test_video_limits_are_named(client):
    recognizer = client.app.state.services.recognizer
    original = recognizer.limits
    try:
        recognizer.limits = VideoLimits(max_pixels=200 * 200)
        response = _raw(client, CRICKET_MP4.read_bytes())
        assert response.status_code == 422 and "224x224" in response.json()["detail"]
        recognizer.limits = VideoLimits(max_frames=50)
        response = _raw(client, CRICKET_MP4.read_bytes())
        assert response.status_code == 422 and "more than 50 frames" in response.json()["detail"]
        recognizer.limits = VideoLimits(max_duration_s=2)
        response = _raw(client, CRICKET_MP4.read_bytes())
        assert response.status_code == 422 and "longer than 2 s" in response.json()["detail"]
    finally:
        recognizer.limits = original


def test_a_video_too_long_for_the_route_is_pointed_to_jobs(client):
    """Estimated at the measured clips/s past the synchronous route's time limit: 503 at once, naming /jobs."""
    settings = client.app.state.settings
    try:
        settings.processing_timeout_s = 1e-6
        response = _raw(client, CRICKET_MP4.read_bytes())
        detail = response.json()["detail"]
        assert response.status_code == 503 and "past this route's" in detail and "POST /jobs" in detail, detail
        assert response.headers["Retry-After"] == "10"
    finally:
        settings.processing_timeout_s = 900


def test_an_upload_the_disk_cannot_hold_is_refused_with_507(client, upload_dir):
    settings = client.app.state.settings
    free_mb = shutil.disk_usage(upload_dir).free // (1024 * 1024)
    try:
        settings.upload_disk_reserve_mb = free_mb + 1  # by its declared size: refused before a byte is written
        response = _raw(client, CRICKET_MP4.read_bytes())
        assert response.status_code == 507, response.text
        assert "not enough disk space" in response.json()["detail"] and "MiB are kept free" in response.json()["detail"]
    finally:
        settings.upload_disk_reserve_mb = 1024


def test_an_upload_that_fills_the_disk_is_stopped_and_deleted(client, upload_dir, monkeypatch):
    """No declared size (chunked): the disk is watched while the body is written; past the reserve the upload
    stops with 507 and its partial file is deleted (the autouse fixture checks the folder)."""
    import api.uploads.streaming

    settings = client.app.state.settings
    monkeypatch.setattr(api.uploads.streaming, "DISK_CHECK_EVERY", 256 * 1024)
    body = CRICKET_MP4.read_bytes() + bytes(4 * 1024 * 1024)

    def chunked():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    try:
        settings.upload_disk_reserve_mb = shutil.disk_usage(upload_dir).free // (1024 * 1024) - 1  # 1-2 MiB of room
        response = client.post("/recognize_action", content=chunked(), headers={"Content-Type": "video/mp4"})
        assert response.status_code == 507 and "filling the disk" in response.json()["detail"], response.text
    finally:
        settings.upload_disk_reserve_mb = 1024


def test_a_burst_waits_in_line_instead_of_being_refused(client, upload_dir):
    """Six concurrent uploads with one recognition running at a time: all six answered 200, in turn."""
    settings = client.app.state.settings
    try:
        settings.max_concurrent_requests = 1
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: _raw(client, CRICKET_MP4.read_bytes()), range(6)))
    finally:
        settings.max_concurrent_requests = 4
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert {a.json()["actions"][0]["label"] for a in answers} == {"playing cricket"}
    metrics = client.get("/metrics").text
    assert "action_api_recognitions_waiting 0.0" in metrics
    assert 'action_api_admission_wait_seconds_count' in metrics and "action_api_estimated_wait_seconds" in metrics


def test_a_full_line_answers_503_with_a_measured_retry_after(client):
    settings = client.app.state.settings
    admission = client.app.state.services.admission
    assert admission.rate.clips_per_s > 0  # measured at warm-up and on every recognition
    try:
        settings.max_concurrent_requests, settings.queue_depth = 0, 0
        response = _raw(client, CRICKET_MP4.read_bytes())
        assert response.status_code == 503 and "waiting, the most this service queues" in response.json()["detail"]
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        settings.max_concurrent_requests, settings.queue_depth = 4, 64


@pytest.mark.parametrize("name, shown", [
    ("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"), ("\x00\x1b[31mred\t.mp4", "[31mred.mp4"),
    ("..", "upload"), ("/", "upload"), ("a" * 600 + ".mp4", "a" * 255),
])
def test_client_file_names_never_reach_a_path(client, upload_dir, tmp_path, name, shown):
    """Names from multipart parts (sent as raw bytes) and X-Filename are shown cleaned, never used to store anything."""
    video = write_video(tmp_path / "one-clip.avi", 40).read_bytes()
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="video"; filename="' + name.encode() +
            b'"\r\nContent-Type: video/mp4\r\n\r\n' + video + b"\r\n--b0undary--\r\n")
    multipart = client.post("/recognize_action?top_k=1", content=body,
                            headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["video"]["filename"] == shown
    if name.isprintable():  # header values cannot carry control characters
        raw = _raw(client, video, "?top_k=1", **{"X-Filename": name})
        assert raw.status_code == 200 and raw.json()["video"]["filename"] == shown


def test_api_key_when_configured(client):
    settings = client.app.state.settings
    try:
        settings.api_key = "s3cret"
        assert _raw(client, b"x").status_code == 401
        assert _raw(client, b"x", **{"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/jobs/abc").status_code == 401
        assert _raw(client, b"x", **{"X-API-Key": "s3cret"}).status_code == 415  # past the key check
        assert client.get("/health").status_code == 200  # health and metrics stay open
    finally:
        settings.api_key = None


def test_cors_is_off_unless_configured(client):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/recognize_action", headers=preflight).headers

    configured = TestClient(create_app(Settings(cors_origins=["https://elsewhere.example"])))
    answer = configured.options("/recognize_action", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_resumable_uploads_take_pages_from_any_origin_unless_configured(client):
    """Browsers send big files to /uploads from the page's origin: preflights pass for every origin by default
    (a key or token is a header, never a cookie), and tus's headers are exposed; other routes keep CORS_ORIGINS."""

    preflight = {"Origin": "https://page.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "tus-resumable,upload-offset,upload-token,content-type"}
    answer = client.options("/uploads/0123456789abcdef0123456789abcdef", headers=preflight)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    assert "PATCH" in answer.headers["access-control-allow-methods"]
    created = client.post("/uploads", headers={"Origin": "https://page.example", "Tus-Resumable": "1.0.0"})
    assert created.status_code == 400 and created.headers["access-control-allow-origin"] == "*"
    assert {"location", "upload-offset"} <= set(created.headers["access-control-expose-headers"].lower().split(", "))
    assert "access-control-allow-origin" not in client.options(
        "/jobs", headers={**preflight, "Access-Control-Request-Method": "POST"}).headers
    only_ours = TestClient(create_app(Settings(upload_cors_origins=["https://ours.example"])))
    assert only_ours.options("/uploads", headers=preflight).status_code == 400


def _broken_files():
    mp4, avi = CRICKET_MP4.read_bytes(), ARCHERY_AVI.read_bytes()
    for name, data in (("mp4", mp4), ("avi", avi)):
        for fraction in (0.001, 0.05, 0.5):
            yield f"{name}-truncated-{fraction}", data[: max(16, int(len(data) * fraction))]
        corrupted = bytearray(data)
        corrupted[12:400] = bytes(388)  # headers zeroed after the signature
        yield f"{name}-corrupted-header", bytes(corrupted)


@pytest.mark.parametrize(("name", "data"), list(_broken_files()), ids=[n for n, _ in _broken_files()])
def test_broken_files_get_an_answer_never_a_5xx(client, name, data):
    response = _raw(client, data)
    assert response.status_code in (200, 415, 422), (name, response.text)
    if response.status_code == 200:
        assert response.json()["clips"]


@hypothesis.settings(max_examples=60, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(data=st.binary(max_size=4096), content_type=st.sampled_from(
    ["video/mp4", "video/x-msvideo", "application/octet-stream", "text/plain", "multipart/form-data; boundary=x"]))
def test_fuzzed_uploads_get_4xx(client, data, content_type):
    response = client.post("/recognize_action", content=data, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert isinstance(response.json()["detail"], str)


@hypothesis.settings(max_examples=40, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(field=st.text(max_size=20), filename=st.text(max_size=200), data=st.binary(max_size=2048))
def test_fuzzed_multipart_gets_4xx(client, field, filename, data):
    response = client.post("/recognize_action", files={field or "f": (filename, data, "video/mp4")})
    assert 400 <= response.status_code < 500, response.text


def test_a_sport_narrows_the_ranking_and_the_moments_to_its_labels(client):
    """GET /sports lists the vocabularies (every label one of the 400); ?sport= ranks only its labels, renormalized,
    and its moments are of those labels; an unknown sport is 422 naming the known ones."""
    listed = {s["id"]: s for s in client.get("/sports").json()["sports"]}
    assert {"basketball", "soccer", "american_football", "baseball", "cricket", "golf", "racket_sports", "volleyball",
            "ice_hockey", "swimming_and_diving", "gymnastics", "athletics", "combat_sports", "winter_sports", "cycling",
            "board_sports"} <= set(listed)
    assert set(listed["basketball"]["labels"]) == {"dribbling basketball", "dunking basketball", "playing basketball",
                                                   "shooting basketball"}
    every = set(client.get("/labels").json()["labels"])
    assert all(set(s["labels"]) <= every for s in listed.values())
    target = set(listed["target_sports"]["labels"])
    body = client.post("/recognize_action?sport=target_sports&top_k=10", content=ARCHERY_AVI.read_bytes(),
                       headers={"Content-Type": "video/x-msvideo"}).json()
    assert body["sport"] == "target_sports" and body["head"] == "kinetics400"
    assert [a["label"] for a in body["actions"]][0] == "archery" and {a["label"] for a in body["actions"]} == target
    assert sum(a["confidence"] for a in body["actions"]) == pytest.approx(1, abs=1e-3)  # renormalized over them
    assert [s["label"] for s in body["segments"]] == ["archery"]
    assert all(c["actions"][0]["label"] == "archery" for c in body["clips"])  # clips keep the 400
    job = client.post("/jobs?sport=racket_sports", content=ARCHERY_AVI.read_bytes(), headers={"Content-Type": "video/x-msvideo"})
    done = _wait_for(client, job.json()["id"])[-1]["result"]
    assert done["sport"] == "racket_sports" and {a["label"] for a in done["actions"]} <= set(listed["racket_sports"]["labels"])
    for route in ("/recognize_action", "/jobs"):
        unknown = client.post(f"{route}?sport=quidditch", content=ARCHERY_AVI.read_bytes(), headers={"Content-Type": "video/x-msvideo"})
        assert unknown.status_code == 422 and "unknown sport 'quidditch'; known: basketball, soccer" in unknown.json()["detail"]


def test_moments_come_as_chapters_an_edit_decision_list_and_spotting_results(client):
    def post(format: str):
        return client.post(f"/recognize_action?format={format}", content=ARCHERY_AVI.read_bytes(),
                           headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"})

    vtt = post("vtt")
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
    assert "archery (" in vtt.text and 'filename="archery.chapters.vtt"' in vtt.headers["content-disposition"]
    edl = post("edl")
    assert "FCM: NON-DROP FRAME" in edl.text and "* COMMENT: archery" in edl.text
    spotted = post("spotting").json()
    assert spotted["UrlLocal"] == "archery.avi" and [p["label"] for p in spotted["predictions"]] == ["archery"]
    job = client.post("/jobs", content=ARCHERY_AVI.read_bytes(), headers={"Content-Type": "video/x-msvideo"}).json()
    _wait_for(client, job["id"])
    assert client.get(f"/jobs/{job['id']}?format=vtt").text.startswith("WEBVTT")
    assert client.get(f"/jobs/{job['id']}?format=nope").status_code == 422


def test_shared_extraction_serves_the_same_windows(saved_model_dir, tmp_path):
    """EXTRACTION=shared: the same clips and top action as windows run one by one, and /model says so."""
    settings = Settings(model_handle=str(saved_model_dir), upload_dir=tmp_path, extraction="shared", warm_up=True)
    with TestClient(create_app(settings)) as shared:
        assert shared.get("/model").json()["extraction"] == "shared"
        response = shared.post("/recognize_action", content=ARCHERY_AVI.read_bytes(),
                               headers={"Content-Type": "video/x-msvideo", "X-Filename": "archery.avi"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["actions"][0]["label"] == "archery"
    assert [(c["start_frame"], c["end_frame"]) for c in body["clips"]] == [(0, 64), (32, 96), (64, 128), (67, 131)]
    assert list(tmp_path.iterdir()) == []


def test_impossible_shared_settings_stop_the_start_up(saved_model_dir, tmp_path):
    settings = Settings(model_handle=str(saved_model_dir), upload_dir=tmp_path, extraction="shared", clip_stride=30,
                        warm_up=False)
    with pytest.raises(ValueError, match="stride to be a positive multiple of 8"):
        with TestClient(create_app(settings)):
            pass

