"""Refuse kernel websockets that do not speak the v1 protocol (guards a Voila 0.5.13 bug).

A client that connects without offering the `v1.kernel.websocket.jupyter.org` subprotocol makes
Voila 0.5.13 spin at 100% CPU with memory growing until SIGKILL, on the next widget update.
Browsers always offer v1, so refusing everything else costs the dashboard nothing. `botlib serve`
selects this class with `--Voila.kernel_websocket_connection_class`; it is imported by the Voila
process only.
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web

__all__ = ["V1_PROTOCOL", "V1OnlyConnection", "offers_v1"]

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def offers_v1(header: str | None) -> bool:
    """Say whether a `Sec-WebSocket-Protocol` request header offers the v1 kernel protocol.

    >>> offers_v1("v1.kernel.websocket.jupyter.org"), offers_v1(None), offers_v1("chat, v1")
    (True, False, False)
    """
    return V1_PROTOCOL in (part.strip() for part in (header or "").split(","))


class V1OnlyConnection(ZMQChannelsWebsocketConnection):
    """The stock kernel connection, refusing (HTTP 400, before the upgrade) non-v1 clients."""

    async def prepare(self) -> None:
        handler = self.websocket_handler
        if not offers_v1(handler.request.headers.get("Sec-WebSocket-Protocol")):
            # `Finish`, not `HTTPError`: Voila cannot render error pages for this handler, and
            # a traceback per refused client would flood the log.
            handler.set_status(400)
            handler.set_header("Content-Type", "text/plain; charset=utf-8")
            raise web.Finish(f"kernel websockets must offer the {V1_PROTOCOL} protocol\n")
        await super().prepare()
