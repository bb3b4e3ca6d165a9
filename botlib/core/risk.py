"""The risk gate: turns a decision into an order, or into a recorded reason for none.

Model output can never change these limits: they come from settings, the operator's overrides
and the asset's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from botlib.models import Account, Action, AssetSettings, Decision, OrderRequest, Position

if TYPE_CHECKING:
    from botlib.storage.store import Store

__all__ = [
    "CASH_BUFFER",
    "EntrySize",
    "MIN_ORDER_USD",
    "halts",
    "RiskLimits",
    "RiskVerdict",
    "TradingState",
    "TradingStatus",
    "ACTIVE",
    "check",
    "size_entry",
    "trading_state",
    "trading_status",
]

MIN_ORDER_USD = 1.0  # Alpaca's crypto minimum order value


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # entries and exits
    HALTED = "HALTED"  # drawdown or daily loss limit crossed: exits only


class RiskLimits(BaseModel):
    """The account's risk limits: percentages of equity, the LLM budget in USD per UTC day.

    The one type and the one set of defaults: settings (`BOTLIB_MAX_*`) and the operator's
    overrides (`botlib.ops.limits`) fill it in. Strict and finite: lax parsing let
    `max_position_pct="5"` and `True` (as 1 %) through (tests/test_inputs.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    max_position_pct: float = Field(default=25.0, gt=0, le=100)  # one entry, whatever is asked
    max_daily_loss_pct: float = Field(default=5.0, gt=0, le=100)  # below the day's start: HALTED
    max_drawdown_pct: float = Field(default=20.0, gt=0, le=100)  # below the equity peak: HALTED
    llm_budget_usd: float = Field(default=5.0, ge=0, le=10_000)  # the analyst's daily spend guard


CASH_BUFFER = 0.99  # leave room for slippage so a full-cash buy is not rejected


@dataclass(frozen=True, slots=True)
class TradingStatus:
    """The account's state, and when HALTED which limit did it (named like its alert kind)."""

    state: TradingState = TradingState.ACTIVE
    halt: str | None = None  # drawdown | daily_loss
    limit: str = ""  # "daily loss limit 5.0%": what a denial names
    detail: str = ""  # the numbers behind it, for the alert

    @property
    def halted(self) -> bool:
        return self.state is TradingState.HALTED


ACTIVE = TradingStatus()


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    approved: bool
    reason: str
    order: OrderRequest | None = None
    stop_loss: float | None = None
    take_profit: float | None = None


def _pct(value: float) -> str:
    return f"{value:.1f}%" if round(value, 1) == value else f"{value:g}%"


def trading_state(
    equity: float, peak: float, limits: RiskLimits, day_start: float | None = None
) -> TradingStatus:
    """HALTED once equity is more than the drawdown limit below its peak, or at least the daily
    loss limit below `day_start` (the equity the UTC day began with); ACTIVE otherwise.

    >>> trading_state(94.0, 100.0, RiskLimits(), day_start=100.0).limit
    'daily loss limit 5.0%'
    """
    found = halts(equity, peak, limits, day_start)
    return found[0] if found else ACTIVE


def halts(
    equity: float, peak: float, limits: RiskLimits, day_start: float | None = None
) -> list[TradingStatus]:
    """Return every account limit `equity` crosses (drawdown first), each a HALTED status.

    The engine acts on the first; the dashboard's banner names them all.
    """
    found = (_drawdown(equity, peak, limits), _daily_loss(equity, day_start, limits))
    return [status for status in found if status is not None]


def is_halted(
    equity: float, peak: float, limits: RiskLimits, day_start: float | None = None
) -> bool:
    """`trading_state(...).halted` without building the status (the fast path asks per bar)."""
    return _drawdown_hit(equity, peak, limits) or _daily_loss_hit(equity, day_start, limits)


def _drawdown_hit(equity: float, peak: float, limits: RiskLimits) -> bool:
    return peak > 0 and (peak - equity) / peak * 100 > limits.max_drawdown_pct


def _daily_loss_hit(equity: float, start: float | None, limits: RiskLimits) -> bool:
    if start is None or start <= 0:
        return False
    return start - equity >= start * limits.max_daily_loss_pct / 100


def _drawdown(equity: float, peak: float, limits: RiskLimits) -> TradingStatus | None:
    if not _drawdown_hit(equity, peak, limits):
        return None
    drop = (peak - equity) / peak * 100
    detail = f"equity {equity:,.2f} is {drop:.2f}% below its peak {peak:,.2f}"
    limit = f"drawdown limit {_pct(limits.max_drawdown_pct)}"
    return TradingStatus(TradingState.HALTED, "drawdown", limit, detail)


def _daily_loss(equity: float, start: float | None, limits: RiskLimits) -> TradingStatus | None:
    if start is None or not _daily_loss_hit(equity, start, limits):
        return None
    drop = (start - equity) / start * 100
    detail = f"equity {equity:,.2f} is {drop:.2f}% below the day's start {start:,.2f}"
    limit = f"daily loss limit {_pct(limits.max_daily_loss_pct)}"
    return TradingStatus(TradingState.HALTED, "daily_loss", limit, detail)


def trading_status(store: Store, equity: float, now: datetime, limits: RiskLimits) -> TradingStatus:
    """Judge `equity` against the recorded peak and the day's start (see `trading_state`)."""
    peak = store.peak_equity()
    return trading_state(equity, peak or equity, limits, store.day_start_equity(now))


def check(
    decision: Decision,
    *,
    asset: AssetSettings,
    account: Account,
    position: Position | None,
    price: float,
    client_order_id: str,
    status: TradingStatus = ACTIVE,
    limits: RiskLimits | None = None,
) -> RiskVerdict:
    """Approve, size and bound an order for `decision`, or say why not.

    Exits are always allowed: a halted account must still be able to get out.
    """
    limits = limits or RiskLimits()
    if decision.action is Action.HOLD:
        return RiskVerdict(False, "hold: no order")
    if decision.action is Action.SELL:
        if position is None or position.qty <= 0:
            return RiskVerdict(False, "denied: no position to sell (no shorting for crypto)")
        order = OrderRequest(decision.symbol, "sell", client_order_id, qty=position.qty)
        return RiskVerdict(True, "approved: close position", order)
    if status.halted:
        return RiskVerdict(False, f"denied: trading halted ({status.limit}), exits only")
    return _check_buy(decision, asset, account, position, price, client_order_id, limits)


def _check_buy(
    decision: Decision,
    asset: AssetSettings,
    account: Account,
    position: Position | None,
    price: float,
    client_order_id: str,
    limits: RiskLimits,
) -> RiskVerdict:
    if position is not None and position.qty > 0:
        return RiskVerdict(False, "denied: already holding a position (one entry per asset)")
    limit_price = decision.limit_price
    if limit_price is not None and limit_price > price:
        return RiskVerdict(False, f"denied: buy limit {limit_price:g} above the price {price:g}")
    entry = size_entry(
        decision.position_size_pct, decision.stop_loss, decision.take_profit,
        asset=asset, limits=limits, equity=account.equity, cash=account.cash,
        price=price if limit_price is None else limit_price,
    )  # fmt: skip
    if entry.denied:
        return RiskVerdict(False, entry.denied)
    order, reason = _buy_order(decision, client_order_id, entry)
    return RiskVerdict(True, reason, order, stop_loss=entry.stop, take_profit=entry.take)


def _buy_order(
    decision: Decision, client_order_id: str, entry: EntrySize
) -> tuple[OrderRequest, str]:
    """The approved buy: a market order, or a limit resting at the decision's limit price."""
    if decision.limit_price is None:
        order = OrderRequest(decision.symbol, "buy", client_order_id, notional=entry.notional)
        return order, f"approved: buy {entry.notional:,.2f} USD ({entry.pct:.2f}% of equity)"
    order = OrderRequest(decision.symbol, "buy", client_order_id, notional=entry.notional,
                         type="limit", limit_price=decision.limit_price)  # fmt: skip
    reason = (
        f"approved: limit buy {entry.notional:,.2f} USD at {decision.limit_price:g}"
        f" ({entry.pct:.2f}% of equity)"
    )
    return order, reason


@dataclass(frozen=True, slots=True)
class EntrySize:
    """A buy as the gate sizes it: the order's USD value, its stop and take-profit, or why not."""

    pct: float  # of equity, after the asset's and the account's caps
    notional: float  # USD, rounded to the cent as the order carries it
    stop: float
    take: float
    denied: str | None = None


def size_entry(
    size_pct: float,
    stop_loss: float | None,
    take_profit: float | None,
    *,
    asset: AssetSettings,
    limits: RiskLimits,
    equity: float,
    cash: float,
    price: float,
) -> EntrySize:
    """Size a buy (the engine's gate and the fast backtest call this one function).

    The asked size is capped by the asset and the account limits and by the cash on hand;
    a missing stop or take-profit comes from the asset's percentages. `price` is the entry:
    the market price, or a limit entry's limit price (the stop and target hang off the fill).
    """
    pct = min(size_pct, asset.position_size_pct, limits.max_position_pct)
    notional = min(equity * pct / 100, cash * CASH_BUFFER)
    stop = stop_loss or price * (1 - asset.stop_loss_pct / 100)
    take = take_profit or price * (1 + asset.take_profit_pct / 100)
    denied = None
    if notional < MIN_ORDER_USD:
        denied = f"denied: order value {notional:.2f} USD below the 1 USD minimum"
    elif not stop < price:
        denied = f"denied: stop-loss {stop:g} must be below entry {price:g}"
    elif not take > price:
        denied = f"denied: take-profit {take:g} must be above entry {price:g}"
    return EntrySize(pct, round(notional, 2), stop, take, denied)
