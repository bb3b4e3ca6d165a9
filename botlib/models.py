"""Value types that cross module borders: decisions, orders, fills, positions, cycle reports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from botlib.errors import DataError

__all__ = [
    "Action",
    "Decision",
    "AssetSettings",
    "TIMEFRAMES",
    "timeframe_minutes",
    "ORDER_TYPES",
    "OrderRequest",
    "Order",
    "Position",
    "Account",
    "CycleStatus",
    "CycleReport",
    "allowed_range",
    "field_bounds",
]

# Timeframe name -> minutes; Alpaca's names (`1Min`, `1Hour`), so they pass through unchanged.
TIMEFRAMES: dict[str, int] = {"1Min": 1, "5Min": 5, "15Min": 15, "30Min": 30, "1Hour": 60}


def timeframe_minutes(timeframe: str, error: type[Exception] = DataError) -> int:
    """Return the timeframe's bar width in minutes; raise `error` naming the ones there are.

    >>> timeframe_minutes("15Min")
    15
    """
    if timeframe not in TIMEFRAMES:
        raise error(f"timeframe {timeframe!r} unknown; use one of {', '.join(TIMEFRAMES)}")
    return TIMEFRAMES[timeframe]


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class Decision(BaseModel):
    """What an analyst wants to do; validated before anything else looks at it.

    `order_type` "limit" asks to enter at `limit_price` (an ICT entry resting at an order block
    or FVG) instead of at the market; whether that price is usable in the current market is
    `botlib.core.decision_checks`' question, not this model's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    position_size_pct: float = Field(ge=0.0, le=100.0)
    order_type: Literal["market", "limit"] = "market"
    limit_price: float | None = Field(default=None, gt=0)
    stop_loss: float | None = Field(default=None, gt=0)
    take_profit: float | None = Field(default=None, gt=0)
    reasoning: str = Field(max_length=8000)
    signals: dict[str, Any] = Field(default_factory=dict)

    @field_validator("confidence", "position_size_pct", "limit_price", "stop_loss", "take_profit")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _limit_price_matches_order_type(self) -> Decision:
        """Refuse an ambiguous entry: a stray limit_price on a market order is never ignored,
        since the analyst may have meant a limit entry and the order would then fill elsewhere."""
        if self.order_type == "limit" and self.limit_price is None:
            raise ValueError("order_type 'limit' needs a limit_price (a price > 0)")
        if self.order_type == "market" and self.limit_price is not None:
            raise ValueError(
                "a market order takes no limit_price: set order_type 'limit' or limit_price null"
            )
        return self

    @classmethod
    def hold(cls, symbol: str, reasoning: str) -> Decision:
        """Build the fail-safe decision used whenever an analyst cannot be trusted."""
        return cls(
            symbol=symbol,
            action=Action.HOLD,
            confidence=0.0,
            position_size_pct=0.0,
            reasoning=reasoning[:8000],
        )


