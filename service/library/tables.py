"""The library's tables. Changing them means a new Alembic revision in migrations/versions/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Video(Base):
    """One analysed video: the same bytes analysed with other settings are another row."""

    __tablename__ = "videos"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    settings_key: Mapped[str] = mapped_column(String(64))  # the head and every setting that changes the result
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float] = mapped_column(Float)
    fps: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    windows: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(200))
    sport: Mapped[str | None] = mapped_column(String(64))
    settings: Mapped[dict] = mapped_column(JSON)
    top_actions: Mapped[list] = mapped_column(JSON)  # the first few of `actions`, for lists
    result: Mapped[bytes] = mapped_column(LargeBinary)  # the whole result as zlib-compressed JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    video_kept: Mapped[bool] = mapped_column(Boolean, default=False)  # its bytes in the media folder (by sha256)
    __table_args__ = (UniqueConstraint("sha256", "settings_key", name="videos_same_analysis"),
                      Index("videos_created", "created_at"))


class Moment(Base):
    """A segment of a stored video: what `GET /search` finds."""

    __tablename__ = "moments"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(String(32), ForeignKey("videos.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    peak_s: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    first_window: Mapped[int] = mapped_column(Integer)
    last_window: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("moments_label_confidence", "label", "confidence"), Index("moments_video", "video_id"))
