"""JSON log lines."""

from __future__ import annotations

import json
import logging

from common.logs import JsonFormatter


def test_json_formatter_keeps_extra_fields_and_exceptions():
    record = logging.makeLogRecord({"name": "api", "levelname": "INFO", "msg": "recognized %s", "args": ("x",),
                                    "request_id": "abc", "clips": 4})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "recognized x" and entry["request_id"] == "abc" and entry["clips"] == 4
    assert entry["level"] == "INFO" and entry["ts"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]