class AssetSettings(BaseModel):
    """Per-asset trading settings (one `trading_assets` row).

    Numbers and the pause flag are strict and finite: lax parsing let `store.update_asset`
    take `paused="yes"` or a size of `"5"` (tests/test_inputs.py). Integers still pass as floats.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbol: str
    timeframe: str = "1Hour"
    interval_minutes: int = Field(default=60, ge=1, le=60, strict=True)
    paused: bool = Field(default=False, strict=True)
    position_size_pct: float = Field(default=10.0, gt=0.0, le=100.0, strict=True)
    stop_loss_pct: float = Field(default=2.0, gt=0.0, lt=100.0, strict=True)
    take_profit_pct: float = Field(default=4.0, gt=0.0, le=1000.0, strict=True)
    # The farthest a BUY's stop may sit below its entry: % of the entry, and (when set) ATR(14)
    # multiples; a decision beyond either is rejected (`botlib.core.decision_checks`).
    max_stop_pct: float = Field(default=10.0, gt=0.0, le=100.0, strict=True)
    max_stop_atr: float | None = Field(default=None, gt=0.0, le=100.0, strict=True)
    # None: the configured default; else "rules", "openai" or an arena analyst's name (a shadow
    # promoted to live: `botlib.ops.control.set_analyst`)
    analyst: str | None = Field(default=None, pattern=r"^[a-z0-9_-]{1,40}$")
    last_cycle_at: datetime | None = None

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        timeframe_minutes(value, ValueError)  # pydantic reports a ValueError by field
        return value

    @field_validator("last_cycle_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("last_cycle_at must be timezone-aware (UTC)")
        return value


OPEN_ORDER_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "accepted_for_bidding", "partially_filled"}
)


ORDER_TYPES = ("market", "limit", "stop_limit")  # what Alpaca takes for crypto


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order the engine wants; exactly one of `notional` (USD) or `qty` is set.

    `type` is market (filled now), limit (rests until the price reaches `limit_price`) or
    stop_limit (rests until the price falls to `stop_price` for a sell, then is a limit at
    `limit_price`): the venue-side stop that protects a position while the bot sleeps.
    """

    symbol: str
    side: str  # "buy" | "sell"
    client_order_id: str
    notional: float | None = None
    qty: float | None = None
    type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None

    def __post_init__(self) -> None:
        if (self.notional is None) == (self.qty is None):
            raise ValueError("set exactly one of notional or qty")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, not {self.side!r}")
        if self.type not in ORDER_TYPES:
            raise ValueError(f"type must be one of {', '.join(ORDER_TYPES)}, not {self.type!r}")
        if self.type != "market" and not (self.limit_price and self.limit_price > 0):
            raise ValueError(f"a {self.type} order needs a positive limit_price")
        if self.type == "stop_limit" and not (self.stop_price and self.stop_price > 0):
            raise ValueError("a stop_limit order needs a positive stop_price")

    @property
    def rests(self) -> bool:
        """Whether the venue may hold it open (anything but a market order)."""
        return self.type != "market"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue reports it (after translation at the adapter border)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    status: str  # new | partially_filled | filled | rejected | canceled
    created_at: datetime
    qty: float | None = None
    notional: float | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    fee: float = 0.0
    filled_at: datetime | None = None
    type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    fee_posted: bool = True  # False: the venue has not charged the fee yet (Alpaca's CFEE)

    @property
    def is_open(self) -> bool:
        """Whether the venue may still fill (more of) it."""
        return self.status in OPEN_ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: float
    avg_entry_price: float

    def market_value(self, price: float) -> float:
        return self.qty * price

    def unrealized_pnl(self, price: float) -> float:
        return self.qty * (price - self.avg_entry_price)


@dataclass(frozen=True, slots=True)
class Account:
    cash: float
    equity: float
    buying_power: float
    mode: str  # sim | paper | live


class CycleStatus(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did, in a form the CLI, notebooks and tests can all read."""

    cycle_id: str
    symbol: str
    status: CycleStatus
    reason: str = ""
    bar_time: datetime | None = None
    action: str | None = None
    exit_reason: str | None = None
    orders: tuple[str, ...] = ()
    equity: float | None = None
    decision_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """Render one line for the CLI and the logs."""
        parts = [f"{self.symbol} {self.status.value}"]
        if self.action:
            parts.append(f"action={self.action}")
        if self.exit_reason:
            parts.append(f"exit={self.exit_reason}")
        if self.orders:
            parts.append(f"orders={','.join(self.orders)}")
        if self.equity is not None:
            parts.append(f"equity={self.equity:,.2f}")
        if self.reason:
            parts.append(f"reason={self.reason}")
        parts.append(f"cycle={self.cycle_id}")
        return " ".join(parts)


def field_bounds(info: FieldInfo) -> dict[str, Any]:
    """Return a pydantic field's numeric bounds as `Field` keywords (gt, ge, lt, le)."""
    return {
        attr: getattr(bound, attr)
        for bound in info.metadata
        for attr in ("gt", "ge", "lt", "le")
        if isinstance(getattr(bound, attr, None), int | float)
    }


def allowed_range(info: FieldInfo) -> str:
    """Render a field's numeric bounds, e.g. "> 0 and <= 100", so a refusal says what passes.

    >>> allowed_range(AssetSettings.model_fields["position_size_pct"])
    '> 0 and <= 100'
    """
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return " and ".join(f"{signs[attr]} {value:g}" for attr, value in field_bounds(info).items())
