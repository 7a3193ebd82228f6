"""The API through its real lifespan: the real SavedModel on real clips, and bad inputs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import app
from api.settings import Settings, get_settings
from conftest import ARCHERY_AVI, CRICKET_MP4


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(saved_model_dir, upload_dir):
    settings = Settings(model_handle=str(saved_model_dir), upload_dir=upload_dir, max_upload_mb=5)
    app.dependency_overrides[get_settings] = lambda: settings
    with TestClient(app) as test_client:  # runs the lifespan: loads and warms the model once
        yield test_client
    app.dependency_overrides.clear()


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


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"files": {"clip": ("a.mp4", b"x", "video/mp4")}}, 422, "field 'video' is missing"),
        ({"files": {"video": ("a.mp4", b"", "video/mp4")}}, 422, "empty"),
        ({"files": {"video": ("a.mp4", b"not a video at all" * 100, "video/mp4")}}, 422, "not a readable video"),
        ({"content": b"\x00" * 4096, "headers": {"Content-Type": "video/mp4"}}, 422, "not a readable video"),
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "multipart field 'video'"),
        ({"content": b"", "headers": {"Content-Type": "video/mp4"}}, 422, "empty"),
        ({"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "boundary"),
        ({"content": b"\x00" * (6 * 1024 * 1024), "headers": {"Content-Type": "video/mp4"}}, 413, "5 MiB"),
    ],
    ids=["wrong-field", "empty-file", "text-file", "zero-bytes", "text-plain", "empty-raw", "no-boundary", "too-large"],
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
    assert model["precision"] == "float32" and model["device"].startswith(("CPU", "GPU"))
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
    assert "action_api_request_seconds_bucket" in text and "action_api_recognitions_waiting 0.0" in text
    clips = [line for line in text.splitlines() if line.startswith("action_api_clips_processed_total ")]
    assert clips and float(clips[0].split()[1]) >= 6  # cricket (2 clips) + archery (4 clips) earlier in this module
