"""One API process per upload folder (without a broker; with JOBS_BROKER_URL the API holds no state). Jobs, the line of waiting recognitions and the batcher live inside
the process, and start-up sweeps the folder's leftovers, so a second process on the same folder (uvicorn
`--workers 2`, API_WORKERS=2, or a second instance) would answer 404 for jobs that exist and delete
uploads in use. It is refused at start-up instead, with the way out."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class AnotherProcessServes(RuntimeError):
    pass


@contextlib.contextmanager
def sole_process(upload_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `upload_dir` for the block (the kernel drops it if the process dies)."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(upload_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AnotherProcessServes(
            f"another API process already serves UPLOAD_DIR={upload_dir}. Jobs and the line of recognitions live "
            "inside one process, so run one process per model: API_WORKERS=1, no `uvicorn --workers`. To serve "
            "more, set JOBS_BROKER_URL and run queue workers (any number of API processes then), or run more "
            "instances behind a load balancer, each with its own UPLOAD_DIR.") from None
    try:
        yield
    finally:
        os.close(fd)
