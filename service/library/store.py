"""What was recognized, kept: `Library.keep` writes a finished result in one transaction, `answer` finds the same
bytes analysed the same way, and the rest lists, reads, deletes and searches. A database that is away is 503."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, InterfaceError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from models.paths import finetuned_extractor_id
from models.recognition.segments import SegmentSettings
from service.library.database import migrate, open_engine, sqlite_url
from service.library.tables import Moment, Video
from service.refusals import Busy
from service.settings import Settings

TOP_ACTIONS = 3  # kept beside each video for lists


class LibraryUnavailable(Busy):
    def __init__(self, exc: BaseException):
        super().__init__(f"the library's database is not reachable: {str(exc).splitlines()[0][:200]}; try again shortly")


def fingerprint(path: Path) -> tuple[str, int]:
    """(sha256, size) of the file: the same bytes, the same fingerprint."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def analysis(settings: Settings, *, head: str | None, sport: str | None, top_k: int,
             segments: SegmentSettings) -> dict:
    """The head and every setting that changes a result: the same ones, the same answer."""
    return {"head": head or (str(settings.head_path) if settings.head_path else None), "sport": sport, "top_k": top_k,
            "segments": asdict(segments), "clip_length": settings.clip_length, "clip_stride": settings.clip_stride,
            "model_fps": settings.model_fps, "extraction": settings.extraction,
            "recompute_below": settings.recompute_below, "model": settings.model_handle,
            **({"tta": True} if settings.tta else {}),  # keys of analyses without it stay as they were
            # a fine-tuned I3D fine-tuned again into the same folder is another model
            **({"extractor": tuned} if (tuned := finetuned_extractor_id(settings.model_handle)) else {})}


def settings_key(analysed: dict) -> str:
    return hashlib.sha256(json.dumps(analysed, sort_keys=True).encode()).hexdigest()


