"""Checks a parsed decision must pass before the risk gate sees it, for every analyst.

A decision that fails is replaced by HOLD and the log row keeps the reason: model output can
be well-formed JSON and still nonsense (a stop above the price, another symbol, a zero-size buy,
a limit entry resting where no bullish zone is).
"""

from __future__ import annotations

import math
from typing import Any

from botlib.models import Action, AssetSettings, Decision
from botlib.ports import MarketContext

__all__ = [
    "decision_problem", "limit_entry_problem", "bullish_zones", "stop_distance_problem",
    "ZONE_TOLERANCE",
]  # fmt: skip

# The SMC summary's bullish zones a limit BUY may rest in (botlib.features.smc.summary).
_BULLISH_ZONES = {"fvg_below": "bullish FVG", "ob_below": "bullish order block"}
# The prompt shows prices to 6 significant digits: a zone's edge as shown (93531.2 for
# 93531.23) is off by at most 5e-6 of it, and must still count as inside the zone.
ZONE_TOLERANCE = 1e-5


def decision_problem(decision: Decision, context: MarketContext) -> str | None:
    """Return why `decision` cannot be acted on in `context`, or None when it can.

    Ranges (confidence 0-1, size 0-100 %, finite positive prices) are already enforced by
    `Decision`; sizes above the asset's maximum are capped by the risk gate, not rejected.
    Stops are judged against the entry: the limit price of a limit BUY, else the price.
    """
    if decision.symbol != context.symbol:
        return f"decision for {decision.symbol!r}, expected {context.symbol!r}"
    if decision.action is not Action.BUY:
        if decision.order_type == "limit":
            return f"{decision.action.value} with order_type limit: only a BUY may rest as a limit"
        return None
    if decision.position_size_pct <= 0:
        return "BUY with position_size_pct 0"
    if decision.limit_price is not None:
        problem = limit_entry_problem(decision.limit_price, context.price, context.smc)
        if problem is not None:
            return problem
    problem = _levels_problem(decision, context.price)
    if problem is not None or decision.stop_loss is None:
        return problem
    atr = float(context.bars["atr"].iloc[-1]) if "atr" in context.bars else math.nan
    entry = decision.limit_price or context.price
    return stop_distance_problem(entry, decision.stop_loss, context.asset, atr)


def stop_distance_problem(
    entry: float, stop: float | None, asset: AssetSettings, atr: float
) -> str | None:
    """Return why a BUY's stop sits too far below its entry for the asset, if it does: more
    than `max_stop_pct` % of the entry, or (when set) more than `max_stop_atr` ATRs.

    >>> stop_distance_problem(100.0, 85.0, AssetSettings(symbol="BTC/USD"), 2.0)[:40]
    'stop_loss 85 is 15.00% below the entry 10'
    """
    if stop is None:
        return None
    pct = (entry - stop) / entry * 100
    if pct > asset.max_stop_pct:
        return (
            f"stop_loss {stop:g} is {pct:.2f}% below the entry {entry:g}: beyond the asset's"
            f" max_stop_pct {asset.max_stop_pct:g}%"
        )
    atrs = (entry - stop) / atr if math.isfinite(atr) and atr > 0 else 0.0
    if asset.max_stop_atr is not None and atrs > asset.max_stop_atr:
        return (
            f"stop_loss {stop:g} is {atrs:.2f} ATR below the entry {entry:g}: beyond the"
            f" asset's max_stop_atr {asset.max_stop_atr:g}"
        )
    return None


def _levels_problem(decision: Decision, price: float) -> str | None:
    """Return why the stop or the take-profit sits on the wrong side of the entry, if it does."""
    entry = decision.limit_price or price
    name = "limit_price" if decision.limit_price is not None else "the price"
    if decision.stop_loss is not None and not decision.stop_loss < entry:
        return f"stop_loss {decision.stop_loss:g} is not below {name} {entry:g}"
    if decision.take_profit is not None and not decision.take_profit > entry:
        return f"take_profit {decision.take_profit:g} is not above {name} {entry:g}"
    return None


def bullish_zones(smc: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Return the SMC summary's bullish zones by name, as (bottom, top) price ranges.

    >>> bullish_zones({"fvg_below": {"bottom": 98.0, "top": 99.0}, "ob_below": None})
    {'bullish FVG': (98.0, 99.0)}
    """
    zones = {}
    for key, name in _BULLISH_ZONES.items():
        zone = smc.get(key) or {}
        if zone.get("bottom") is not None and zone.get("top") is not None:
            zones[name] = (float(zone["bottom"]), float(zone["top"]))
    return zones


def limit_entry_problem(limit_price: float, price: float, smc: dict[str, Any]) -> str | None:
    """Return why a BUY limit at `limit_price` is unusable, naming the prices that would pass.

    A buy limit above the price fills at once (a market order in disguise), and one outside a
    bullish order block or FVG is not the ICT entry the limit exists for. A zone's edges are
    widened by `ZONE_TOLERANCE`, so a price copied from the prompt's rounded figures passes.

    >>> limit_entry_problem(99.0, 100.0, {"fvg_below": {"bottom": 98.0, "top": 99.0}}) is None
    True
    """
    if limit_price > price:
        return (
            f"limit_price {limit_price:.8g} is above the price {price:.8g}:"
            " a BUY limit must be at or below it"
        )
    zones = bullish_zones(smc)
    if not zones:
        return (
            f"no bullish FVG or order block in the SMC summary for limit_price {limit_price:.8g}"
            " to rest in: buy at the market (order_type market) or HOLD"
        )
    low, high = 1 - ZONE_TOLERANCE, 1 + ZONE_TOLERANCE
    if any(bottom * low <= limit_price <= top * high for bottom, top in zones.values()):
        return None
    ranges = " or ".join(f"{name} {bottom:.8g}-{top:.8g}" for name, (bottom, top) in zones.items())
    return f"limit_price {limit_price:.8g} is outside the bullish zones: use a price in {ranges}"
