"""What every loopback fake shares: a threaded server on 127.0.0.1, a free port, a fast stop."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["Loopback", "LoopbackServer"]


class LoopbackServer(ThreadingHTTPServer):
    """The server; handlers reach their fake as `self.server.fake`."""

    daemon_threads = True
    fake: Any


class Loopback:
    """Serve `handler` in a background thread; use as `with Fake() as fake:`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.stopping = threading.Event()  # set on exit: slow answers stop waiting
        self._server = LoopbackServer(("127.0.0.1", 0), handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
