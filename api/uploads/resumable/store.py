"""Resumable uploads on disk, for the tus protocol (api/routes/uploads.py).

In the store's folder, `<id>.part` holds the bytes received so far and `<id>.json` the upload's record (length,
offset, metadata, expiry), written whole and renamed into place. One request at a time works on an upload: it
holds a `flock` on `<id>.lock`. A newer request on the same upload asks the holder to let go by creating
`<id>.stop`: a client whose connection broke comes back while the server may still wait on the old one. Locks
and flags are files so that every API process on the folder (a gateway runs several) sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SUFFIXES = (".part", ".json", ".json.tmp", ".stop", ".lock")  # .lock last: it is held while the others go


class UploadGone(Exception):
    """No such upload (any more)."""


class UploadBusy(Exception):
    """Another request holds the upload and did not let go in time (423: try again)."""


@dataclass(kw_only=True)
class Upload:
    id: str
    length: int  # bytes, declared at creation
    offset: int = 0  # bytes received so far
    filename: str = "upload"
    filetype: str = ""
    top_k: int | None = None
    head: str | None = None
    sport: str | None = None
    created: float
    expires: float  # time.time() after which it is swept: TTL after its last byte
    job: str | None = None  # the job it became once complete

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    def expired(self, now: float | None = None) -> bool:
        return self.expires <= (time.time() if now is None else now)


class Holder:
    """An upload held by one request: `asked_to_stop()` once a newer request wants it."""

    def __init__(self, stop_flag: Path):
        self._stop_flag = stop_flag

    def asked_to_stop(self) -> bool:
        return self._stop_flag.exists()


class UploadStore:
    def __init__(self, directory: Path, *, ttl_s: float):
        self.directory, self.ttl_s = directory, ttl_s

    def _path(self, upload_id: str, suffix: str) -> Path:
        return self.directory / f"{upload_id}{suffix}"

    def data_path(self, upload_id: str) -> Path:
        return self._path(upload_id, ".part")

    def create(self, *, length: int, now: float | None = None, **metadata) -> Upload:
        self.directory.mkdir(parents=True, exist_ok=True)
        now = time.time() if now is None else now
        upload = Upload(id=uuid.uuid4().hex, length=length, created=now, expires=now + self.ttl_s, **metadata)
        self.data_path(upload.id).touch()
        self._path(upload.id, ".lock").touch()
        self.save(upload, now=now)
        return upload

    def get(self, upload_id: str) -> Upload | None:
        """The upload's record; None for an id that is not one, or no longer is."""
        if not UPLOAD_ID.fullmatch(upload_id):
            return None
        try:
            return Upload(**json.loads(self._path(upload_id, ".json").read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, upload: Upload, *, now: float | None = None) -> None:
        """Write the record (renamed into place, so a reader never sees half of one); it lives TTL from now."""
        upload.expires = (time.time() if now is None else now) + self.ttl_s
        record = self._path(upload.id, ".json")
        temporary = record.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(upload)))
        os.replace(temporary, record)

    def delete(self, upload_id: str) -> None:
        for suffix in SUFFIXES:
            self._path(upload_id, suffix).unlink(missing_ok=True)

    def uploads(self) -> list[Upload]:
        if not self.directory.is_dir():
            return []
        found = (self.get(path.stem) for path in self.directory.glob("*.json"))
        return [upload for upload in found if upload is not None]

    def committed_bytes(self, now: float | None = None) -> int:
        """Bytes that uploads still open may yet write: a new upload must fit beside them."""
        return sum(u.length - u.offset for u in self.uploads() if not u.complete and not u.expired(now))

    def sweep(self, now: float | None = None) -> int:
        """Delete expired uploads (complete ones too: their record only answers a late HEAD) and files with no
        record older than the TTL (a process killed between two writes); skip one held by a request. Returns
        how many uploads went."""
        if not self.directory.is_dir():
            return 0
        now = time.time() if now is None else now
        ids = {name for name in (path.name.split(".", 1)[0] for path in self.directory.iterdir())
               if UPLOAD_ID.fullmatch(name)}
        swept = 0
        for upload_id in ids:
            upload = self.get(upload_id)
            if upload is not None:
                stale = upload.expired(now)
            else:
                newest = max((p.stat().st_mtime for p in self.directory.glob(f"{upload_id}.*")), default=now)
                stale = newest + self.ttl_s <= now
            if stale and self._try_delete(upload_id):
                swept += 1
        return swept

    def _try_delete(self, upload_id: str) -> bool:
        fd = os.open(self._path(upload_id, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            self.delete(upload_id)
        finally:
            os.close(fd)
        return True

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, *, wait_s: float = 5.0) -> AsyncIterator[Holder]:
        """Hold the upload for one request. A request that holds it already is asked to stop (it saves its
        offset and lets go within a fraction of a second); UploadBusy if it has not after `wait_s`, UploadGone
        for no such upload. Never blocks the event loop."""
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadGone(upload_id)
        stop_flag = self._path(upload_id, ".stop")
        try:
            fd = os.open(self._path(upload_id, ".lock"), os.O_RDWR)  # made with the upload: no lock for a stranger
        except FileNotFoundError:
            raise UploadGone(upload_id) from None
        try:
            deadline, asked = time.monotonic() + wait_s, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise UploadBusy(f"another request is writing this upload and did not stop within "
                                         f"{wait_s:g} s; try again") from None
                    stop_flag.touch()
                    asked = True
                    await asyncio.sleep(0.05)
            if asked:
                stop_flag.unlink(missing_ok=True)
            yield Holder(stop_flag)
        finally:
            os.close(fd)  # lets go of the flock
