"""The Flask frontend against a fake API served on loopback (the HTTP boundary is real, the model is not)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from conftest import ARCHERY_AVI, CRICKET_MP4, Service, _free_port
from frontend import create_app, secret_key

RESULT = {
    "actions": [
        {"label": "massaging person's head", "confidence": 0.61},
        {"label": "<b>bold</b> (yes)", "confidence": 0.2},
    ],
    "head": "kinetics400",
    "clips": [
        {"index": 0, "start_s": 0.0, "end_s": 2.56, "start_frame": 0, "end_frame": 64,
         "actions": [{"label": "massaging person's head", "confidence": 0.7}]},
        {"index": 1, "start_s": 0.6, "end_s": 3.16, "start_frame": 15, "end_frame": 79,
         "actions": [{"label": "playing cricket", "confidence": 0.5}]},
    ],
    "video": {"filename": "x", "frames": 79, "fps": 25.0, "duration_s": 3.16, "width": 224, "height": 224},
    "timings_ms": {"decode": 10.0, "inference": 900.0, "total": 1000.0},
}


SPORTS = [{"id": "basketball", "name": "Basketball", "labels": ["shooting basketball"]},
          {"id": "target_sports", "name": "Archery and other target sports", "labels": ["archery"]}]


class FakeApi:
    """Answers POST /recognize_action with `self.status` and `self.body`; records what it received."""

    def __init__(self):
        self.status, self.body, self.received, self.request_ids, self.api_keys = 200, RESULT, [], [], []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                fake.received.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
                fake.request_ids.append(self.headers.get("X-Request-ID"))
                fake.api_keys.append(self.headers.get("X-API-Key"))
                self.do_POST_reply()

            def do_GET(self):
                if self.path == "/sports":  # what the pages' sport pickers list: answered as the API does
                    return self.reply(200, {"sports": SPORTS})
                fake.received.append((self.path, None, b""))
                fake.api_keys.append(self.headers.get("X-API-Key"))
                self.do_POST_reply()

            def do_DELETE(self):
                fake.received.append((f"DELETE {self.path}", None, b""))
                fake.api_keys.append(self.headers.get("X-API-Key"))
                self.do_POST_reply()

            def do_POST_reply(self):
                self.reply(fake.status, fake.body)

            def reply(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api():
    api = FakeApi()
    yield api
    api.close()


@pytest.fixture
def upload_folder(tmp_path):
    return tmp_path / "uploads"


@pytest.fixture
def app(fake_api, upload_folder):
    return create_app({"TESTING": True, "API_URL": fake_api.url, "UPLOAD_FOLDER": str(upload_folder),
                       "DATA_DIR": str(upload_folder.parent / "data"), "API_TIMEOUT_S": 10,
                       "MAX_CONTENT_LENGTH": 2 * 1024 * 1024})


@pytest.fixture
def client(app):
    return app.test_client()


def _token(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _form(client, route, data):
    return client.post(route, data={**data, "csrf_token": _token(client)}, content_type="multipart/form-data")


def _post(client, path, name):
    return _form(client, "/recognize", {"video": (io.BytesIO(path.read_bytes()), name)})


def test_index_has_an_upload_form(client):
    page = client.get("/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="video"' in page and ".avi" in page


def test_result_page_shows_ranked_actions_player_and_clips(client, fake_api, upload_folder):
    response = _post(client, ARCHERY_AVI, "my <clip>.avi")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    # forwarded to the API as multipart field 'video', with the original bytes
    path, content_type, body = fake_api.received[0]
    assert path.startswith("/recognize_action") and content_type.startswith("multipart/form-data")
    assert ARCHERY_AVI.read_bytes() in body
    assert len(fake_api.request_ids[0]) == 16  # one id names the request in both services' logs
    # labels and file names are escaped, never rendered as HTML
    assert "massaging person&#39;s head" in page and "61.0%" in page
    assert "&lt;b&gt;bold&lt;/b&gt; (yes)" in page and "<b>bold</b>" not in page
    assert "my &lt;clip&gt;.avi" in page and "<clip>" not in page
    assert "0.0–2.6 s" in page and "playing cricket" in page
    # the AVI was transcoded to H.264 MP4 for the player, and only that copy is kept
    kept = list(upload_folder.iterdir())
    assert [p.suffix for p in kept] == [".mp4"] and kept[0].name in page
    video = client.get(f"/media/{kept[0].name}")
    assert video.status_code == 200 and video.mimetype == "video/mp4" and video.data[4:8] == b"ftyp"
    partial = client.get(f"/media/{kept[0].name}", headers={"Range": "bytes=0-99"})
    assert b"avc1" in video.data[:8192]  # H.264, index up front (faststart)
    assert partial.status_code == 206 and len(partial.data) == 100
    assert client.get("/media/..%2Fsecret").status_code == 404


def test_api_rejection_is_shown_readably(client, fake_api, upload_folder):
    fake_api.status, fake_api.body = 422, {"detail": "not a readable video: no decodable video frame"}
    response = _post(client, CRICKET_MP4, "clip.mp4")
    assert response.status_code == 422
    assert "rejected the video: not a readable video" in response.get_data(as_text=True)
    assert list(upload_folder.iterdir()) == []


def test_api_down_is_shown_readably(app, upload_folder):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config["API_URL"] = f"http://127.0.0.1:{port}"
    response = _post(app.test_client(), CRICKET_MP4, "clip.mp4")
    assert response.status_code == 503
    assert "not reachable" in response.get_data(as_text=True)
    assert list(upload_folder.iterdir()) == []


def test_missing_file_wrong_type_and_too_large(client, fake_api):
    assert _form(client, "/recognize", {}).status_code == 400
    wrong = _form(client, "/recognize", {"video": (io.BytesIO(b"hi"), "notes.txt")})
    assert wrong.status_code == 415 and "not a supported video" in wrong.get_data(as_text=True)
    big = _form(client, "/recognize", {"video": (io.BytesIO(b"0" * 3 * 1024 * 1024), "big.mp4")})
    assert big.status_code == 413 and "larger than the 2 MB limit" in big.get_data(as_text=True)
    assert fake_api.received == []


JOB_DONE = {"id": "job1", "status": "done", "progress": {"clips_done": 2, "clips_total": 2}, "result": RESULT}


def test_jobs_are_proxied_with_the_player_copy(client, fake_api, upload_folder):
    fake_api.status, fake_api.body = 202, {"id": "job1", "status": "queued", "progress": {"clips_done": 0, "clips_total": None}}
    response = _post_jobs(client, CRICKET_MP4, "clip <1>.mp4")
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["job_id"] == "job1" and body["filename"] == "clip <1>.mp4" and body["playback_note"] is None
    assert fake_api.received[0][0].startswith("/jobs")
    assert client.get(body["video_url"]).status_code == 200
    fake_api.status, fake_api.body = 200, JOB_DONE
    assert client.get("/jobs/job1").get_json() == JOB_DONE


def test_job_errors_are_json_with_a_readable_message(client, fake_api, upload_folder):
    fake_api.status, fake_api.body = 503, {"detail": "busy: 16 jobs are already waiting; try again shortly"}
    response = _post_jobs(client, CRICKET_MP4, "clip.mp4")
    assert response.status_code == 503 and "is busy" in response.get_json()["error"]
    assert list(upload_folder.iterdir()) == []
    wrong = _form(client, "/jobs", {"video": (io.BytesIO(b"x"), "a.exe")})
    assert wrong.status_code == 415 and "not a supported video" in wrong.get_json()["error"]
    fake_api.status, fake_api.body = 404, {"detail": "no such job (finished jobs expire)"}
    missing = client.get("/jobs/gone")
    assert missing.status_code == 404 and "no such job" in missing.get_json()["error"]


def _post_jobs(client, path, name):
    return _form(client, "/jobs", {"video": (io.BytesIO(path.read_bytes()), name)})


def test_uploaded_copies_are_pruned_by_age_and_count(tmp_path):
    import os
    import time

    from frontend.housekeeping import prune_uploads

    now = time.time()
    for i in range(6):
        path = tmp_path / f"{i}.mp4"
        path.write_bytes(b"x")
        os.utime(path, (now - i * 3600, now - i * 3600))  # file i is i hours old
    (tmp_path / ".gitkeep").write_bytes(b"")
    removed = prune_uploads(tmp_path, max_age_s=4.5 * 3600, max_files=3, now=now)
    assert sorted(p.name for p in removed) == ["3.mp4", "4.mp4", "5.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitkeep", "0.mp4", "1.mp4", "2.mp4"]


def test_csrf_token_is_required(client, fake_api):
    _token(client)  # a session exists, but the form below does not carry its token
    for route in ("/recognize", "/jobs"):
        response = client.post(route, data={"video": (io.BytesIO(CRICKET_MP4.read_bytes()), "c.mp4"),
                                            "csrf_token": "forged"}, content_type="multipart/form-data")
        assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert fake_api.received == []


def test_security_headers_and_api_key_forwarding(app, client, fake_api):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    app.config["API_KEY"] = "s3cret"
    fake_api.status, fake_api.body = 200, JOB_DONE
    client.get("/jobs/job1")
    assert fake_api.api_keys[-1] == "s3cret"


def test_connection_errors_are_retried_rejections_are_not(app, fake_api, monkeypatch):
    from frontend import api_client

    attempts = []
    real = api_client.httpx.HTTPTransport

    class Counting(real):
        def handle_request(self, request):
            attempts.append(request.url.path)
            return super().handle_request(request)

    monkeypatch.setattr(api_client.httpx, "HTTPTransport", Counting)
    fake_api.status, fake_api.body = 422, {"detail": "nope"}
    with pytest.raises(api_client.ApiError):
        api_client.job_status(fake_api.url, "x")
    assert len(attempts) == 1  # an answer, even a refusal, is final
    assert api_client.CONNECT_RETRIES == 3


# --- One session key for every worker and every restart (gunicorn, as the image runs it). ---

def test_the_generated_key_is_kept_owner_only_and_a_set_key_wins(tmp_path, monkeypatch):
    data = tmp_path / "data"
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(secret_key.load_or_create(None, data))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64  # workers starting together agree on one key
    key_file = data / secret_key.FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and os.listdir(data) == [secret_key.FILE_NAME]
    assert secret_key.load_or_create(None, data) == keys[0]  # and it survives a restart
    assert secret_key.load_or_create("chosen-by-the-operator", data) == "chosen-by-the-operator"
    key_file.write_text("short")
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        secret_key.load_or_create(None, data)


def _gunicorn(port: int, env: dict, log) -> Service:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return Service([gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "3", "--threads", "4", "frontend:create_app()"],
                   port=port, env=env, log=log)


def _load_page(url: str) -> tuple[httpx.Client, str]:
    """A new browser session: its cookie jar and the form's CSRF token."""
    client = httpx.Client(timeout=30, headers={"Connection": "close"})  # no idle keep-alive to delay a stop
    return client, re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"{url}/").text).group(1)


