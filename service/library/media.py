"""The library's media folder (MEDIA_DIR): each analysed video's bytes, kept once however often they were analysed,
for playback, thumbnails and highlight reels.

    <sha256>.video                 the upload, moved here when its analysis is stored
    <sha256>.poster.jpg            a still for lists: stays when the video goes, small
    <sha256>.thumb-<ms>.jpg        moments' thumbnails, made when first asked for
    <sha256>.<video id>.reel-*.mp4 an analysis' highlight reels (common/reels.py)
    search-<key>.mp4               reels of a search across videos

Within MEDIA_MAX_GB the oldest videos go first with their reels and thumbnails; their analyses stay, marked as
having no video. One lock file makes keeping, sweeping, deleting and publishing a reel take turns across the API
and the workers, so a video deleted while its reel is cut gives that reel a clean 410, never a broken file."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from common.reels import (NoRoomForReel, Piece, ReelError, ReelTooSlow, Span, find_reel, kept_reel, labels_without_moments,
                          make_mixed_reel, one_maker)
from common.thumbnails import ThumbnailError, frame_jpeg
from service.library.store import Library
from service.refusals import Busy, Refused
from service.settings import Settings

log = logging.getLogger("service.library.media")

_cutting = threading.BoundedSemaphore(1)  # one reel at a time per process: cutting competes with recognition
LOCK = ".media.lock"
THUMBNAIL_STEP_S = 0.1  # thumbnails asked within this of each other are one file


class VideoGone(ReelError):
    """The video was deleted, or made room for others, while its reel was being cut."""


class Media:
    def __init__(self, folder: Path, *, max_bytes: int, enabled: bool = True, reel_time_limit_s: float = 600,
                 disk_reserve_bytes: int = 0):
        self.folder, self.max_bytes, self.enabled = folder, max_bytes, enabled
        self.reel_time_limit_s, self.disk_reserve_bytes = reel_time_limit_s, disk_reserve_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Media:
        return cls(settings.media_folder, max_bytes=int(settings.media_max_gb * 1024**3), enabled=settings.keep_videos,
                   reel_time_limit_s=settings.reel_time_limit_s,
                   disk_reserve_bytes=settings.upload_disk_reserve_mb * 1024 * 1024)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def keep(self, result: dict, upload: Path, library: Library | None = None) -> bool:
        """Keep the bytes of a stored analysis (`result`, with its sha256) for playback and reels: the upload is
        moved here, or deleted when they are here already, when keeping is off or when they are bigger than all
        the room. A poster is made either way. `library` is told which videos it has, and which went for room."""
        sha = result["video"]["sha256"]
        try:
            self._make_poster(sha, upload, result)
            if not self.enabled or (size := upload.stat().st_size) > self.max_bytes:
                return False
            with self._locked():
                kept = self.folder / f"{sha}.video"
                if kept.is_file():
                    os.utime(kept)  # asked again: the newest
                else:
                    gone = self._overflow(room_for=size)
                    if library is not None and gone:
                        library.mark_kept([g for g in gone if not g.startswith("search-")], False)
                    self._remove(gone)
                    os.replace(upload, kept)
                if library is not None:
                    library.mark_kept([sha], True)
            return True
        except (OSError, Refused) as exc:
            log.warning("could not keep an analysed video", extra={"sha256": sha, "detail": str(exc)})
            return False
        finally:
            upload.unlink(missing_ok=True)

    def source(self, sha: str) -> Path | None:
        kept = self.folder / f"{sha}.video"
        return kept if kept.is_file() else None

    def sweep(self, library: Library | None = None) -> int:
        """Make the folder fit MEDIA_MAX_GB again (after it was lowered); returns how many videos or reels went."""
        if not self.folder.is_dir():
            return 0
        with self._locked():
            gone = self._overflow(room_for=0)
            if library is not None and gone:
                library.mark_kept([g for g in gone if not g.startswith("search-")], False)
            self._remove(gone)
            return len(gone)

    def _groups(self) -> dict[str, list[Path]]:
        """Each video's files (and each search reel's) by its first name part; posters and the lock are left out."""
        groups: dict[str, list[Path]] = defaultdict(list)
        for entry in self.folder.iterdir():
            if entry.name != LOCK and not entry.name.endswith(".poster.jpg"):
                groups[entry.name.lstrip(".").partition(".")[0]].append(entry)
        return groups

    def _overflow(self, *, room_for: int) -> list[str]:
        """The oldest groups that must go for `room_for` more bytes to fit (under the lock)."""
        groups = self._groups()
        born = {key: _mtime(self.folder / f"{key}.video", entries) for key, entries in groups.items()}
        left = sorted(groups, key=born.__getitem__)
        used = sum(_size(entry) for entries in groups.values() for entry in entries)
        gone = []
        while left and used + room_for > self.max_bytes:
            key = left.pop(0)
            used -= sum(_size(entry) for entry in groups[key])
            gone.append(key)
        return gone

    def _remove(self, keys: list[str], *, posters: bool = False) -> None:
        wanted = set(keys)
        for entry in self.folder.iterdir():
            key = entry.name.lstrip(".").partition(".")[0]
            if key in wanted and entry.name != LOCK and (posters or not entry.name.endswith(".poster.jpg")):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)

    def forget(self, sha: str, video_id: str, *, bytes_still_used: bool) -> None:
        """A deleted analysis' files: its reels, and the video with everything of it unless another analysis of
        the same bytes is still stored. A reel being cut from it then ends in a clean 410."""
        with contextlib.suppress(FileNotFoundError), self._locked():
            if not bytes_still_used:
                self._remove([sha], posters=True)
                return
            for entry in self.folder.glob(f"{sha}.{video_id}.*"):
                entry.unlink(missing_ok=True)

    def _make_poster(self, sha: str, video: Path, result: dict) -> None:
        """A still for lists, at the peak of the most confident moment (a tenth into the video without one)."""
        poster = self.folder / f"{sha}.poster.jpg"
        if poster.is_file():
            return
        segments = sorted(result.get("segments", []), key=lambda s: -s["confidence"])
        at = segments[0].get("peak_s", segments[0]["start_s"]) if segments else (result["video"].get("duration_s") or 0) / 10
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(poster, frame_jpeg(video, at))
        except ThumbnailError as exc:
            log.warning("no poster for an analysed video", extra={"sha256": sha, "detail": str(exc)})

    def poster(self, sha: str) -> Path | None:
        poster = self.folder / f"{sha}.poster.jpg"
        return poster if poster.is_file() else None

    def thumbnail(self, sha: str, at_s: float) -> Path | None:
        """The frame at `at_s` (made once), or the poster once the video is no longer kept; None without either."""
        source = self.source(sha)
        if source is None:
            return self.poster(sha)
        ms = round(at_s / THUMBNAIL_STEP_S) * round(THUMBNAIL_STEP_S * 1000)
        made = self.folder / f"{sha}.thumb-{ms}.jpg"
        if not made.is_file():
            try:
                _write_atomically(made, frame_jpeg(source, ms / 1000))
            except (ThumbnailError, OSError) as exc:  # gone meanwhile, or unreadable
                log.warning("no thumbnail", extra={"sha256": sha, "detail": str(exc)})
                return self.poster(sha)
        return made

    def reel(self, sha: str, video_id: str, result: dict, labels: list[str], pad_s: float) -> tuple[Path, str]:
        """(the reel of `labels` in the analysis `video_id`, "copy" or "encode"): Refused 422 for a label without a
        moment, 410 once the video is no longer kept (or deleted meanwhile), 507 without the disk for it, 503 when
        it takes too long."""
        missing = labels_without_moments(result, labels)
        if missing:
            present = sorted({segment["label"] for segment in result.get("segments", [])})
            raise Refused(f"no moment of {', '.join(map(repr, missing))} in this result; its moments are of: "
                          f"{', '.join(present) or 'none'}", status_code=422)
        owner = f"{sha}.{video_id}"
        if (made := find_reel(self.folder, owner, labels, pad_s)) is not None:
            return made
        source = self._source_or_gone(sha)
        with self._one_cut([sha]):
            return kept_reel(source, result, labels, self.folder, owner, pad_s=pad_s, timeout_s=self.reel_time_limit_s,
                             disk_reserve_bytes=self.disk_reserve_bytes, publish=self._publisher([sha]))

    def search_reel(self, pieces: list[tuple[str, float, float]]) -> Path:
        """One reel of stretches (sha256, start, end) of several kept videos, re-encoded to one size (made once)."""
        key = hashlib.sha256(repr(sorted(set(pieces), key=pieces.index)).encode()).hexdigest()[:20]
        made = self.folder / f"search-{key}.mp4"
        if made.is_file():
            return made
        sources = {sha: self._source_or_gone(sha) for sha, _, _ in pieces}
        with self._one_cut(list(sources)):
            with one_maker(self.folder / f".search-{key}.lock", time.monotonic() + self.reel_time_limit_s):
                if made.is_file():
                    return made
                partial = self.folder / f".search-{key}.partial.mp4"
                try:
                    make_mixed_reel([Piece(sources[sha], Span(start, end)) for sha, start, end in pieces], partial,
                                    timeout_s=self.reel_time_limit_s, disk_reserve_bytes=self.disk_reserve_bytes)
                    self._publisher(list(sources))(partial, made)
                finally:
                    partial.unlink(missing_ok=True)
            return made

    def _source_or_gone(self, sha: str) -> Path:
        source = self.source(sha)
        if source is None:
            raise Refused("the video is no longer kept in the library (KEEP_VIDEOS, and MEDIA_MAX_GB lets the oldest "
                          "go); its analysis stays", status_code=410)
        return source

    @contextlib.contextmanager
    def _one_cut(self, shas: list[str]) -> Iterator[None]:
        """One reel at a time in this process; its errors as refusals (410 when one of its videos went meanwhile)."""
        if not _cutting.acquire(timeout=self.reel_time_limit_s):
            raise Busy("other reels are being cut; try again shortly")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            yield
        except VideoGone:
            raise Refused("the video was deleted (or made room for newer ones) while its reel was being cut",
                          status_code=410) from None
        except NoRoomForReel as exc:
            raise Refused(str(exc), status_code=507) from None
        except ReelTooSlow as exc:
            raise Busy(str(exc)) from None
        except ReelError as exc:
            if any(self.source(sha) is None for sha in shas):
                raise Refused("the video was deleted (or made room for newer ones) while its reel was being cut",
                              status_code=410) from None
            log.warning("reel failed", extra={"detail": str(exc)})
            raise Refused(f"the reel could not be made: {exc}", status_code=500) from None
        finally:
            _cutting.release()

    def _publisher(self, shas: list[str]):
        def publish(partial: Path, made: Path) -> None:
            with self._locked():
                if any(self.source(sha) is None for sha in shas):
                    raise VideoGone("a video of the reel is gone")
                os.replace(partial, made)
        return publish


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _mtime(video: Path, entries: list[Path]) -> float:
    try:
        return video.stat().st_mtime
    except OSError:  # a search reel, or a reel or lock whose video went: as old as its newest file
        return max((entry.stat().st_mtime for entry in entries if entry.exists()), default=0.0)


def _size(entry: Path) -> int:
    try:
        return entry.stat().st_size if entry.is_file() else sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
    except OSError:
        return 0
