"""The risk gate: turns a decision into an order, or into a recorded reason for none.

Model output can never change these limits: they come from settings and the asset's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from botlib.models import Account, Action, AssetSettings, Decision, OrderRequest, Position

__all__ = ["RiskLimits", "RiskVerdict", "TradingState", "check", "trading_state"]

MIN_ORDER_USD = 1.0  # Alpaca's crypto minimum order value


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # entries and exits
    HALTED = "HALTED"  # drawdown limit crossed: exits only


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_drawdown_pct: float = 20.0
    cash_buffer: float = 0.99  # leave room for slippage so a full-cash buy is not rejected


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    approved: bool
    reason: str
    order: OrderRequest | None = None
    stop_loss: float | None = None
    take_profit: float | None = None


def trading_state(equity: float, peak: float, limits: RiskLimits) -> TradingState:
    """HALTED once equity has fallen more than the limit below its peak."""
    if peak > 0 and (peak - equity) / peak * 100 > limits.max_drawdown_pct:
        return TradingState.HALTED
    return TradingState.ACTIVE


def check(
    decision: Decision,
    *,
    asset: AssetSettings,
    account: Account,
    position: Position | None,
    price: float,
    client_order_id: str,
    state: TradingState = TradingState.ACTIVE,
    limits: RiskLimits | None = None,
) -> RiskVerdict:
    """Approve, size and bound an order for `decision`, or say why not."""
    limits = limits or RiskLimits()
    if decision.action is Action.HOLD:
        return RiskVerdict(False, "hold: no order")
    if decision.action is Action.SELL:
        if position is None or position.qty <= 0:
            return RiskVerdict(False, "denied: no position to sell (no shorting for crypto)")
        order = OrderRequest(decision.symbol, "sell", client_order_id, qty=position.qty)
        return RiskVerdict(True, "approved: close position", order)
    return _check_buy(decision, asset, account, position, price, client_order_id, state, limits)


def _check_buy(
    decision: Decision,
    asset: AssetSettings,
    account: Account,
    position: Position | None,
    price: float,
    client_order_id: str,
    state: TradingState,
    limits: RiskLimits,
) -> RiskVerdict:
    if state is TradingState.HALTED:
        return RiskVerdict(False, "denied: trading halted (drawdown limit), exits only")
    if position is not None and position.qty > 0:
        return RiskVerdict(False, "denied: already holding a position (one entry per asset)")
    pct = min(decision.position_size_pct, asset.position_size_pct)
    notional = min(account.equity * pct / 100, account.cash * limits.cash_buffer)
    if notional < MIN_ORDER_USD:
        return RiskVerdict(False, f"denied: order value {notional:.2f} USD below the 1 USD minimum")
    stop = decision.stop_loss or price * (1 - asset.stop_loss_pct / 100)
    take = decision.take_profit or price * (1 + asset.take_profit_pct / 100)
    if not stop < price:
        return RiskVerdict(False, f"denied: stop-loss {stop:g} must be below entry {price:g}")
    if not take > price:
        return RiskVerdict(False, f"denied: take-profit {take:g} must be above entry {price:g}")
    order = OrderRequest(decision.symbol, "buy", client_order_id, notional=round(notional, 2))
    reason = f"approved: buy {notional:,.2f} USD ({pct:.2f}% of equity)"
    return RiskVerdict(True, reason, order, stop_loss=stop, take_profit=take)
