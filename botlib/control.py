"""Operator actions: close one position now, or flatten everything (the kill switch).

They go through the same executor as the engine's exits, so the sale is sent exactly once
(the client order id is fixed per symbol and minute: a double click is a 422 duplicate, looked
up, not a second order) and booked with its P&L; the next cycle writes the reflection.
"""

from __future__ import annotations

import logging

from botlib.engine import Engine, client_order_id

__all__ = ["close_position", "flatten_all"]

log = logging.getLogger(__name__)


def close_position(engine: Engine, symbol: str) -> str:
    """Sell the whole position in `symbol` at market now; return what happened."""
    now = engine.clock.now()
    held = engine.broker.position(symbol)
    if held is None:
        return f"{symbol}: no position to close"
    cid = client_order_id(symbol, now, "manual")
    note, _ = engine.executor.close(None, None, symbol, held, cid, "manual", now)
    log.warning("operator closed %s: %s", symbol, note)
    return f"{symbol}: {note}"


def flatten_all(engine: Engine) -> list[str]:
    """Cancel open orders (where the broker has them) and close every position."""
    cancel = getattr(engine.broker, "cancel_order", None)
    listing = getattr(engine.broker, "open_orders", None)
    notes = []
    if cancel is not None and listing is not None:
        for order in listing():
            cancel(order.id)
            notes.append(f"{order.symbol}: cancelled open order {order.client_order_id}")
    notes.extend(close_position(engine, p.symbol) for p in engine.broker.positions())
    log.warning("kill switch: %s", "; ".join(notes) or "nothing to do")
    return notes
