"""ICT/SMC setups the rules analyst reads from `botlib.features.smc.summary` (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botlib.core.decision_checks import bullish_zones

__all__ = ["SmcSetup", "LimitZone", "long_setup", "exit_setup", "limit_zone"]


@dataclass(frozen=True)
class SmcSetup:
    """A setup found (or not), the features it used in words, and where its stop belongs."""

    found: bool
    reasons: list[str] = field(default_factory=list)
    stop_level: float | None = None


def _fmt(zone: dict[str, float]) -> str:
    return f"{zone['bottom']:,.6g}-{zone['top']:,.6g}"


def long_setup(smc: dict[str, Any]) -> SmcSetup:
    """Bullish structure, price in discount, and a bullish FVG/OB below or a sell-side sweep.

    >>> long_setup({"trend": "bullish", "premium_discount": {"zone": "discount", "position": 0.3},
    ...             "fvg_below": {"top": 99.0, "bottom": 98.0}, "sweep": None,
    ...             "ob_below": None, "last_break": None}).stop_level
    98.0
    """
    if not smc:
        return SmcSetup(False)
    brk = smc.get("last_break") or {}
    bullish = smc.get("trend") == "bullish" or (
        brk.get("type") == "CHoCH" and brk.get("direction") == "bullish"
    )
    pd_state = smc.get("premium_discount") or {}
    if not bullish or pd_state.get("zone") != "discount":
        return SmcSetup(False)
    reasons = [f"SMC: bullish structure, close in discount ({pd_state.get('position')} of range)"]
    stops = []
    for key, name in (
        ("fvg_below", "unmitigated bullish FVG"),
        ("ob_below", "bullish order block"),
    ):
        zone = smc.get(key)
        if zone:
            reasons.append(f"{name} below at {_fmt(zone)}")
            stops.append(zone["bottom"])
    sweep = smc.get("sweep") or {}
    if sweep.get("side") == "sell-side" and sweep.get("level") is not None:
        reasons.append(
            f"sell-side liquidity swept at {sweep['level']:,.6g} {sweep['bars_ago']} bar(s) ago"
        )
        stops.append(sweep["level"])
    if len(reasons) == 1:
        return SmcSetup(False)
    return SmcSetup(True, reasons, min(stops))


def exit_setup(smc: dict[str, Any], fresh_bars: int = 3) -> SmcSetup:
    """A fresh bearish CHoCH (under `fresh_bars` old), or buy-side liquidity swept in premium."""
    brk = smc.get("last_break") or {} if smc else {}
    fresh = brk.get("type") == "CHoCH" and brk.get("direction") == "bearish"
    if fresh and brk["bars_ago"] < fresh_bars:
        return SmcSetup(True, [f"SMC: bearish CHoCH through {brk['level']:,.6g}"])
    sweep = (smc or {}).get("sweep") or {}
    zone = ((smc or {}).get("premium_discount") or {}).get("zone")
    if sweep.get("side") == "buy-side" and zone == "premium":
        return SmcSetup(
            True, [f"SMC: buy-side liquidity swept at {sweep['level']:,.6g} in premium"]
        )
    return SmcSetup(False)


@dataclass(frozen=True, slots=True)
class LimitZone:
    """The bullish zone a limit buy rests in, named as the SMC summary names it."""

    name: str  # "bullish FVG" | "bullish order block"
    bottom: float
    top: float


def limit_zone(smc: dict[str, Any], price: float) -> LimitZone | None:
    """The bullish FVG or order block wholly under `price` nearest to it, or None.

    Its top is where a limit buy fills first. A price already inside a zone gets None: buying
    at the market there is the zone entry, and a limit would only wait for a worse fill.

    >>> limit_zone({"fvg_below": {"bottom": 97.0, "top": 98.0},
    ...             "ob_below": {"bottom": 95.0, "top": 99.0}}, 100.0).name
    'bullish order block'
    """
    below = [
        LimitZone(name, bottom, top)
        for name, (bottom, top) in bullish_zones(smc or {}).items()
        if top < price
    ]
    return max(below, key=lambda zone: zone.top, default=None)
