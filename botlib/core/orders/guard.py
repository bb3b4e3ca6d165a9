"""The guard: watches open positions between cycles, without the analyst or a notebook.

An hourly cycle leaves an hour between looks. The venue holds each position's stop (a resting
stop_limit); the guard, every few seconds on the latest price, does the rest of what a trader
leaving the bot overnight expects: books what filled at the venue (a stop, a limit entry),
puts back a missing stop, cancels expired limit entries, fires take-profits (cancel the stop,
then sell), and exits a gapped stop (price below its limit, order still open) at market with
an alert. It looks only at assets with a position or an order pending, so an idle account
costs no venue requests. `botlib guard` runs it in a loop under the tick's lock
(`botlib.app.scheduler`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from botlib.clock import floor_time
from botlib.core.log_tags import log_context
from botlib.core.orders.execution import Executor
from botlib.core.orders.exits import Exits, hit
from botlib.core.orders.protection import Protection
from botlib.core.orders.reconcile import reconcile
from botlib.errors import BotlibError
from botlib.features.indicators import checked_price
from botlib.models import AssetSettings
from botlib.ports import AlertSink, Broker, MarketData
from botlib.storage.store import Store

__all__ = ["Guard", "GuardResult", "guard_order_id"]

log = logging.getLogger(__name__)


def guard_order_id(symbol: str, now: datetime, reason: str) -> str:
    """The guard's exit id: one per symbol, minute and cause (a rerun finds its order).

    >>> from datetime import UTC
    >>> guard_order_id("BTC/USD", datetime(2026, 12, 7, 20, 15, 42, tzinfo=UTC), "gap_exit")
    'BTCUSD-20261207T2015-gap_exit'
    """
    return f"{symbol.replace('/', '')}-{floor_time(now, 1):%Y%m%dT%H%M}-{reason}"


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What one pass did for one asset: the exit it fired, or a failure it recorded."""

    symbol: str
    action: str | None = None
    note: str = ""


class Guard:
    """One pass over the watched assets; the loop and the lock belong to the caller."""

    def __init__(
        self,
        market: MarketData,
        broker: Broker,
        store: Store,
        protection: Protection | None = None,
        alerts: AlertSink | None = None,
    ) -> None:
        self.market, self.broker, self.store = market, broker, store
        self.executor = Executor(broker, store)
        self.exits = Exits.on_venue(broker, store, self.executor, protection, alerts)
        self.protector = self.exits.protector

    def watched(self) -> list[AssetSettings]:
        """Assets with a position, a pending order or a fee still to post (what needs a look)."""
        store = self.store
        return [
            asset
            for asset in store.list_assets()
            if store.get_position(asset.symbol)
            or store.pending_intents(asset.symbol)
            or store.fee_pending_trades(asset.symbol)
        ]

    def check(self, now: datetime) -> list[GuardResult]:
        """Check every watched asset once; a failure is logged and the others still run."""
        results = []
        for asset in self.watched():
            with log_context("guard", asset.symbol):
                try:
                    results.append(self.check_asset(asset, now))
                except BotlibError as exc:
                    log.warning("guard pass failed: %s", exc)
                    results.append(GuardResult(asset.symbol, None, f"failed: {exc}"))
        return results

    def check_asset(self, asset: AssetSettings, now: datetime) -> GuardResult:
        """Reconcile (book venue fills, keep one stop), then fire a take-profit or gap exit."""
        symbol = asset.symbol
        price = checked_price(symbol, self.market.latest_price(symbol, now))
        held = reconcile(self.store, self.broker, self.executor, asset, now, None, self.protector)
        booked = self.store.get_position(symbol)
        if held is None or booked is None:
            return GuardResult(symbol)
        reached = hit(booked, price, price)
        action = self.exits.action(symbol, reached, price)
        if action == "stop_loss":
            action = "guard_exit"  # the bot's own stop, fired between cycles
        if action is None:
            return GuardResult(symbol)
        cid = guard_order_id(symbol, now, action)
        note, _ = self.exits.close(None, None, symbol, cid, action, now)
        log.warning("guard %s at %.8g: %s", action, price, note)
        return GuardResult(symbol, action, note)
