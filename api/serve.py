"""`python -m api`: the API under uvicorn, with a graceful stop (api/drain.py).

    python -m api [--host 127.0.0.1] [--port 8000] [--workers 1 (more only as a gateway: JOBS_BROKER_URL)]

The first SIGTERM or SIGINT starts the drain: the port stays open, new work gets 503, admitted work runs
for at most DRAIN_TIMEOUT_S. The process exits (status 0) once nothing is in flight. A second signal
cancels what still runs instead of crashing the process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("api.serve")
AFTER_CANCEL_S = 15  # after cancelling, how long cancelled work may take to answer before uvicorn closes it


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.app = app
        self._signals = 0
        self._stopped_at: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        # A signal handler: only flags here (no logging, no locks); on_tick acts on them.
        self._signals += 1
        if not self.started:  # still loading the model: stop right after start-up
            self.should_exit = True

    def _in_flight(self) -> int:
        services = self.app.state.services
        return services.recognitions.in_flight() if services else 0

    async def on_tick(self, counter: int) -> bool:
        drain = self.app.state.drain
        if self._signals and not drain.draining:
            drain.begin()
            log.info("stopping: new work gets 503; waiting for the work in flight",
                     extra={"in_flight": self._in_flight(), "drain_timeout_s": drain.timeout_s()})
        if drain.draining:
            if not drain.stopping and (self._signals > 1 or drain.overdue()):
                log.warning("stopping: cancelling the work still in flight",
                            extra={"in_flight": self._in_flight(), "second_signal": self._signals > 1})
                drain.stop_work()
                self._stopped_at = time.monotonic()
            overstayed = self._stopped_at is not None and time.monotonic() - self._stopped_at > AFTER_CANCEL_S
            if self._in_flight() == 0 or overstayed:
                self.should_exit = True
        return await super().on_tick(counter)


def serve(app: FastAPI, *, host: str, port: int, log_level: str = "info", header_cap_bytes: int = 64 * 1024) -> None:
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None, log_level=log_level.lower(),
                            h11_max_incomplete_event_size=header_cap_bytes, timeout_graceful_shutdown=AFTER_CANCEL_S)
    # uvicorn puts back the handlers it found when it returns: make those ignore the signal, so that one more
    # TERM or Ctrl-C while the runtimes tear down (make run sends several) cannot kill the process half-way.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    GracefulServer(config, app).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description="Serve the action recognition API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes: 1 with in-process jobs; any number as a gateway (JOBS_BROKER_URL)")
    args = parser.parse_args(argv)
    from service.settings import get_settings

    settings = get_settings()
    header_cap = 4 * settings.max_header_kib * 1024
    if args.workers < 1 or (args.workers != 1 and not settings.jobs_broker_url):
        # api/sole_process.py says why; uvicorn --workers is refused there at start-up
        parser.error(f"--workers {args.workers} (API_WORKERS): jobs and the line of recognitions live inside one "
                     "process, so run one process per model; to serve more, set JOBS_BROKER_URL (queue workers, "
                     "docs/deployment.md) or run more instances behind a load balancer, each with its own UPLOAD_DIR")
    if args.workers > 1:  # gateways hold no state: uvicorn's own supervisor runs them; a stop waits for open requests
        uvicorn.run("api.main:app", host=args.host, port=args.port, workers=args.workers, access_log=False,
                    log_config=None, log_level=settings.log_level.lower(), h11_max_incomplete_event_size=header_cap,
                    timeout_graceful_shutdown=int(settings.drain_timeout_s))
        return
    from api.app import create_app  # configures nothing heavy: the model loads in the lifespan

    serve(create_app(settings), host=args.host, port=args.port, log_level=settings.log_level, header_cap_bytes=header_cap)
