"""A loopback webhook receiver: records every POST (path and JSON body), answers `status`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import Loopback

__all__ = ["WebhookServer", "Received"]


@dataclass(frozen=True)
class Received:
    path: str
    content_type: str
    body: Any


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        fake: WebhookServer = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # recorded before answering: the sender returns only after this, so no waiting is needed
        fake.received.append(
            Received(self.path, self.headers.get("Content-Type", ""), json.loads(raw))
        )
        self.send_response(fake.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: the test output is for the tests."""


class WebhookServer(Loopback):
    """`with WebhookServer() as hook:` then POST to `hook.url("/token")`; `hook.status = 500`."""

    def __init__(self, status: int = 200) -> None:
        super().__init__(_Handler)
        self.status = status
        self.received: list[Received] = []

    def url(self, path: str = "/hook") -> str:
        return self.origin + path
