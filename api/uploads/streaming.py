"""Stream an upload (multipart field `video`, or a raw `video/*` body) to a unique temp file.

The body is never held in memory: chunks go straight to `<upload_dir>/<uuid>.upload` as they arrive,
and the size limit is enforced while streaming. So is the disk: an upload that would leave less than its
reserve free is refused with 507 before a byte is written (by its declared size) or while it is written. `saved_upload` deletes the file when its block ends;
a job takes the file over with `save_upload` and deletes it when it has run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request, status
from python_multipart.multipart import MultipartParser, parse_options_header

from service.recognition import check_container
from service.refusals import Refused
from service.settings import UploadLimits

FIELD_NAME = "video"
# The video a route takes, as OpenAPI describes it: multipart field `video`, or the raw body.
REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FIELD_NAME],
                "properties": {FIELD_NAME: {"type": "string", "format": "binary", "description": "MP4, AVI, MKV, ..."}},
            }
        },
        "video/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


@dataclass
class SavedUpload:
    path: Path
    filename: str
    size: int


class _VideoPartWriter:
    """MultipartParser callbacks that write the `video` part's bytes to an open file and skip the rest."""

    def __init__(self, file):
        self.file = file
        self.filename: str | None = None
        self.found = False
        self._in_video = False
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._extend("_header_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._extend("_header_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _extend(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._in_video = {}, False

    def _header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == FIELD_NAME.encode() and not self.found:
            self._in_video = self.found = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_video:
            self.file.write(data[start:end])


MiB = 1024 * 1024
DISK_CHECK_EVERY = 8 * MiB  # bytes written between two looks at the free disk (a statvfs: microseconds)


def no_room(directory: Path, reserve: int, needed: int | None = None) -> Refused:
    free = shutil.disk_usage(directory).free
    wanted = f"it is {needed / MiB:,.0f} MiB, " if needed is not None else "it was filling the disk as it came: "
    return Refused(f"not enough disk space for this upload: {wanted}{free / MiB:,.0f} MiB are free and "
                   f"{reserve / MiB:,.0f} MiB are kept free; try again later", status_code=507)


class DiskGuard:
    """`file`, written through: refused (507) once the disk under it would keep less than `reserve` bytes
    free, or when it is full (ENOSPC), as a file system can fill from elsewhere."""

    def __init__(self, file, directory: Path, reserve: int):
        self.file, self.directory, self.reserve = file, directory, reserve
        self._unchecked = 0

    def write(self, data: bytes) -> None:
        self._unchecked += len(data)
        if self._unchecked >= DISK_CHECK_EVERY:
            self._unchecked = 0
            if shutil.disk_usage(self.directory).free - len(data) < self.reserve:
                raise no_room(self.directory, self.reserve)
        try:
            self.file.write(data)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise no_room(self.directory, self.reserve) from None
            raise


def display_filename(name: str | None) -> str:
    """The client's file name, for display only (files are stored under random names): its last path
    component, without control characters, at most 255 characters; "upload" when nothing is left."""
    name = "".join(ch for ch in (name or "") if ch.isprintable()).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] if name not in ("", ".", "..") else "upload"


def _timed_out(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_408_REQUEST_TIMEOUT, detail, headers={"Connection": "close"})


async def _limited(stream: AsyncIterator[bytes], limits: UploadLimits) -> AsyncIterator[bytes]:
    """The body's chunks, refused past the size limit or when it stalls or drags on: a slow client cannot
    hold its place (and its file) forever."""
    limit, total = limits.max_bytes, 0
    chunks = aiter(stream)
    deadline = asyncio.get_running_loop().time() + limits.timeout_s
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            chunk = await asyncio.wait_for(anext(chunks), min(limits.idle_timeout_s, max(left, 0)))
        except StopAsyncIteration:
            return
        except TimeoutError:
            if left <= limits.idle_timeout_s:
                raise _timed_out(f"the upload took longer than {limits.timeout_s:g} s") from None
            raise _timed_out(f"the upload stalled: nothing arrived for {limits.idle_timeout_s:g} s") from None
        total += len(chunk)
        if total > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"upload is larger than the {limit // (1024 * 1024)} MiB limit"
            )
        yield chunk


def _declared_too_large(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024


async def _write_body(request: Request, file, limits: UploadLimits) -> str | None:
    """Write the video bytes of `request` to `file`; return the client's file name if it gave one."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    chunks = _limited(request.stream(), limits)
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "multipart body without a boundary")
        writer = _VideoPartWriter(file)
        parser = MultipartParser(boundary, writer.callbacks())
        try:
            async for chunk in chunks:
                parser.write(chunk)
            parser.finalize()
        except (HTTPException, Refused):
            raise
        except Exception as exc:  # python-multipart raises its own errors for malformed bodies
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart body: {exc}") from None
        if not writer.found:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"multipart field '{FIELD_NAME}' is missing (curl -F {FIELD_NAME}=@clip.mp4)"
            )
        return writer.filename
    if content_type.startswith(b"video/") or content_type == b"application/octet-stream":
        async for chunk in chunks:
            file.write(chunk)
        return request.headers.get("x-filename")
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "send the video as multipart field 'video' or as a raw body with Content-Type video/*",
    )


async def save_upload(request: Request, upload_dir: Path, limits: UploadLimits) -> SavedUpload:
    """Save the request's video to a unique file in `upload_dir`; the caller owns (and deletes) it.

    On any error the partial file is deleted before the error propagates.
    """
    if _declared_too_large(request, limits.max_bytes):
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"upload is larger than the {limits.max_bytes // (1024 * 1024)} MiB limit")
    upload_dir.mkdir(parents=True, exist_ok=True)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and shutil.disk_usage(upload_dir).free - int(declared) < limits.disk_reserve_bytes:
        raise no_room(upload_dir, limits.disk_reserve_bytes, int(declared))
    path = upload_dir / f"{uuid.uuid4().hex}.upload"
    try:
        with open(path, "wb") as file:
            filename = await _write_body(request, DiskGuard(file, upload_dir, limits.disk_reserve_bytes), limits)
        size = path.stat().st_size
        if size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the uploaded video is empty")
        return SavedUpload(path=path, filename=display_filename(filename), size=size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def save_video(request: Request, upload_dir: Path, limits: UploadLimits) -> SavedUpload:
    """`save_upload`, refused (415, and no file) unless the bytes start like a video container we decode."""
    upload = await save_upload(request, upload_dir, limits)
    try:
        check_container(upload.path)
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
    return upload


@contextlib.asynccontextmanager
async def saved_upload(request: Request, upload_dir: Path, limits: UploadLimits) -> AsyncIterator[SavedUpload]:
    """`save_upload`, deleted again when the block ends, however it ends."""
    upload = await save_upload(request, upload_dir, limits)
    try:
        yield upload
    finally:
        upload.path.unlink(missing_ok=True)


def sweep_uploads(upload_dir: Path) -> int:
    """Delete uploads left by an earlier process (a crash, a kill); returns how many."""
    if not upload_dir.is_dir():
        return 0
    leftovers = [*upload_dir.glob("*.upload"), *upload_dir.glob(".warm-up-*")]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)