def _post_form(url: str, client: httpx.Client, token: str) -> httpx.Response:
    return client.post(f"{url}/jobs", data={"csrf_token": token},
                       files={"video": ("cricket.mp4", CRICKET_MP4.read_bytes(), "video/mp4")})


def test_gunicorn_with_three_workers_accepts_every_form_even_across_a_restart(tmp_path, fake_api):
    fake_api.status, fake_api.body = 202, {"id": "job1", "status": "queued", "progress": {"clips_done": 0, "clips_total": None}}
    env = {**os.environ, "API_URL": fake_api.url, "FLASK_SECRET_KEY": "", "FRONTEND_DATA_DIR": str(tmp_path / "data"),
           "FRONTEND_UPLOAD_DIR": str(tmp_path / "uploads")}
    page = _gunicorn(_free_port(), env, tmp_path / "gunicorn.log").start()
    try:
        statuses = []
        for _ in range(10):  # 10 page loads, 3 posts each, spread by gunicorn over its workers
            client, token = _load_page(page.url)
            statuses += [_post_form(page.url, client, token).status_code for _ in range(3)]
        assert statuses == [202] * 30  # one key in all three workers: no "This form has expired"
        client, token = _load_page(page.url)
        page.stop()
        page.start()  # a restart between loading the page and posting it
        response = _post_form(page.url, client, token)
        assert response.status_code == 202, response.text
    finally:
        page.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    key = (tmp_path / "data" / secret_key.FILE_NAME).read_text().strip()
    assert "generated the session key" in log and key not in log


