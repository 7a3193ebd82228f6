"""JSON log lines on stdout: one object per line with time, level, logger, message and any `extra` fields.

Fields are added with `log.info("...", extra={"request_id": rid, "status": 200})`. Video content and keys
are never passed to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON lines. Calling it again replaces only its own handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "json_lines", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.json_lines = True
    root.addHandler(handler)
    root.setLevel(level)
