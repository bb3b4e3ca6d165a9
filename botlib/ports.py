"""The engine's ports: what it needs from a market, a broker, an analyst and a clock.

The simulator, Alpaca and the test fakes all implement these, so a demo, a backtest and a
live run differ only in what is passed to `Engine`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from botlib.analysts.base import AnalystResult, MarketContext, ReflectionResult, TradeReview
    from botlib.models import Account, Order, OrderRequest, Position

__all__ = ["Clock", "MarketData", "Broker", "Analyst"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


class MarketData(Protocol):
    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        """Return up to `limit` completed bars that closed at or before `end`.

        Columns open/high/low/close/volume (float), index = bar open time (UTC), ascending.
        """
        ...

    def latest_price(self, symbol: str, at: datetime) -> float:
        """Return the last traded price at `at` (used to mark positions and fill orders)."""
        ...


class Broker(Protocol):
    mode: str

    def account(self) -> Account: ...

    def position(self, symbol: str) -> Position | None: ...

    def positions(self) -> list[Position]: ...

    def submit_order(self, request: OrderRequest) -> Order:
        """Send an order; raise OrderRejectedError (422 for a reused client_order_id)."""
        ...

    def get_order_by_client_id(self, client_order_id: str) -> Order | None: ...


class Analyst(Protocol):
    name: str

    def decide(self, context: MarketContext) -> AnalystResult:
        """Return a decision plus everything needed to audit how it was reached."""
        ...

    def reflect(self, review: TradeReview) -> ReflectionResult:
        """Review a closed trade (what worked, what failed, what to change)."""
        ...
