"""The key that signs the page's sessions, and so its CSRF tokens: the same in every worker process and
across restarts, or a form loaded from one worker fails its check in another.

FLASK_SECRET_KEY when set; otherwise a key generated once and kept, readable by its owner only, in
FRONTEND_DATA_DIR (a volume in the compose file), where every worker reads it.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

log = logging.getLogger("frontend.secret_key")
FILE_NAME = "secret_key"


def load_or_create(configured: str | None, data_dir: Path) -> str:
    if configured:
        return configured
    path = data_dir / FILE_NAME
    if not path.exists():
        _create(path)
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: delete it (a new one is made) or set FLASK_SECRET_KEY")
    return key


def _create(path: Path) -> None:
    """Write a new key next to `path` and link it into place: atomic, and the first of several workers
    starting together wins (the others read its key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.link(temp, path)
        log.info("generated the session key (set FLASK_SECRET_KEY to choose one)", extra={"path": str(path)})
    except FileExistsError:
        pass  # another worker made it first
    finally:
        os.unlink(temp)
