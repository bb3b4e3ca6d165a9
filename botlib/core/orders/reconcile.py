"""Reconciliation at the start of each cycle: the broker's positions and orders are the truth.

After a crash, a manual trade in Alpaca's web UI or a partial fill, the bot's `positions` table
can disagree with the account. First each order the bot wrote down but never booked (a pending
intent: the process died between submit and booking, or the order had not filled yet) is
looked up by its client id and booked or closed; then positions are compared. Each difference
is corrected and recorded in `reconciliations` (and logged), so an operator can see what
changed and why.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botlib.clock import iso, parse_time
from botlib.core.orders.execution import Executor, record_reconciliation
from botlib.models import AssetSettings, Position
from botlib.ports import Broker
from botlib.storage.store import Store

if TYPE_CHECKING:
    from botlib.core.orders.protection import Protector

__all__ = ["reconcile"]

log = logging.getLogger(__name__)


def reconcile(
    store: Store,
    broker: Broker,
    executor: Executor,
    asset: AssetSettings,
    now: datetime,
    cycle_id: str | None = None,
    protector: Protector | None = None,
) -> Position | None:
    """Make the bot's position for `asset` match the broker's; return the broker's position.

    With a `protector`, the venue's open orders are reconciled too (see `Protector.protect`):
    a position with no resting stop gets one, a stop for a position that is gone is cancelled,
    an order the bot did not place is recorded and alerted.
    """
    symbol = asset.symbol
    for intent in store.pending_intents(symbol):
        _resolve(store, broker, executor, intent, now, cycle_id)
    for trade in store.fee_pending_trades(symbol):
        _late_fee(store, broker, trade)
    held = broker.position(symbol)
    booked = store.get_position(symbol)
    booked_qty = None if booked is None else float(booked["qty"])
    if held is not None and booked is None:
        executor.adopt_position(asset, held, now)
        why = "a position the bot did not know (manual trade or lost write): default SL/TP"
        record_reconciliation(store, now, cycle_id, symbol, "adopted", None, held.qty, why)
    elif held is None and booked is not None:
        store.set_position(symbol, None)
        record_reconciliation(store, now, cycle_id, symbol, "cleared", booked_qty, None,
                "the broker holds nothing (closed outside the bot)")  # fmt: skip
    elif held is not None and booked_qty is not None and not _same(held.qty, booked_qty):
        store.set_position(
            symbol,
            {"qty": held.qty, "avg_entry_price": held.avg_entry_price, "updated_at": iso(now)},
        )
        record_reconciliation(store, now, cycle_id, symbol, "qty_corrected", booked_qty, held.qty,
                "quantity differs (partial fill, fee or manual trade)")  # fmt: skip
    if protector is not None:
        protector.protect(symbol, now, cycle_id)
    return held


def _resolve(
    store: Store, broker: Broker, executor: Executor, intent: dict[str, Any], now: datetime,
    cycle_id: str | None,
) -> None:  # fmt: skip
    """Settle one pending intent from the broker's record of its order."""
    cid, symbol = intent["client_order_id"], intent["symbol"]
    order = broker.get_order_by_client_id(cid)
    if order is None:
        store.resolve_intent(cid, "not_sent", now, "the broker never received it")
        record_reconciliation(store, now, cycle_id, symbol, "order_not_sent", None, None,
                f"order {cid} was written down but never reached the broker")  # fmt: skip
    elif order.is_open and _expired(intent, now):
        executor.cancel(intent, now, f"expired at {intent['expires_at']} unfilled", "expired")
    elif order.is_open and order.filled_qty <= 0:
        log.debug("order %s is still %s at the broker", cid, order.status)
    elif order.filled_qty > 0:
        executor.book(intent, order, now)
        if intent.get("order_type") in ("limit", "stop_limit"):  # what resting orders are for
            log.info("%s %s filled at the venue at %.8g: booked", intent["reason"], cid,
                     order.filled_avg_price or 0.0)  # fmt: skip
            return
        why = f"{order.side} {cid} filled at the broker but was not booked: booked now"
        why += f" for cycle {intent['cycle_id']}"
        record_reconciliation(store, now, cycle_id, symbol, "order_recovered", None,
                              order.filled_qty, why)  # fmt: skip
    else:
        store.resolve_intent(cid, "unfilled", now, f"ended {order.status} without a fill")


def _late_fee(store: Store, broker: Broker, trade: dict[str, Any]) -> None:
    """Book a fee the venue charged after the fill was booked; a sell's P&L nets it too."""
    order = broker.get_order_by_client_id(trade["client_order_id"])
    if order is None or not order.fee_posted:
        return
    pnl = trade["realized_pnl"]
    if pnl is not None:
        pnl = pnl + float(trade["fee"] or 0.0) - order.fee
    store.correct_fee(int(trade["id"]), order.fee, pnl)
    log.info("fee of %s posted: %.2f USD booked", trade["client_order_id"], order.fee)


def _expired(intent: dict[str, Any], now: datetime) -> bool:
    expires = parse_time(intent.get("expires_at"))
    return expires is not None and now >= expires


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