class Library:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings) -> Library:
        """The library of DATABASE_URL (default: SQLite in DATA_DIR), its schema brought up to date."""
        engine = open_engine(settings.database_url or sqlite_url(settings.data_dir))
        try:
            migrate(engine)
        except (OperationalError, InterfaceError) as exc:
            raise LibraryUnavailable(exc) from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _db(self, *, write: bool = False) -> Iterator[Session]:
        try:
            with self._session() as session:
                if write:
                    with session.begin():
                        yield session
                else:
                    yield session
        except (OperationalError, InterfaceError) as exc:
            raise LibraryUnavailable(exc) from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise LibraryUnavailable(exc) from None
            raise

    def answer(self, sha256: str, analysed: dict, filename: str | None = None) -> dict | None:
        """The stored result of these bytes analysed this way, marked `cached` (under `filename`, the name they
        came with this time, when given); None if there is none."""
        with self._db() as db:
            video = db.scalar(select(Video).where(Video.sha256 == sha256, Video.settings_key == settings_key(analysed)))
            if video is None:
                return None
            found = {**_result(video), "cached": True}
            if filename:
                found["video"] = {**found["video"], "filename": filename}
            return found

    def keep(self, result: dict, *, sha256: str, size: int, analysed: dict) -> dict:
        """Store `result` (video, settings, moments) in one transaction; returns it with its `video_id` and
        `cached: false`. One analysis of the same bytes asked the same way is kept: when there is one already
        (stored meanwhile by another process, or run again with REUSE_RESULTS off), `result` gets its id."""
        video_id = uuid.uuid4().hex
        info = {**result["video"], "sha256": sha256}
        stored = {**result, "video": info, "video_id": video_id}
        stored.pop("cached", None)
        row = Video(id=video_id, sha256=sha256, settings_key=settings_key(analysed), size_bytes=size,
                    filename=(info.get("filename") or "video")[:255], duration_s=info.get("duration_s") or 0.0,
                    fps=info.get("fps") or 0.0, width=info.get("width") or 0, height=info.get("height") or 0,
                    frames=info.get("frames") or 0, windows=len(result["clips"]), head=result["head"],
                    sport=result.get("sport"), settings=analysed, top_actions=result["actions"][:TOP_ACTIONS],
                    result=zlib.compress(json.dumps(stored).encode(), 6), created_at=datetime.now(timezone.utc))
        moments = [Moment(video_id=video_id, label=s["label"], start_s=s["start_s"], end_s=s["end_s"],
                          peak_s=s.get("peak_s", s["start_s"]), confidence=s["confidence"],
                          first_window=s["windows"][0], last_window=s["windows"][1])
                   for s in result.get("segments", [])]
        try:
            with self._db(write=True) as db:
                db.add(row)
                db.flush()  # the video first: its moments point at it
                db.add_all(moments)
        except IntegrityError:
            found = self.answer(sha256, analysed)
            if found is None:
                raise
            return {**stored, "video_id": found["video_id"], "cached": False}
        return {**stored, "cached": False}

    def mark_kept(self, sha256s: list[str], kept: bool) -> None:
        """Whether the media folder has these videos' bytes (every analysis of them)."""
        with self._db(write=True) as db:
            db.execute(update(Video).where(Video.sha256.in_(sha256s)).values(video_kept=kept))

    def bytes_of(self, video_id: str) -> tuple[str, str] | None:
        """(sha256, the file name it was stored with) of a stored analysis, without reading its result; None if
        there is none."""
        with self._db() as db:
            row = db.execute(select(Video.sha256, Video.filename).where(Video.id == video_id)).first()
            return None if row is None else (row[0], row[1])

    def analysed(self, sha256: str) -> bool:
        """Whether any stored analysis is of these bytes."""
        with self._db() as db:
            return db.scalar(select(func.count()).where(Video.sha256 == sha256)) > 0

    def get(self, video_id: str) -> dict | None:
        with self._db() as db:
            video = db.get(Video, video_id)
            return None if video is None else {**_result(video), "has_video": video.video_kept}

    def delete(self, video_id: str) -> bool:
        with self._db(write=True) as db:
            db.execute(delete(Moment).where(Moment.video_id == video_id))
            return db.execute(delete(Video).where(Video.id == video_id)).rowcount > 0

    def videos(self, *, limit: int = 20, offset: int = 0, labels: list[str] | None = None,
               since: datetime | None = None, until: datetime | None = None) -> tuple[int, list[dict]]:
        """(how many match, a page of them newest first): with `labels`, the videos with a moment of one."""
        query = select(Video)
        if labels:
            query = query.where(Video.id.in_(select(Moment.video_id).where(Moment.label.in_(labels))))
        if since:
            query = query.where(Video.created_at >= since)
        if until:
            query = query.where(Video.created_at < until)
        with self._db() as db:
            total = db.scalar(select(func.count()).select_from(query.subquery()))
            rows = db.scalars(query.order_by(Video.created_at.desc(), Video.id).limit(limit).offset(offset)).all()
            return total, [_summary(video) for video in rows]

    def search(self, *, labels: list[str], min_confidence: float = 0.0, since: datetime | None = None,
               until: datetime | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
        """(how many match, a page of moments of `labels` across every stored video): newest videos first, each
        video's moments in time order."""
        query = (select(Moment, Video.filename, Video.created_at, Video.video_kept).join(Video, Moment.video_id == Video.id)
                 .where(Moment.label.in_(labels), Moment.confidence >= min_confidence))
        if since:
            query = query.where(Video.created_at >= since)
        if until:
            query = query.where(Video.created_at < until)
        with self._db() as db:
            total = db.scalar(select(func.count()).select_from(query.subquery()))
            rows = db.execute(query.order_by(Video.created_at.desc(), Moment.video_id, Moment.start_s)
                              .limit(limit).offset(offset)).all()
            return total, [{"video_id": m.video_id, "filename": filename, "created_at": _iso(created), "label": m.label,
                            "start_s": m.start_s, "end_s": m.end_s, "peak_s": m.peak_s, "confidence": m.confidence,
                            "has_video": bool(kept)}
                           for m, filename, created, kept in rows]

    def reel_moments(self, *, labels: list[str], min_confidence: float = 0.0, since: datetime | None = None,
                     until: datetime | None = None, pad_s: float = 2.0, max_s: float = 120.0) -> list[dict]:
        """The most confident moments of `labels` whose videos are kept, padded (within their videos; one longer
        than `max_s` cut to that around its peak), as many as fit in `max_s` seconds: then in library order (newest
        videos first, each in time order), with sha256."""
        query = (select(Moment, Video.sha256, Video.duration_s, Video.created_at).join(Video, Moment.video_id == Video.id)
                 .where(Moment.label.in_(labels), Moment.confidence >= min_confidence, Video.video_kept.is_(True)))
        if since:
            query = query.where(Video.created_at >= since)
        if until:
            query = query.where(Video.created_at < until)
        chosen, used = [], 0.0
        with self._db() as db:
            for m, sha, duration, created in db.execute(query.order_by(Moment.confidence.desc(), Moment.id).limit(1000)):
                start, end = max(0.0, m.start_s - pad_s), min(duration or m.end_s + pad_s, m.end_s + pad_s)
                if end - start > max_s:  # longer than the whole reel: the stretch around its peak
                    start = min(max(start, m.peak_s - max_s / 2), end - max_s)
                    end = start + max_s
                if end - start <= 0 or used + end - start > max_s + 1e-6:
                    continue
                used += end - start
                chosen.append({"video_id": m.video_id, "sha256": sha, "label": m.label, "start_s": start, "end_s": end,
                               "confidence": m.confidence, "created_at": created})
        chosen.sort(key=lambda c: (-_iso_key(c["created_at"]), c["video_id"], c["start_s"]))
        return [{**c, "created_at": _iso(c["created_at"])} for c in chosen]


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def _iso_key(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _result(video: Video) -> dict:
    result = json.loads(zlib.decompress(video.result))
    result["video"] = {**result["video"], "sha256": video.sha256}  # analyses stored before it was in the result
    return result


def _summary(video: Video) -> dict:
    return {"video_id": video.id, "filename": video.filename, "created_at": _iso(video.created_at),
            "duration_s": video.duration_s, "width": video.width, "height": video.height, "fps": video.fps,
            "windows": video.windows, "head": video.head, "sport": video.sport, "size_bytes": video.size_bytes,
            "sha256": video.sha256, "top_actions": video.top_actions, "has_video": video.video_kept}
