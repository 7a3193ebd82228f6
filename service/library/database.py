"""The library's database: SQLite in the data folder by default (WAL, a busy timeout: processes on one machine
share it), PostgreSQL when DATABASE_URL says so (workers on other machines); Alembic brings its schema to the
newest revision at start-up, one process at a time."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# where SQLite's file locks cannot be trusted: a database there would be corrupted by two machines writing
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "ceph", "glusterfs", "afs",
                       "lustre", "fuse.rclone", "fuse.s3fs", "virtiofs"}
MIGRATION_LOCK = 734017  # PostgreSQL advisory lock held while migrating


class UnsafeDatabase(RuntimeError):
    """A SQLite file where SQLite cannot lock it safely: refused at start-up, with the reason."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'library.db'}"


def filesystem_of(path: Path, mounts: str | None = None) -> str:
    """The type of the filesystem `path` is on (from /proc/mounts; "" when it cannot tell)."""
    try:
        mounts = Path("/proc/mounts").read_text() if mounts is None else mounts
    except OSError:
        return ""
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            point = fields[1].replace("\\040", " ")
            if (str(path) == point or str(path).startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


def open_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file on a network filesystem raises UnsafeDatabase."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                             connect_args={"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {})
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        kind = filesystem_of(folder)
        if kind in NETWORK_FILESYSTEMS:
            raise UnsafeDatabase(
                f"the library's SQLite file {parsed.database} is on a network filesystem ({kind}), where SQLite's "
                "locks do not hold across machines and two writers corrupt it: keep it on a local disk (DATA_DIR), "
                "or set DATABASE_URL=postgresql+psycopg://... for workers on several machines")
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


@contextmanager
def _one_at_a_time(engine: Engine):
    """Held while migrating: a lock file beside a SQLite database, an advisory lock on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield None
            return
        with open(f"{database}.migrate.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield None
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        yield connection


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (Alembic); processes starting at once take turns."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _one_at_a_time(engine) as held:
        if held is not None:
            config.attributes["connection"] = held
            command.upgrade(config, revision)
            return
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

