"""`python -m workers.health [HOSTNAME]`: exit 0 when the worker HOSTNAME (default celery@this host) has
announced itself in Redis within the last few seconds (model loaded, heartbeat running), else 1. The
worker container's healthcheck."""

from __future__ import annotations

import socket
import sys

from service.queue import registry
from service.settings import get_settings


def main(argv: list[str]) -> int:
    hostname = argv[0] if argv else f"celery@{socket.gethostname()}"
    try:
        alive = registry.alive(registry.client(get_settings().jobs_broker_url))
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if hostname not in alive:
        print(f"unhealthy: {hostname} has not announced itself (alive: {', '.join(alive) or 'none'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
