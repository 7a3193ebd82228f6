"""Resumable uploads on tus 1.0 (api/routes/uploads.py, api/uploads/resumable/): a real API process with the real model,
spoken to as tus clients do (httpx), and with raw sockets for connections that break or stall mid-body."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from conftest import CRICKET_MP4, Service, _free_port

pytestmark = [pytest.mark.slow]

KEY = "tests-resumable-key"
TUS = {"Tus-Resumable": "1.0.0"}
AUTH = {"X-API-Key": KEY, **TUS}
OCTETS = {"Content-Type": "application/offset+octet-stream"}
RESERVE_MB = 64
IDLE_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The API, with a key, room for huge declared uploads (to reach the disk check), a short stall timeout and
    a queue of one job run at a time (to fill it)."""
    upload_dir = tmp_path_factory.mktemp("resumable-api")
    port = _free_port()
    env = {**os.environ, "UPLOAD_DIR": str(upload_dir), "API_KEY": KEY,
           "MAX_UPLOAD_MB": str(10_000_000), "UPLOAD_DISK_RESERVE_MB": str(RESERVE_MB),
           "UPLOAD_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), "JOBS_MAX_QUEUED": "1", "JOBS_WORKERS": "1",
           "PYTHONUNBUFFERED": "1"}
    service = Service.api(port, env, tmp_path_factory.mktemp("resumable-logs") / "api.log").start()
    try:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            yield {"client": client, "port": port, "upload_dir": upload_dir, "store": upload_dir / "resumable"}
    finally:
        service.stop()


def _metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def _create(client: httpx.Client, length: int, headers: dict | None = None, **metadata: str) -> httpx.Response:
    return client.post("/uploads", headers={**(headers or AUTH), "Upload-Length": str(length),
                                            **({"Upload-Metadata": _metadata(**metadata)} if metadata else {})})


def _patch(client: httpx.Client, location: str, offset: int, body: bytes, headers: dict | None = None) -> httpx.Response:
    return client.patch(location, headers={**(headers or AUTH), **OCTETS, "Upload-Offset": str(offset)}, content=body)


def _offset(client: httpx.Client, location: str) -> int:
    head = client.head(location, headers=AUTH)
    assert head.status_code == 200, head.status_code
    return int(head.headers["Upload-Offset"])


