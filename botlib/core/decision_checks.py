"""Checks a parsed decision must pass before the risk gate sees it, for every analyst.

A decision that fails is replaced by HOLD and the log row keeps the reason: model output can
be well-formed JSON and still nonsense (a stop above the price, another symbol, a zero-size buy).
"""

from __future__ import annotations

from botlib.models import Action, Decision
from botlib.ports import MarketContext

__all__ = ["decision_problem"]


def decision_problem(decision: Decision, context: MarketContext) -> str | None:
    """Return why `decision` cannot be acted on in `context`, or None when it can.

    Ranges (confidence 0-1, size 0-100 %, finite positive prices) are already enforced by
    `Decision`; sizes above the asset's maximum are capped by the risk gate, not rejected.
    """
    if decision.symbol != context.symbol:
        return f"decision for {decision.symbol!r}, expected {context.symbol!r}"
    if decision.action is not Action.BUY:
        return None
    price = context.price
    if decision.position_size_pct <= 0:
        return "BUY with position_size_pct 0"
    if decision.stop_loss is not None and not decision.stop_loss < price:
        return f"stop_loss {decision.stop_loss:g} is not below the price {price:g}"
    if decision.take_profit is not None and not decision.take_profit > price:
        return f"take_profit {decision.take_profit:g} is not above the price {price:g}"
    return None
