"""Send approved orders exactly once and book their fills, positions, P&L and reflections."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from botlib.clock import iso
from botlib.core.failpoints import failpoint
from botlib.core.risk import RiskVerdict
from botlib.errors import OrderRejectedError
from botlib.models import Account, AssetSettings, Order, OrderRequest, Position
from botlib.ports import Broker
from botlib.storage.store import Store

__all__ = ["Executor", "PROTECT", "realized_pnl", "record_reconciliation"]

log = logging.getLogger(__name__)

PROTECT = "venue_stop"  # the reason of a protective stop_limit's intent and of its fill's trade


class Executor:
    """Sends orders and books fills; every order is written down (an intent) before it is sent.

    The intent is what makes a crash recoverable: killed after the broker filled the order but
    before the booking, the next reconciliation (`botlib.core.orders.reconcile`) finds the
    pending intent, fetches the order by its client id and books it here with `book`, exactly as an
    uninterrupted cycle would have.
    """

    def __init__(self, broker: Broker, store: Store) -> None:
        self.broker, self.store = broker, store

    def submit(self, request: OrderRequest) -> tuple[Order | None, str]:
        """Submit once; a 422 duplicate means an earlier run already sent it, so look it up."""
        try:
            return self.broker.submit_order(request), "submitted"
        except OrderRejectedError as exc:
            if not exc.is_duplicate:
                log.warning("order %s rejected: %s", request.client_order_id, exc)
                return None, f"order rejected ({exc.status}): {exc}"
        log.info("order %s was already submitted", request.client_order_id)
        return self.broker.get_order_by_client_id(request.client_order_id), "already submitted"

    def open(
        self, cycle_id: str, decision_id: int, verdict: RiskVerdict, now: datetime,
        expires_at: datetime | None = None,
    ) -> tuple[str, tuple[str, ...]]:  # fmt: skip
        """Send an entry; a limit entry rests (its intent pending) until it fills or expires."""
        request = verdict.order
        assert request is not None
        intent = self.intent(request, cycle_id, decision_id, "signal", now)
        intent |= {"stop_loss": verdict.stop_loss, "take_profit": verdict.take_profit,
                   "expires_at": iso(expires_at) if request.rests else None}  # fmt: skip
        order, note = self.send(request, intent, now)
        if order is not None and order.is_open and order.filled_qty <= 0:
            return f"{verdict.reason}; {note}: {_resting_note(order)}", (order.client_order_id,)
        if order is None or order.filled_qty <= 0:
            return note, ()
        self.book(intent, order, now)
        return f"{verdict.reason}; {note}", (order.client_order_id,)

    def close(
        self,
        cycle_id: str | None,
        decision_id: int | None,
        symbol: str,
        position: Position,
        client_order_id: str,
        reason: str,
        now: datetime,
    ) -> tuple[str, tuple[str, ...]]:
        request = OrderRequest(symbol, "sell", client_order_id, qty=position.qty)
        intent = self.intent(request, cycle_id, decision_id, reason, now)
        intent["entry_price"] = position.avg_entry_price
        order, note = self.send(request, intent, now)
        if order is None or order.filled_qty <= 0:
            return note, ()
        pnl = self.book(intent, order, now) or 0.0
        return f"closed by {reason}; {note}; realized {pnl:+,.2f} USD", (order.client_order_id,)

    def send(
        self, request: OrderRequest, intent: dict[str, Any], now: datetime
    ) -> tuple[Order | None, str]:
        """Write the intent (committed), then submit; a refusal resolves it at once.

        A database that cannot take the intent (disk full, read-only) stops here, before the
        broker hears of an order the bot could not record.
        """
        self.store.add_intent(intent)
        failpoint("order.before_submit")
        order, note = self.submit(request)
        failpoint("order.after_submit")
        if order is None:
            self.store.resolve_intent(request.client_order_id, "rejected", now, note)
        return order, note  # an unfilled order stays pending: a later reconciliation books it

    def cancel(
        self, intent: dict[str, Any], now: datetime, why: str, status: str = "canceled"
    ) -> bool:
        """Cancel a resting order; return False when it filled first (then it is booked here).

        The venue answers 422 for an order that is no longer open: it is looked up again and,
        filled, booked like any fill, so a stop that fired during a replace is never lost.
        """
        cid = intent["client_order_id"]
        order = self.broker.get_order_by_client_id(cid)
        if order is None:
            self.store.resolve_intent(cid, "not_sent", now, "the broker never received it")
            return True
        if order.is_open:
            try:
                self.broker.cancel_order(order.id)
            except OrderRejectedError:
                log.info("order %s closed before its cancel", cid)
            failpoint("order.after_cancel")
            order = self.broker.get_order_by_client_id(cid) or order
        if order.filled_qty > 0 and not order.is_open:
            self.book(intent, order, now)
            return False
        if order.is_open:  # a venue that has not confirmed the cancel yet: next pass decides
            return False
        self.store.resolve_intent(cid, status, now, why)
        log.info("order %s %s: %s", cid, status, why)
        return True

    def release(self, symbol: str, now: datetime, why: str) -> bool:
        """Cancel every resting order the bot placed for `symbol` (stops and limit entries).

        Return False when a resting sell filled before its cancel (it is booked): a stop that
        fired first means there is nothing left to sell.
        """
        clear = True
        for intent in self.store.resting_intents(symbol, None):
            if not self.cancel(intent, now, why) and intent["side"] == "sell":
                clear = False
        return clear

    def intent(
        self, request: OrderRequest, cycle_id: str | None, decision_id: int | None, reason: str,
        now: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        """The row an order is written down as before it is sent (see `send`)."""
        return {
            "client_order_id": request.client_order_id,
            "cycle_id": cycle_id,
            "decision_id": decision_id,
            "symbol": request.symbol,
            "side": request.side,
            "qty": request.qty,
            "notional": request.notional,
            "reason": reason,
            "order_type": request.type,
            "limit_price": request.limit_price,
            "stop_price": request.stop_price,
            "created_at": iso(now),
        }

    def book(self, intent: dict[str, Any], order: Order, now: datetime) -> float | None:
        """Book a filled order, its position and its intent in one transaction; return sell P&L.

        Idempotent per client order id: booking a fill twice changes nothing.
        """
        pnl = None
        if order.side == "sell":
            entry = intent.get("entry_price") or 0.0
            pnl = realized_pnl(order.filled_qty, order.filled_avg_price or 0.0, entry, order.fee)
        symbol = order.symbol
        with self.store.transaction():
            trade_id, new = self._record(
                intent.get("cycle_id"), intent.get("decision_id"), order, intent["reason"], pnl
            )
            held = self.broker.position(symbol) if new else None
            if new and order.side == "buy" and held is not None:
                self.store.set_position(
                    symbol,
                    {
                        "qty": held.qty,
                        "avg_entry_price": held.avg_entry_price,
                        "stop_loss": intent.get("stop_loss"),
                        "take_profit": intent.get("take_profit"),
                        # the fill's time, not the booking's: a recovered order was filled a
                        # cycle ago, and exits count only prices from the fill on
                        "opened_at": iso(order.filled_at or now),
                        "updated_at": iso(now),
                        "entry_trade_id": trade_id,
                    },
                )
            elif new and order.side == "sell":
                self.store.set_position(symbol, None if held is None else _still_open(held, now))
            self.store.resolve_intent(order.client_order_id, "filled", now, order.status)
        return pnl

    def _record(
        self,
        cycle_id: str | None,
        decision_id: int | None,
        order: Order,
        reason: str,
        pnl: float | None,
    ) -> tuple[int, bool]:
        existing = self.store.trade_by_client_id(order.client_order_id)
        if existing:
            return int(existing["id"]), False
        trade_id = self.store.record_trade(
            {
                "cycle_id": cycle_id,
                "decision_id": decision_id,
                "symbol": order.symbol,
                "side": order.side,
                "reason": reason,
                "client_order_id": order.client_order_id,
                "broker_order_id": order.id,
                "status": order.status,
                "qty": order.filled_qty,
                "notional": order.filled_qty * (order.filled_avg_price or 0.0),
                "price": order.filled_avg_price,
                "fee": order.fee,
                "fee_pending": 0 if order.fee_posted else 1,
                "realized_pnl": pnl,
                # a trade happens when it fills: a resting stop is placed hours before
                "created_at": iso(order.filled_at or order.created_at),
                "filled_at": iso(order.filled_at),
            }
        )
        return trade_id, True

    def adopt_position(self, asset: AssetSettings, held: Position, now: datetime) -> None:
        """Book a position the bot did not know, with the asset's default stop and target.

        The broker does not say when it was opened, so `opened_at` is now: its exits count
        prices from the adoption on, never bars the bot saw before it knew of the position.
        """
        price = held.avg_entry_price
        self.store.set_position(
            asset.symbol,
            {
                "qty": held.qty,
                "avg_entry_price": price,
                "stop_loss": price * (1 - asset.stop_loss_pct / 100),
                "take_profit": price * (1 + asset.take_profit_pct / 100),
                "opened_at": iso(now),
                "updated_at": iso(now),
            },
        )

    def snapshot(
        self, cycle_id: str, symbol: str, account: Account, price: float, now: datetime
    ) -> None:
        held = self.broker.position(symbol)
        unrealized = held.unrealized_pnl(price) if held else 0.0
        self.store.add_equity_snapshot(
            {
                "ts": iso(now),
                "cycle_id": cycle_id,
                "symbol": symbol,
                "equity": account.equity,
                "cash": account.cash,
                "asset_pnl": self.store.realized_pnl(symbol) + unrealized,
            }
        )


def _resting_note(order: Order) -> str:
    if order.limit_price is None:  # a market order the venue has not filled in the wait
        return f"{order.type} {order.side} still {order.status}: booked when it fills"
    return f"{order.type} {order.side} rests at {order.limit_price:,.8g} ({order.status})"


def record_reconciliation(
    store: Store, now: datetime, cycle_id: str | None, symbol: str, kind: str,
    db_qty: float | None, broker_qty: float | None, detail: str,
) -> None:  # fmt: skip
    """Record (and log) one correction or finding of reconciliation, for the operator to see."""
    log.warning("reconciliation: %s %s (db %s, broker %s): %s", kind, symbol, db_qty,
                broker_qty, detail)  # fmt: skip
    store.add_reconciliation(
        {"ts": iso(now), "cycle_id": cycle_id, "symbol": symbol, "kind": kind,
         "db_qty": db_qty, "broker_qty": broker_qty, "detail": detail}
    )  # fmt: skip


def _still_open(held: Position, now: datetime) -> dict[str, object]:
    return {"qty": held.qty, "avg_entry_price": held.avg_entry_price, "updated_at": iso(now)}


def realized_pnl(qty: float, price: float, entry: float, fee: float) -> float:
    """A sell's P&L net of its fee (the buy's fee is in `entry`: fewer coins for the cost)."""
    return qty * (price - entry) - fee
