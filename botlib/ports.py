"""The engine's ports: what it needs from a market, a broker, an analyst, alerts and a clock,
and the types the analyst port speaks (what an analyst is given and what it returns).

The simulator, Alpaca and the test fakes all implement these, so a demo, a backtest and a
live run differ only in what is passed to `Engine`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from botlib.models import Account, AssetSettings, Decision, Position

if TYPE_CHECKING:
    import pandas as pd

    from botlib.models import Order, OrderRequest

__all__ = [
    "Clock",
    "MarketData",
    "Broker",
    "Analyst",
    "AlertSink",
    "MarketContext",
    "CallRecord",
    "AnalystResult",
    "TradeReview",
    "ReflectionResult",
    "BUDGET_REACHED",
]

BUDGET_REACHED = "LLM budget reached"  # a call record's error starts with it: the guard said no


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

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders the venue still holds open (resting limits and stops), all symbols if None."""
        ...

    def cancel_order(self, order_id: str) -> None:
        """Cancel an open order; raise OrderRejectedError (422) when it is no longer open."""
        ...


class Analyst(Protocol):
    name: str

    def decide(self, context: MarketContext) -> AnalystResult:
        """Return a decision plus everything needed to audit how it was reached."""
        ...

    def reflect(self, review: TradeReview) -> ReflectionResult:
        """Review a closed trade (what worked, what failed, what to change)."""
        ...


class AlertSink(Protocol):
    """Where the engine's alerts go (`botlib.ops.alerts.Alerts`: a table, maybe a webhook)."""

    def raise_alert(
        self,
        kind: str,
        message: str,
        *,
        now: datetime,
        symbol: str | None = None,
        cycle_id: str | None = None,
    ) -> int | None:
        """Record the alert once (de-duplicated by kind); return its id, or None if known."""
        ...


@dataclass(frozen=True)
class MarketContext:
    """Everything an analyst may look at: bars (with indicators) up to `now`, never later."""

    symbol: str
    now: datetime
    bars: pd.DataFrame
    asset: AssetSettings
    account: Account
    position: Position | None
    price: float
    smc: dict[str, Any] = field(default_factory=dict)  # botlib.features.smc.summary at the last bar

    @property
    def last_bar_time(self) -> datetime:
        return self.bars.index[-1].to_pydatetime()


@dataclass(frozen=True)
class CallRecord:
    """What one analyst call was asked, answered and cost: the audit columns it leaves."""

    prompt: Any = None
    response: Any = None
    raw_response: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    error: str | None = None
    output_mode: str | None = None  # json_schema | json_object | rules
    cache: str | None = None  # off | hit | recorded

    def columns(self) -> dict[str, Any]:
        """Return the fields as `ai_decision_logs` / `ai_reflections` columns."""
        return asdict(self)


@dataclass(frozen=True)
class AnalystResult:
    """A decision plus the audit trail that goes into `ai_decision_logs`."""

    decision: Decision
    analyst: str
    model: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    call: CallRecord = field(default_factory=CallRecord)


@dataclass(frozen=True)
class TradeReview:
    """One closed trade with the decisions that opened and closed it, for a reflection."""

    symbol: str
    trade_id: int
    qty: float
    entry_price: float
    exit_price: float
    exit_reason: str  # signal | take_profit | venue_stop | gap_exit | stop_loss | guard_exit ..
    realized_pnl: float
    fees: float
    entry_time: str | None = None
    exit_time: str | None = None
    entry_decision: dict[str, Any] | None = None  # action, confidence, SL/TP, reasoning
    exit_decision: dict[str, Any] | None = None
    # how it ended, in words: "stopped out at the venue at 59,000 (resting stop_limit, ...)"
    exit_note: str = ""

    @property
    def move_pct(self) -> float:
        return (self.exit_price / self.entry_price - 1) * 100 if self.entry_price else 0.0

    def describe(self) -> str:
        """Say what happened in one sentence (the rules reflection, and the LLM's facts)."""
        verdict = "worked" if self.realized_pnl > 0 else "did not work"
        result = (
            f"{self.move_pct:+.2f}% from entry {self.entry_price:,.2f}, "
            f"P&L {self.realized_pnl:+,.2f} USD after fees"
        )
        closed = f"Closed {self.qty:.6g} {self.symbol}"
        if self.exit_note:
            return f"{closed}: {self.exit_note}; {result}: the entry {verdict}."
        how = f"by {self.exit_reason} at {self.exit_price:,.2f}"
        return f"{closed} {how} ({result}): the entry {verdict}."


@dataclass(frozen=True)
class ReflectionResult:
    """A review of a closed trade plus its audit trail (`ai_reflections`)."""

    summary: str
    what_worked: str
    what_failed: str
    suggestions: list[str]
    analyst: str
    model: str | None = None
    call: CallRecord = field(default_factory=CallRecord)
