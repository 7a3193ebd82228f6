"""A TCP proxy on loopback whose network can fail on cue: once armed, it cuts every connection when a given
number of bytes has gone from clients to the server, refuses new ones for a while, then carries them again."""

from __future__ import annotations

import socket
import threading
import time


class CuttingProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent = 0  # bytes from clients to the server since armed
        self.cuts = 0
        self._cut_at: int | None = None
        self._down_s = 0.0
        self._down_until = 0.0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, *, cut_after: int, down_s: float) -> None:
        with self._lock:
            self.sent, self._cut_at, self._down_s = 0, cut_after, down_s

    def close(self) -> None:
        self.listener.close()
        self._cut_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                client.close()  # the network is down
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        cut = False
        try:
            while data := source.recv(65536):
                if upstream:
                    with self._lock:
                        if self._cut_at is not None and self.sent + len(data) >= self._cut_at:
                            data, cut = data[: self._cut_at - self.sent], True
                            self._cut_at, self.cuts = None, self.cuts + 1
                            self._down_until = time.monotonic() + self._down_s
                        self.sent += len(data)
                target.sendall(data)
                if cut:
                    break
        except OSError:
            pass
        if cut:
            self._cut_all()
            return
        with self._lock:
            self._open -= {source, target}
        for sock in (source, target):
            self._shut(sock)

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
