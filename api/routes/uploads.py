"""Resumable uploads on the tus protocol 1.0 (https://tus.io/protocols/resumable-upload), with its creation,
expiration and termination extensions: a big file is sent in pieces and resumed where it stopped after a cut.
A finished upload becomes a job whose id is the upload's (GET /jobs/{id}).

Callers show the API key (X-API-Key) or a token from `POST /uploads/tokens` (Upload-Token), which the page's
server gets with the key and hands to the browser. Size limit and disk check as for every upload; an upload
that receives nothing for RESUMABLE_TTL_S expires and is swept (api/uploads/resumable/)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import errno
import os
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from api.deps import RecognitionsDep, SettingsDep, accepting_work, get_services, require_api_key
from api.uploads.resumable.receive import receive
from api.uploads.resumable.store import Upload, UploadBusy, UploadGone, UploadStore
from api.uploads.tokens import TokenRefused
from api.uploads.streaming import display_filename, no_room
from service.jobs import Job
from service.recognition import check_container
from service.refusals import Refused
from service.schemas import ErrorDetail, UploadToken
from service.settings import Settings

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,expiration,termination"
router = APIRouter(prefix="/uploads", tags=["resumable uploads"])


def upload_access(request: Request, settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None,
                  upload_token: Annotated[str | None, Header()] = None) -> None:
    """When API_KEY is set: the key in X-API-Key, or a token from POST /uploads/tokens in Upload-Token."""
    if not settings.api_key or (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
        return
    if upload_token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header, and no Upload-Token "
                            "(a browser gets one from its page's server: POST /uploads/tokens)",
                            headers={"WWW-Authenticate": "X-API-Key"})
    try:
        get_services(request).upload_tokens.redeem(upload_token)
    except TokenRefused as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"Upload-Token refused: {exc}") from None


def tus_version(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    if tus_resumable != TUS_VERSION:
        raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, f"this server speaks tus {TUS_VERSION}: send the "
                            f"header Tus-Resumable: {TUS_VERSION}", headers={"Tus-Version": TUS_VERSION})


def _store(request: Request) -> UploadStore:
    return get_services(request).uploads


def _http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def _headers(upload: Upload, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(upload.offset), "Upload-Expires": _http_date(upload.expires),
            "Cache-Control": "no-store", **extra}


def _metadata(header: str | None) -> dict[str, str]:
    """Upload-Metadata: `key base64(value)` pairs, comma-separated."""
    pairs = {}
    for item in filter(None, (part.strip() for part in (header or "").split(","))):
        key, _, value = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Upload-Metadata {key!r} is not base64 of UTF-8 text") from None
    return pairs


def _top_k(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 400:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Upload-Metadata top_k must be a whole number from 1 to 400")
    return int(value)


def _check_room(store: UploadStore, settings: Settings, needed: int) -> None:
    """507 unless `needed` more bytes fit on the disk beside what open uploads may still write, and the reserve."""
    reserve = settings.upload_limits.disk_reserve_bytes
    store.directory.mkdir(parents=True, exist_ok=True)
    free = os.statvfs(store.directory)
    if free.f_bavail * free.f_frsize - store.committed_bytes() - needed < reserve:
        raise no_room(store.directory, reserve, needed)


@router.options("", status_code=status.HTTP_204_NO_CONTENT, summary="What this tus server supports")
def options(settings: SettingsDep) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(settings.upload_limits.max_bytes)})


@router.post("/tokens", response_model=UploadToken, dependencies=[Depends(require_api_key)],
             responses={401: {"model": ErrorDetail}},
             summary="A short-lived token that lets a browser upload resumably",
             description="For a trusted caller (the frontend, with X-API-Key), which hands it to a browser.")
def create_token(request: Request) -> UploadToken:
    tokens = get_services(request).upload_tokens
    return UploadToken(token=tokens.issue(), expires_in_s=tokens.ttl_s, endpoint=router.prefix)


@router.post("", status_code=status.HTTP_201_CREATED,
             dependencies=[Depends(upload_access), Depends(tus_version), Depends(accepting_work)],
             responses={code: {"model": ErrorDetail} for code in (400, 401, 412, 413, 422, 503, 507)},
             summary="Create a resumable upload (tus creation)",
             description="Upload-Length (bytes) is required; Upload-Metadata may carry `filename`, `filetype`, "
                         "`top_k`, `head` and `sport`. Answers 201 with its Location; send the bytes with PATCH.")
def create_upload(request: Request, settings: SettingsDep, recognitions: RecognitionsDep,
                  upload_length: Annotated[str | None, Header()] = None,
                  upload_metadata: Annotated[str | None, Header()] = None) -> Response:
    if upload_length is None or not upload_length.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "send the file's size in bytes as Upload-Length "
                                                         "(deferred lengths are not taken)")
    length, limit = int(upload_length), settings.upload_limits.max_bytes
    if length > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload is larger than the {limit // (1024 * 1024)} MiB limit")
    if length == 0:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the uploaded video is empty")
    metadata = _metadata(upload_metadata)
    top_k, head, sport = _top_k(metadata.get("top_k")), metadata.get("head") or None, metadata.get("sport") or None
    recognitions.check_head(head)
    recognitions.check_sport(sport, head)
    store = _store(request)
    store.sweep()  # expired uploads give their room back first
    _check_room(store, settings, length)
    upload = store.create(length=length, filename=display_filename(metadata.get("filename")),
                          filetype=metadata.get("filetype", "")[:100], top_k=top_k, head=head, sport=sport)
    location = f"{request.scope.get('root_path', '')}{router.prefix}/{upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers=_headers(upload, Location=location))


async def _start_job(request: Request, store: UploadStore, upload: Upload, settings: Settings) -> None:
    """The complete upload becomes a job with its id (once). A video we cannot read is refused (415) and its
    upload deleted; when the queue is full or the service stops (503) the upload stays, and the next HEAD or
    PATCH tries again."""
    if upload.job:
        return
    data = store.data_path(upload.id)
    try:
        check_container(data)
    except Refused:
        store.delete(upload.id)
        raise
    request.app.state.drain.refuse_new_work(settings.retry_after_s)
    video = settings.job_upload_dir / f"{upload.id}.upload"
    try:
        os.link(data, video)  # the job owns (and deletes) this name; the upload keeps its own until the job is in
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP):
            raise
        os.replace(data, video)  # no hard links here: a refused job then loses the upload
    job = Job(id=upload.id, video=video, filename=upload.filename, head=upload.head, sport=upload.sport,
              top_k=upload.top_k or settings.default_top_k)
    await run_in_threadpool(get_services(request).jobs.submit, job)  # 503 when full or away: the link is gone again
    upload.job = job.id
    store.save(upload)
    data.unlink(missing_ok=True)


def _refusal(exc: UploadGone | UploadBusy) -> HTTPException:
    if isinstance(exc, UploadBusy):
        return HTTPException(status.HTTP_423_LOCKED, str(exc))
    return HTTPException(status.HTTP_404_NOT_FOUND, "no such upload: it finished long ago, expired or was deleted; "
                                                    "start it again")


def _current(store: UploadStore, upload_id: str) -> Upload:
    upload = store.get(upload_id)
    if upload is None:
        raise _refusal(UploadGone(upload_id))
    if upload.expired():
        raise HTTPException(status.HTTP_410_GONE, "the upload expired; start it again")
    return upload


@router.head("/{upload_id}", dependencies=[Depends(upload_access), Depends(tus_version)],
             summary="How much of an upload the server has (tus)")
async def upload_offset(upload_id: str, request: Request, settings: SettingsDep) -> Response:
    store = _store(request)
    try:
        async with store.hold(upload_id):  # a request still writing it is stopped first, so the offset is true
            upload = _current(store, upload_id)
            if upload.complete:
                await _start_job(request, store, upload, settings)
    except (UploadGone, UploadBusy) as exc:
        raise _refusal(exc) from None
    return Response(status_code=status.HTTP_200_OK, headers=_headers(upload, **{"Upload-Length": str(upload.length)}))


@router.patch("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT,
              dependencies=[Depends(upload_access), Depends(tus_version)],
              responses={code: {"model": ErrorDetail} for code in (400, 401, 404, 408, 409, 410, 412, 413, 415, 423, 503, 507)},
              summary="Send bytes of an upload from its offset (tus)",
              description="Content-Type application/offset+octet-stream; Upload-Offset must be the server's offset "
                          "(HEAD tells it). The last bytes start the job, whose id is the upload's.")
async def append(upload_id: str, request: Request, settings: SettingsDep,
                 upload_offset: Annotated[str | None, Header()] = None,
                 content_type: Annotated[str | None, Header()] = None,
                 content_length: Annotated[str | None, Header()] = None) -> Response:
    if content_type != "application/offset+octet-stream":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "a PATCH carries Content-Type application/offset+octet-stream")
    if upload_offset is None or not upload_offset.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "send Upload-Offset: the byte the body starts at")
    store = _store(request)
    try:
        async with store.hold(upload_id) as holder:
            upload = _current(store, upload_id)
            if int(upload_offset) != upload.offset:
                raise HTTPException(status.HTTP_409_CONFLICT, f"Upload-Offset is {upload_offset} but the upload is at "
                                    f"{upload.offset}: ask with HEAD and go on from there")
            if not upload.complete:
                declared = int(content_length) if content_length and content_length.isdigit() else None
                if declared is not None and upload.offset + declared > upload.length:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                        f"more bytes than the upload's length of {upload.length}")
                ended = await _receive_or_delete(request, upload, store, holder, settings, declared)
                if ended == "stopped":
                    raise HTTPException(status.HTTP_409_CONFLICT, "a newer request on this upload took over")
            if upload.complete:
                await _start_job(request, store, upload, settings)
    except (UploadGone, UploadBusy) as exc:
        raise _refusal(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_headers(upload))


async def _receive_or_delete(request: Request, upload: Upload, store: UploadStore, holder, settings: Settings,
                             declared: int | None) -> str:
    """`receive`, but a disk too full for the rest (507) deletes the upload: nothing half-written stays."""
    limits = settings.upload_limits
    try:
        free = os.statvfs(store.directory)
        if free.f_bavail * free.f_frsize - (declared or upload.length - upload.offset) < limits.disk_reserve_bytes:
            raise no_room(store.directory, limits.disk_reserve_bytes, upload.length - upload.offset)
        return await receive(request, upload, store, holder, limits)
    except Refused as exc:
        if exc.status_code == 507:
            store.delete(upload.id)
        raise


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[Depends(upload_access), Depends(tus_version)],
               responses={code: {"model": ErrorDetail} for code in (401, 404, 412, 423)},
               summary="Stop and delete an upload (tus termination); a job it became goes on")
async def terminate(upload_id: str, request: Request) -> Response:
    store = _store(request)
    try:
        async with store.hold(upload_id):
            if store.get(upload_id) is None:
                raise UploadGone(upload_id)
            store.delete(upload_id)
    except (UploadGone, UploadBusy) as exc:
        raise _refusal(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Tus-Resumable": TUS_VERSION})