def test_live_page_gets_a_session_token_without_seeing_the_api_key(fake_api, upload_folder):
    app = create_app({"TESTING": True, "API_URL": fake_api.url, "API_PUBLIC_URL": "https://ai.example.com/api",
                      "API_KEY": "s3cret", "UPLOAD_FOLDER": str(upload_folder), "DATA_DIR": str(upload_folder.parent)})
    client = app.test_client()
    page = client.get("/live")
    assert page.status_code == 200 and "s3cret" not in page.get_data(as_text=True)
    assert "connect-src 'self' wss://ai.example.com https://ai.example.com;" in page.headers["Content-Security-Policy"]
    csrf = re.search(r'data-csrf="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert client.post("/live/session").status_code == 400 and fake_api.received == []  # no CSRF token
    fake_api.body = {"token": "t0k3n", "expires_in_s": 60, "path": "/live"}
    answer = client.post("/live/session", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and "s3cret" not in answer.get_data(as_text=True)
    assert answer.get_json() == {"websocket_url": "wss://ai.example.com/api/live", "token": "t0k3n", "expires_in_s": 60}
    assert fake_api.received[-1][0] == "/live/sessions" and fake_api.api_keys[-1] == "s3cret"
    fake_api.status, fake_api.body = 501, {"detail": "live recognition is turned off (LIVE_MAX_SESSIONS=0)"}
    refused = client.post("/live/session", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 501 and "turned off" in refused.get_json()["error"]


def test_downloads_of_a_job_come_from_the_api_once_it_is_done_and_are_kept(client, fake_api, upload_folder):
    from conftest import assert_csv_matches

    fake_api.status, fake_api.body = 202, {"id": "job1", "status": "queued", "progress": {"clips_done": 0, "clips_total": None}}
    downloads = _post_jobs(client, CRICKET_MP4, "my clip.mp4").get_json()["downloads"]
    fake_api.status, fake_api.body = 200, {**JOB_DONE, "status": "running", "result": None}
    waiting = client.get(downloads["csv"])
    assert waiting.status_code == 409 and "running" in waiting.get_data(as_text=True)
    fake_api.body = JOB_DONE
    table = client.get(downloads["csv"])
    assert table.status_code == 200 and table.headers["Content-Disposition"] == 'attachment; filename="x.clips.csv"'
    assert_csv_matches(table.get_data(as_text=True), JOB_DONE["result"])
    fake_api.close()  # from now on the kept result answers, whatever the API does
    assert client.get(downloads["json"]).get_json() == JOB_DONE["result"]
    chapters = client.get(downloads["vtt"])  # the player's chapters track
    assert chapters.status_code == 200 and chapters.mimetype == "text/vtt" and chapters.data.startswith(b"WEBVTT")
    edl = client.get(downloads["edl"])
    assert edl.headers["Content-Disposition"] == 'attachment; filename="x.moments.edl"' and b"TITLE: x" in edl.data
    video = client.get(downloads["video"])
    assert video.status_code == 200 and video.mimetype == "video/mp4" and video.data[4:8] == b"ftyp"
    assert client.get("/results/0123456789abcdef0123456789abcdef.csv").status_code == 404
    assert client.get("/results/..%2Fsecret.json").status_code == 404


def test_the_cancel_button_cancels_the_job_at_the_api(client, fake_api):
    assert client.post("/jobs/job1/cancel").status_code == 400 and fake_api.received == []  # no CSRF token
    fake_api.status, fake_api.body = 202, {"id": "job1", "status": "cancelled",
                                           "progress": {"clips_done": 3, "clips_total": 46, "eta_s": None}}
    answer = client.post("/jobs/job1/cancel", headers={"X-CSRF-Token": _token(client)})
    assert answer.status_code == 200 and answer.get_json()["status"] == "cancelled"
    assert fake_api.received[-1][0] == "DELETE /jobs/job1"
    page = client.get("/").get_data(as_text=True)
    assert 'id="cancel"' in page and "hours; a whole game is fine" in page


def test_big_files_get_an_upload_token_and_their_job_is_kept_for_downloads(fake_api, upload_folder):
    """The page sends files of RESUMABLE_UPLOAD_MB or more straight to the API (tus) with a token this server gets
    with the key; the job the upload became is then kept here for its downloads like the page's own."""
    from conftest import assert_csv_matches

    app = create_app({"TESTING": True, "API_URL": fake_api.url, "API_PUBLIC_URL": "https://ai.example.com/api",
                      "API_KEY": "s3cret", "RESUMABLE_UPLOAD_MB": 50, "UPLOAD_FOLDER": str(upload_folder),
                      "DATA_DIR": str(upload_folder.parent)})
    client = app.test_client()
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert 'data-resumable-bytes="52428800"' in html and "Files of 50 MB or more go in" in html
    assert "/static/vendor/tus-js-client/tus.min.js" in html and client.get("/static/vendor/tus-js-client/tus.min.js").status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://ai.example.com https://ai.example.com;" in policy and "media-src 'self' blob:;" in policy
    csrf = {"X-CSRF-Token": _token(client)}
    assert client.post("/uploads/session").status_code == 400 and fake_api.received == []  # no CSRF token
    fake_api.body = {"token": "up-t0k3n", "expires_in_s": 900, "endpoint": "/uploads"}
    answer = client.post("/uploads/session", headers=csrf)
    assert answer.get_json() == {"endpoint": "https://ai.example.com/api/uploads", "token": "up-t0k3n", "expires_in_s": 900}
    assert fake_api.received[-1][0] == "/uploads/tokens" and fake_api.api_keys[-1] == "s3cret"
    assert "s3cret" not in answer.get_data(as_text=True)

    job_id = "0123456789abcdef0123456789abcdef"
    assert client.put(f"/jobs/{job_id}").status_code == 400  # no CSRF token
    assert client.put("/jobs/..%2Fsecret", headers=csrf).status_code == 404
    fake_api.status, fake_api.body = 404, {"detail": "no such job (finished jobs expire)"}
    gone = client.put(f"/jobs/{job_id}", headers=csrf)
    assert gone.status_code == 404 and "no such job" in gone.get_json()["error"]
    fake_api.status, fake_api.body = 200, {**JOB_DONE, "id": job_id, "status": "running", "result": None}
    followed = client.put(f"/jobs/{job_id}", headers=csrf)
    assert followed.status_code == 200
    downloads = followed.get_json()["downloads"]
    assert downloads == {**{kind: f"/results/{job_id}.{kind}" for kind in ("json", "csv", "vtt", "edl")},
                         "highlights": f"/results/{job_id}/highlights"}  # reels from the API: it has the upload
    assert fake_api.received[-1][0] == f"/jobs/{job_id}"
    fake_api.body = {**JOB_DONE, "id": job_id}
    assert_csv_matches(client.get(downloads["csv"]).get_data(as_text=True), JOB_DONE["result"])


def test_the_vendored_tus_client_is_the_release_its_readme_names():
    import hashlib

    folder = Path(__file__).resolve().parent.parent / "static" / "vendor" / "tus-js-client"
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# tus-js-client 4.3.1")
    digest = re.search(r"sha256 ([0-9a-f]{64})  tus\.min\.js", readme).group(1)
    assert hashlib.sha256((folder / "tus.min.js").read_bytes()).hexdigest() == digest
    assert "The MIT License" in (folder / "LICENSE").read_text()


def test_the_sport_picker_lists_the_apis_sports_and_sends_the_chosen_one(client, fake_api):
    page = client.get("/").get_data(as_text=True)
    assert '<option value="basketball">Basketball</option>' in page and 'name="sport"' in page
    assert '<select id="live-sport">' in client.get("/live").get_data(as_text=True)
    fake_api.status, fake_api.body = 202, {"id": "job1", "status": "queued", "progress": {"clips_done": 0, "clips_total": None}}
    for chosen, sent in (("basketball", "sport=basketball"), ("quidditch", None), ("", None)):
        answer = _form(client, "/jobs", {"video": (io.BytesIO(CRICKET_MP4.read_bytes()), "a.mp4"), "sport": chosen})
        assert answer.status_code == 202
        path = fake_api.received[-1][0]
        assert path.startswith("/jobs?") and ((sent in path) if sent else "sport" not in path), path
