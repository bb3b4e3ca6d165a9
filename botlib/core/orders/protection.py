"""Protection that rests at the venue: one stop_limit sell per open position, kept in line.

After an entry fills, the venue (Alpaca or the simulator) holds a stop_limit sell for the whole
position, so the position is protected while the bot, the machine or the schedule is down. The
venue reserves an open sell's coins and has no OCO, so only one protective sell rests at a time
and the take-profit stays the bot's side of a software OCO (cancel the stop, then sell).

`Protector.protect` is called by every reconciliation (each cycle and each guard pass): it
places a missing stop, replaces one whose stop or quantity no longer matches the books (cancel,
then place the next revision), cancels stops of positions that are gone, and records (and
alerts) open orders the bot did not place without touching them. Protective client order ids
are `<entry client id>-p<revision>`: deterministic, so a rerun after a crash finds its order
instead of placing a second.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botlib.clock import parse_time
from botlib.core.orders.execution import PROTECT, Executor, record_reconciliation
from botlib.models import Order, OrderRequest, Position
from botlib.ports import AlertSink, Broker
from botlib.storage.store import Store

__all__ = ["Protection", "Protector", "protective_base"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Protection:
    """How the resting stop is priced: its limit sits `band_pct` below the stop."""

    band_pct: float = 0.5

    def limit_for(self, stop: float) -> float:
        """The stop_limit's limit: low enough to fill in a fast fall, not at any price.

        >>> Protection(0.5).limit_for(100.0)
        99.5
        """
        return round(stop * (1 - self.band_pct / 100), 10)


def protective_base(symbol: str, booked: dict[str, Any], entry_cid: str | None) -> str:
    """The stem of a position's protective client ids: its entry's id, or its adoption time."""
    if entry_cid:
        return entry_cid
    opened = parse_time(booked.get("opened_at"))
    stamp = f"{opened:%Y%m%dT%H%M}" if opened else "unknown"
    return f"{symbol.replace('/', '')}-{stamp}-adopted"


class Protector:
    """Keeps exactly one protective stop at the venue for each position the bot holds."""

    def __init__(
        self,
        broker: Broker,
        store: Store,
        executor: Executor,
        settings: Protection | None = None,
        alerts: AlertSink | None = None,
    ) -> None:
        self.broker, self.store, self.executor = broker, store, executor
        self.settings = settings or Protection()
        self.alerts = alerts

    def resting_stop(self, symbol: str) -> Order | None:
        """The open protective stop for `symbol` at the venue, if one rests."""
        mine = {i["client_order_id"] for i in self.store.resting_intents(symbol, PROTECT)}
        return next((o for o in self.broker.open_orders(symbol) if o.client_order_id in mine), None)

    def protect(self, symbol: str, now: datetime, cycle_id: str | None = None) -> None:
        """Make the venue hold one stop matching the books for `symbol`, or none when flat."""
        opens = self.broker.open_orders(symbol)
        mine = {i["client_order_id"]: i for i in self.store.pending_intents(symbol)}
        for order in opens:
            if order.client_order_id not in mine:
                self._unknown(order, now, cycle_id)
        stops = [o for o in opens if mine.get(o.client_order_id, {}).get("reason") == PROTECT]
        booked = self.store.get_position(symbol)
        held = self.broker.position(symbol)
        wanted = booked if held and booked and booked.get("stop_loss") else None
        keep = None
        for order in stops:
            intent = mine[order.client_order_id]
            if keep is None and wanted is not None and held and _fits(intent, wanted, held):
                keep = order
                continue
            why = "replaced: the stop or the quantity changed" if wanted else "position closed"
            if not self.executor.cancel(intent, now, why):
                return  # it filled meanwhile (booked), or the venue has not confirmed yet
        if wanted is not None and held is not None and keep is None:
            self._place(symbol, held, wanted, now, cycle_id)

    def _place(
        self, symbol: str, held: Position, booked: dict[str, Any], now: datetime,
        cycle_id: str | None,
    ) -> None:  # fmt: skip
        entry_id = booked.get("entry_trade_id")
        entry_cid = self.store.trade(int(entry_id))["client_order_id"] if entry_id else None
        base = protective_base(symbol, booked, entry_cid)
        revision = self.store.protect_revisions(base) + 1
        stop = float(booked["stop_loss"])
        request = OrderRequest(
            symbol, "sell", f"{base}-p{revision}", qty=held.qty, type="stop_limit",
            stop_price=stop, limit_price=self.settings.limit_for(stop),
        )  # fmt: skip
        intent = self.executor.intent(request, cycle_id, None, PROTECT, now) | {
            "entry_price": held.avg_entry_price,
            "entry_trade_id": entry_id,
            "revision": revision,
        }
        order, note = self.executor.send(request, intent, now)
        if order is None:
            self._failed(symbol, request, note, now, cycle_id)
        elif not order.is_open and order.filled_qty > 0:  # placed under the price: filled at once
            self.executor.book(intent, order, now)
        else:
            log.info("protective stop %s rests at %.8g (limit %.8g)", request.client_order_id,
                     stop, request.limit_price)  # fmt: skip

    def _failed(
        self, symbol: str, request: OrderRequest, note: str, now: datetime, cycle_id: str | None
    ) -> None:
        why = f"stop {request.client_order_id} not placed ({note}): the bot's own stop watches"
        record_reconciliation(self.store, now, cycle_id, symbol, "stop_not_placed",
                              None, request.qty, why)  # fmt: skip
        if self.alerts is not None:
            self.alerts.raise_alert("protection", f"{symbol}: {why}", now=now, symbol=symbol,
                                    cycle_id=cycle_id)  # fmt: skip

    def _unknown(self, order: Order, now: datetime, cycle_id: str | None) -> None:
        """Record (once) and alert an open order the bot did not place; never touch it."""
        cid = order.client_order_id
        if self.store.has_reconciliation("unknown_order", cid):
            return
        why = (f"open {order.type} {order.side} {cid} at the venue was not placed by the bot;"
               " left untouched")  # fmt: skip
        record_reconciliation(self.store, now, cycle_id, order.symbol, "unknown_order",
                              None, order.qty, why)  # fmt: skip
        if self.alerts is not None:
            self.alerts.raise_alert("unknown_order", f"{order.symbol}: {why}", now=now,
                                    symbol=order.symbol, cycle_id=cycle_id)  # fmt: skip


def _fits(intent: dict[str, Any], booked: dict[str, Any], held: Position) -> bool:
    """Whether a resting stop still matches the books (its stop and the whole position)."""
    same_stop = math.isclose(intent["stop_price"], float(booked["stop_loss"]), rel_tol=1e-9)
    same_qty = math.isclose(intent["qty"] or 0.0, held.qty, rel_tol=1e-9, abs_tol=1e-12)
    return same_stop and same_qty
