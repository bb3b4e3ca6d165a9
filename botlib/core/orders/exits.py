"""When the bot sells a position, and how: its side of the software OCO with the venue's stop.

The venue holds the stop-loss (a resting stop_limit, `protection`); the bot holds the rest:
- **take-profit**: price reached the target: cancel the resting stop, then sell at market
  (never two sells live: the venue reserves the stop's coins, and a stop that fired during
  the cancel is booked and ends the exit);
- **gap exit**: price fell below the stop's limit while the stop is still open (it triggered
  but the market gapped through its limit): cancel it and sell at market, with an alert;
- **stop-loss**: only when no stop rests at the venue (placing it failed, or venue stops are
  off): the bot's own stop, as before.

The engine (each cycle, on the last closed bar and the latest price), the guard (between
cycles, on the latest price) and the operator's close-now all sell through `Exits.close`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from botlib.clock import parse_time
from botlib.core.orders.execution import Executor
from botlib.core.orders.protection import Protection, Protector
from botlib.ports import AlertSink, Broker
from botlib.storage.store import Store

__all__ = ["Exits", "exit_reason", "hit"]

log = logging.getLogger(__name__)

CAUSES = {
    "stop_loss": "the bot's stop-loss",
    "take_profit": "take-profit",
    "gap_exit": "gap exit: price fell through the resting stop's limit",
    "guard_exit": "the guard's stop-loss",
    "signal": "the analyst's SELL",
    "manual": "the operator",
}


def hit(booked: dict[str, Any], low: float, high: float) -> str | None:
    """Say whether prices from `low` to `high` reach the position's stop or target.

    >>> hit({"stop_loss": 90.0, "take_profit": 120.0}, 89.0, 125.0)
    'stop_loss'
    """
    stop, take = booked.get("stop_loss"), booked.get("take_profit")
    if stop is not None and low <= stop:
        return "stop_loss"  # checked first: if both are touched, assume the worse
    if take is not None and high >= take:
        return "take_profit"
    return None


def exit_reason(booked: dict[str, Any], bar: Any, bar_time: datetime, price: float) -> str | None:
    """Say whether the position's stop or target was hit on prices seen since it was opened.

    Those are the latest price and the last closed bar if it opened at or after the position's
    `opened_at`. A bar that opened earlier (a restart, or a second cycle, within the entry's bar)
    holds prices from before the entry: exiting on its low would sell on a price never seen.
    """
    opened = parse_time(booked.get("opened_at"))
    seen_bar = opened is not None and bar_time >= opened
    low = min(price, bar["low"]) if seen_bar else price
    high = max(price, bar["high"]) if seen_bar else price
    return hit(booked, low, high)


class Exits:
    """Sells a position for one of the causes above, releasing what rests at the venue first."""

    def __init__(
        self,
        broker: Broker,
        executor: Executor,
        protector: Protector | None = None,
        alerts: AlertSink | None = None,
    ) -> None:
        self.broker, self.executor = broker, executor
        self.protector, self.alerts = protector, alerts

    @classmethod
    def on_venue(
        cls, broker: Broker, store: Store, executor: Executor, protection: Protection | None,
        alerts: AlertSink | None = None,
    ) -> Exits:  # fmt: skip
        """The exits of an engine or a guard: with a `Protector` when stops rest at the venue
        (`protection`), else the bot's own stop only."""
        protector = (
            None if protection is None else Protector(broker, store, executor, protection, alerts)
        )
        return cls(broker, executor, protector, alerts)

    def action(self, symbol: str, reached: str | None, price: float) -> str | None:
        """Turn a reached stop or target into what the bot does now (None: nothing).

        With a stop resting at the venue, a reached stop is the venue's to fill; the bot acts
        only when the price is below the stop's limit (a gapped stop the venue cannot fill).
        """
        if reached != "stop_loss":
            return reached
        resting = self.protector.resting_stop(symbol) if self.protector else None
        if resting is None:
            return "stop_loss"
        if resting.limit_price is not None and price < resting.limit_price:
            return "gap_exit"
        return None

    def close(
        self, cycle_id: str | None, decision_id: int | None, symbol: str, client_order_id: str,
        reason: str, now: datetime,
    ) -> tuple[str, tuple[str, ...]]:  # fmt: skip
        """Cancel the bot's resting orders for `symbol`, then sell the whole position."""
        if not self.executor.release(symbol, now, f"cancelled for {reason}"):
            return "the venue's stop filled first (booked) or is not cancelled yet: no sale", ()
        position = self.broker.position(symbol)
        if position is None:
            return "no position to sell", ()
        note, orders = self.executor.close(
            cycle_id, decision_id, symbol, position, client_order_id, reason, now
        )
        if reason == "gap_exit" and self.alerts is not None:
            self.alerts.raise_alert("gap_exit", f"{symbol}: {CAUSES[reason]}; {note}", now=now,
                                    symbol=symbol, cycle_id=cycle_id)  # fmt: skip
        return note, orders