def _raw_patch(port: int, location: str, length: int, first: bytes) -> socket.socket:
    """A PATCH announcing `length` body bytes that sends only `first`, on a socket left open."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"PATCH {location} HTTP/1.1\r\nHost: test\r\nTus-Resumable: 1.0.0\r\nX-API-Key: {KEY}\r\n"
                  f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
                  ).encode() + first)
    return sock


def _status_line(sock: socket.socket, timeout_s: float = 30) -> str:
    sock.settimeout(timeout_s)
    return sock.recv(4096).split(b"\r\n", 1)[0].decode()


def _job(client: httpx.Client, job_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job)


def _files(store: Path, upload_id: str) -> list[str]:
    return sorted(p.name.removeprefix(upload_id) for p in store.glob(f"{upload_id}*"))


def test_options_say_what_the_server_speaks(api):
    answer = api["client"].options("/uploads")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {"creation", "expiration", "termination"}
    assert int(answer.headers["Tus-Max-Size"]) == 10_000_000 * 1024 * 1024
    refused = api["client"].post("/uploads", headers={"X-API-Key": KEY, "Upload-Length": "10"})
    assert refused.status_code == 412 and refused.headers["Tus-Version"] == "1.0.0"
    assert "Tus-Resumable: 1.0.0" in refused.json()["detail"]


def test_the_key_or_a_token_is_needed_and_checked_before_any_byte(api):
    from api.live.tokens import LiveTokens
    from api.uploads.tokens import SignedTokens

    client = api["client"]
    assert client.post("/uploads/tokens").status_code == 401  # a token needs the key
    token = client.post("/uploads/tokens", headers={"X-API-Key": KEY}).json()
    assert token["endpoint"] == "/uploads" and token["expires_in_s"] == 900
    # with no UPLOAD_TOKEN_SECRET the API key signs them, so every API process checks every token
    expired = SignedTokens(scope="upload", ttl_s=60, secret=KEY).issue(now=time.time() - 120)
    live = LiveTokens(ttl_s=60, secret=KEY).issue()  # a token of another kind, signed with the same secret
    for headers, detail in [(TUS, "missing or wrong X-API-Key"), ({**TUS, "X-API-Key": "wrong"}, "missing or wrong"),
                            ({**TUS, "Upload-Token": "abc.def.ghi"}, "invalid token"),
                            ({**TUS, "Upload-Token": live}, "invalid token"),
                            ({**TUS, "Upload-Token": expired}, "the token expired 60 s ago")]:
        refused = _create(client, 100, headers)
        assert refused.status_code == 401 and detail in refused.json()["detail"], refused.text
    created = _create(client, CRICKET_MP4.stat().st_size, {**TUS, "Upload-Token": token["token"]})
    assert created.status_code == 201
    location = created.headers["Location"]
    stranger = _patch(client, location, 0, CRICKET_MP4.read_bytes()[:1000], TUS)
    assert stranger.status_code == 401
    assert client.head(location, headers=TUS).status_code == 401
    assert _offset(client, location) == 0  # nothing of the refused body was written
    assert client.delete(location, headers={**TUS, "Upload-Token": token["token"]}).status_code == 204


def test_creation_refuses_what_cannot_become_a_job(api):
    client = api["client"]
    cases = [({**AUTH}, 400, "Upload-Length"),
             ({**AUTH, "Upload-Length": str(10_000_000 * 1024 * 1024 + 1)}, 413, "MiB limit"),
             ({**AUTH, "Upload-Length": "0"}, 422, "empty"),
             ({**AUTH, "Upload-Length": "10", "Upload-Metadata": _metadata(head="nope")}, 422, "unknown head"),
             ({**AUTH, "Upload-Length": "10", "Upload-Metadata": _metadata(top_k="0")}, 422, "top_k"),
             ({**AUTH, "Upload-Length": "10", "Upload-Metadata": "filename ***"}, 400, "base64")]
    for headers, code, detail in cases:
        refused = client.post("/uploads", headers=headers)
        assert refused.status_code == code and detail in refused.json()["detail"], refused.text
    assert not list(api["store"].glob("*.json"))


def test_disk_room_counts_what_open_uploads_will_still_write(api):
    """An upload is refused (507) when it would not fit beside the reserve and the bytes that uploads already
    under way are still to send; ending one of those gives its room back."""
    client = api["client"]
    api["store"].mkdir(exist_ok=True)
    free = shutil.disk_usage(api["store"]).free
    assert _create(client, free).status_code == 507
    big = _create(client, free - (RESERVE_MB + 32) * 1024 * 1024)  # leaves 32 MiB beyond the reserve
    assert big.status_code == 201, big.text
    small = _create(client, 64 * 1024 * 1024)
    assert small.status_code == 507
    assert "not enough disk space for this upload: it is 64 MiB" in small.json()["detail"]
    assert client.delete(big.headers["Location"], headers=AUTH).status_code == 204
    small = _create(client, 64 * 1024 * 1024)
    assert small.status_code == 201
    assert client.delete(small.headers["Location"], headers=AUTH).status_code == 204


def test_a_cut_connection_resumes_from_what_arrived_and_the_upload_becomes_a_job(api):
    client, video = api["client"], CRICKET_MP4.read_bytes()
    created = _create(client, len(video), filename="cricket.mp4", filetype="video/mp4", top_k="3")
    assert created.status_code == 201 and created.headers["Upload-Expires"].endswith("GMT")
    location = created.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    assert location == f"/uploads/{upload_id}"
    cut = int(len(video) * 0.6)
    sock = _raw_patch(api["port"], location, len(video), video[:cut])
    time.sleep(0.3)
    sock.close()  # the connection breaks at 60%
    assert _offset(client, location) == cut  # every byte that arrived is kept, and no more
    rest = _patch(client, location, cut, video[cut:])
    assert rest.status_code == 204 and int(rest.headers["Upload-Offset"]) == len(video)
    job = _job(client, upload_id)  # the job's id is the upload's
    assert job["status"] == "done", job
    assert job["result"]["actions"][0]["label"] == "playing cricket"
    assert len(job["result"]["actions"]) == 3 and job["result"]["video"]["filename"] == "cricket.mp4"
    assert _offset(client, location) == len(video)  # a late HEAD still hears it is complete
    assert _files(api["store"], upload_id) == [".json", ".lock"]  # the record only: the bytes went to the job
    assert not list(api["upload_dir"].glob("*.upload"))  # and the job deleted them
    assert client.delete(location, headers=AUTH).status_code == 204
    assert _files(api["store"], upload_id) == []


def test_a_newer_request_stops_one_still_waiting_on_a_dead_connection(api):
    """A client whose connection died comes back while the server still waits for the old body: the old request
    is told to stop, saves its offset and lets go, so the HEAD answers with the true offset."""
    client, video = api["client"], CRICKET_MP4.read_bytes()
    location = _create(client, len(video)).headers["Location"]
    sock = _raw_patch(api["port"], location, len(video), video[:20_000])
    try:
        time.sleep(0.5)
        assert _offset(client, location) == 20_000
        assert _status_line(sock) == "HTTP/1.1 409 Conflict"  # what the old request was told
    finally:
        sock.close()
    conflict = _patch(client, location, 0, video)
    assert conflict.status_code == 409 and "the upload is at 20000" in conflict.json()["detail"]
    assert client.delete(location, headers=AUTH).status_code == 204


def test_a_stalled_body_times_out_keeping_what_came(api):
    client, video = api["client"], CRICKET_MP4.read_bytes()
    location = _create(client, len(video)).headers["Location"]
    sock = _raw_patch(api["port"], location, len(video), video[:30_000])
    try:
        assert _status_line(sock, timeout_s=IDLE_TIMEOUT_S + 30) == "HTTP/1.1 408 Request Timeout"
    finally:
        sock.close()
    assert _offset(client, location) == 30_000
    assert client.delete(location, headers=AUTH).status_code == 204


def test_patch_refusals(api):
    client = api["client"]
    location = _create(client, 100).headers["Location"]
    assert client.patch(location, headers={**AUTH, "Upload-Offset": "0", "Content-Type": "video/mp4"},
                        content=b"x").status_code == 415
    assert client.patch(location, headers={**AUTH, **OCTETS}, content=b"x").status_code == 400
    assert _patch(client, location, 5, b"x").status_code == 409
    assert _patch(client, location, 0, b"x" * 101).status_code == 413
    assert _patch(client, location, 0, b"x" * 10, TUS).status_code == 401
    assert _offset(client, location) == 0
    for missing in ("/uploads/" + "0" * 32, "/uploads/nope", "/uploads/..%2F..%2Fetc%2Fpasswd"):
        assert _patch(client, missing, 0, b"x").status_code == 404
        assert client.head(missing, headers=AUTH).status_code == 404
    assert client.delete(location, headers=AUTH).status_code == 204
    assert client.delete(location, headers=AUTH).status_code == 404
    assert not list(api["store"].glob("*"))


def test_an_upload_that_is_no_video_is_refused_when_complete_and_deleted(api):
    client = api["client"]
    location = _create(client, 2048, filename="notes.mp4").headers["Location"]
    refused = _patch(client, location, 0, bytes(2048))
    assert refused.status_code == 415 and "not a video container" in refused.json()["detail"]
    assert client.head(location, headers=AUTH).status_code == 404
    assert not list(api["store"].glob("*")) and not list(api["upload_dir"].glob("*.upload"))


def test_a_full_queue_keeps_the_complete_upload_and_the_next_head_starts_its_job(api, tmp_path):
    """503 when the upload completes while the job queue is full: the bytes stay, and the HEAD a tus client
    sends when it retries starts the job once there is room."""
    from conftest import write_real_minute

    client = api["client"]
    minute = write_real_minute(tmp_path / "minute.mp4")
    running, queued = ([client.post("/jobs", headers={"X-API-Key": KEY}, files={"video": ("m.mp4", minute.read_bytes())})
                        .json()["id"] for _ in range(2)])
    video = CRICKET_MP4.read_bytes()
    location = _create(client, len(video)).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    try:
        full = _patch(client, location, 0, video)
        assert full.status_code == 503 and full.headers["Retry-After"] and "busy" in full.json()["detail"]
        assert client.head(location, headers=AUTH).status_code == 503  # still full
        assert _files(api["store"], upload_id) == [".json", ".lock", ".part"]
    finally:
        for job in (queued, running):
            client.delete(f"/jobs/{job}", headers=AUTH)
    assert _job(client, running)["status"] == "cancelled"
    for _ in range(50):  # as a tus client retries: once the worker has dropped the cancelled job, a HEAD starts ours
        head = client.head(location, headers=AUTH)
        if head.status_code != 503:
            break
        time.sleep(0.2)
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == len(video)
    assert _job(client, upload_id)["result"]["actions"][0]["label"] == "playing cricket"
    assert client.delete(location, headers=AUTH).status_code == 204


def test_expired_uploads_are_swept_but_not_while_held(tmp_path):
    import asyncio

    from api.uploads.resumable.store import UploadStore

    store = UploadStore(tmp_path, ttl_s=100)
    old, young = store.create(length=10, now=1000), store.create(length=10, now=1050)
    (tmp_path / ("f" * 32 + ".part")).write_bytes(b"x")  # a killed process's bytes with no record
    os.utime(tmp_path / ("f" * 32 + ".part"), (900, 900))
    assert store.get(old.id).expired(now=1100) and not store.get(young.id).expired(now=1100)
    assert store.committed_bytes(now=1100) == 10
    assert store.sweep(now=1100) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{young.id}{s}" for s in (".json", ".lock", ".part"))

    async def sweep_while_held() -> int:
        async with store.hold(young.id):
            return store.sweep(now=5000)

    assert asyncio.run(sweep_while_held()) == 0  # a request is writing it
    assert store.sweep(now=5000) == 1 and not list(tmp_path.iterdir())


def test_the_app_sweeps_expired_uploads_on_its_own(tmp_path):
    import asyncio

    from api.uploads.resumable.lifecycle import serving_uploads
    from service.settings import Settings

    async def run() -> list[str]:
        async with serving_uploads(Settings(upload_dir=tmp_path, resumable_ttl_s=1)) as (store, _):
            store.create(length=10, now=time.time() - 5)  # expired already
            await asyncio.sleep(1.5)  # the sweeper looks every second with this TTL
            return [p.name for p in (tmp_path / "resumable").iterdir()]

    assert asyncio.run(run()) == []
