"""Highlight reels of finished jobs (`GET /jobs/{id}/highlights`): a job's upload is kept after it is done, as
long as its result (JOBS_TTL_S) and within KEPT_VIDEOS_GB with its reels, the oldest going first; each reel
is cut once (common/reels.py) and kept beside it. The folder is under the uploads' folder, so with a broker
the queue workers keep what the API cuts from."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

from common.reels import NoRoomForReel, ReelError, ReelTooSlow, find_reel, kept_reel, labels_without_moments
from service.refusals import Busy, Refused
from service.settings import Settings

log = logging.getLogger("service.highlights")

_cutting = threading.BoundedSemaphore(1)  # one reel at a time per process: cutting competes with recognition


class KeptVideos:
    """`<job id>.video` and its reels `<job id>.reel-*.mp4` in `folder`."""

    def __init__(self, folder: Path, *, ttl_s: float, max_bytes: int, reel_time_limit_s: float = 600,
                 disk_reserve_bytes: int = 0):
        self.folder, self.ttl_s, self.max_bytes = folder, ttl_s, max_bytes
        self.reel_time_limit_s, self.disk_reserve_bytes = reel_time_limit_s, disk_reserve_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> KeptVideos:
        return cls(settings.job_upload_dir / "kept", ttl_s=settings.jobs_ttl_s,
                   max_bytes=int(settings.kept_videos_gb * 1024**3), reel_time_limit_s=settings.reel_time_limit_s,
                   disk_reserve_bytes=settings.upload_disk_reserve_mb * 1024 * 1024)

    def keep(self, job_id: str, video: Path) -> bool:
        """Keep a finished job's upload (moved, not copied), making room by the oldest; False (and the upload
        deleted) when keeping is off or it is bigger than all the room there is."""
        try:
            size = video.stat().st_size
            if size > self.max_bytes:
                return False
            self.folder.mkdir(parents=True, exist_ok=True)
            self.sweep(room_for=size)
            kept = self.folder / f"{job_id}.video"
            os.replace(video, kept)
            os.utime(kept)  # its life starts now, with the result's
            return True
        except OSError as exc:
            log.warning("could not keep a job's video for its reels", extra={"job_id": job_id, "detail": str(exc)})
            return False
        finally:
            video.unlink(missing_ok=True)

    def source(self, job_id: str) -> Path | None:
        kept = self.folder / f"{job_id}.video"
        return kept if kept.is_file() and time.time() - kept.stat().st_mtime <= self.ttl_s else None

    def sweep(self, *, room_for: int = 0, now: float | None = None) -> int:
        """Delete the jobs' videos and reels older than the results, then the oldest until `room_for` more bytes
        fit within the limit; returns how many jobs went."""
        if not self.folder.is_dir():
            return 0
        now = time.time() if now is None else now
        groups: dict[str, list[Path]] = defaultdict(list)
        for entry in self.folder.iterdir():
            groups[entry.name.lstrip(".").partition(".")[0]].append(entry)
        born = {job: _mtime(self.folder / f"{job}.video", entries) for job, entries in groups.items()}
        gone = [job for job in groups if now - born[job] > self.ttl_s]
        left = sorted((job for job in groups if job not in gone), key=born.__getitem__)
        used = sum(_size(entry) for job in left for entry in groups[job])
        while left and used + room_for > self.max_bytes:
            job = left.pop(0)
            used -= sum(_size(entry) for entry in groups[job])
            gone.append(job)
        for job in gone:
            for entry in groups[job]:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        return len(gone)

    def reel(self, job_id: str, result: dict, labels: list[str], pad_s: float) -> tuple[Path, str]:
        """(the reel of `labels`, "copy" or "encode"): Refused 422 for a label without a moment, 410 once the video
        is no longer kept, 507 without the disk for it, 503 when it takes too long."""
        missing = labels_without_moments(result, labels)
        if missing:
            present = sorted({segment["label"] for segment in result.get("segments", [])})
            raise Refused(f"no moment of {', '.join(map(repr, missing))} in this result; its moments are of: "
                          f"{', '.join(present) or 'none'}", status_code=422)
        if (made := find_reel(self.folder, job_id, labels, pad_s)) is not None:
            return made
        self.sweep()
        source = self.source(job_id)
        if source is None:
            raise Refused("the job's video is no longer kept (videos are kept for reels within KEPT_VIDEOS_GB, "
                          "as long as their results)", status_code=410)
        if not _cutting.acquire(timeout=self.reel_time_limit_s):
            raise Busy("other reels are being cut; try again shortly")
        try:
            return kept_reel(source, result, labels, self.folder, job_id, pad_s=pad_s,
                             timeout_s=self.reel_time_limit_s, disk_reserve_bytes=self.disk_reserve_bytes)
        except NoRoomForReel as exc:
            raise Refused(str(exc), status_code=507) from None
        except ReelTooSlow as exc:
            raise Busy(str(exc)) from None
        except ReelError as exc:
            log.warning("reel failed", extra={"job_id": job_id, "detail": str(exc)})
            raise Refused(f"the reel could not be made: {exc}", status_code=500) from None
        finally:
            _cutting.release()


def _mtime(video: Path, entries: list[Path]) -> float:
    try:
        return video.stat().st_mtime
    except OSError:  # a reel or lock whose video went: as old as its newest file
        return max((entry.stat().st_mtime for entry in entries if entry.exists()), default=0.0)


def _size(entry: Path) -> int:
    try:
        return entry.stat().st_size if entry.is_file() else sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
    except OSError:
        return 0
