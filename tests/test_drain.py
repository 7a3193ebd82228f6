"""The graceful stop's decisions (api/serve.py, api/drain.py) without a model: the live signals are in
test_faults.py."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from fastapi import HTTPException

from api.drain import Drain
from api.serve import GracefulServer, main


class InFlight:
    def __init__(self, count: int):
        self.count = count

    def in_flight(self) -> int:
        return self.count


def _server(timeout_s: float, work: InFlight) -> tuple[GracefulServer, Drain]:
    drain = Drain(lambda: timeout_s)
    app = SimpleNamespace(state=SimpleNamespace(drain=drain, services=SimpleNamespace(recognitions=work)))  # api/services.py
    server = GracefulServer(uvicorn.Config(app=app), app)
    server.started = True
    return server, drain


def _tick(server: GracefulServer) -> bool:
    return asyncio.run(server.on_tick(1))


def test_a_term_drains_then_cancels_what_overstays_the_bound():
    work = InFlight(1)
    server, drain = _server(0.3, work)
    cancel = threading.Event()
    with drain.cancellable(cancel):
        assert not _tick(server) and not drain.draining
        server.handle_exit(signal.SIGTERM, None)
        assert not _tick(server) and drain.draining and not drain.stopping  # still within the bound
        with pytest.raises(HTTPException) as refused:
            drain.refuse_new_work(7)
        assert refused.value.status_code == 503 and refused.value.headers["Retry-After"] == "7"
        time.sleep(0.35)
        assert not _tick(server) and drain.stopping and cancel.is_set()  # past it: cancelled, not yet answered
    work.count = 0
    assert _tick(server)  # nothing in flight: exit


def test_a_second_signal_cancels_at_once_and_work_registered_later_is_cancelled_too():
    server, drain = _server(600, InFlight(1))
    server.handle_exit(signal.SIGTERM, None)
    _tick(server)
    server.handle_exit(signal.SIGTERM, None)
    _tick(server)
    assert drain.stopping
    with drain.cancellable(threading.Event()) as late:
        assert late.is_set()
    assert server._captured_signals == []  # uvicorn would re-raise them at exit and die by the signal


def test_an_idle_server_exits_on_the_first_signal():
    server, drain = _server(600, InFlight(0))
    server.handle_exit(signal.SIGINT, None)
    assert _tick(server) and not drain.stopping


def test_more_than_one_process_is_refused_with_the_way_out(capsys):
    with pytest.raises(SystemExit):
        main(["--workers", "2"])
    assert "one process per model" in capsys.readouterr().err
