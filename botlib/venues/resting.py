"""How a resting order meets the market, one bar at a time: the simulator's matching rule.

One statement of it, so the simulated venue, its tests and the loopback fake Alpaca agree:

- a **stop_limit sell** triggers on the first bar whose low reaches its stop; from then on it
  is a limit sell: it fills in a bar whose high reaches the limit, at the better of the limit
  and the bar's open (or the stop, in the bar that triggered it, when the bar opened above the
  stop). A bar that gaps wholly below the limit leaves it open and triggered: a gapped stop,
  which the guard exits at market.
- a **limit buy** fills on the first bar whose low reaches the limit, at the lower of the
  limit and the bar's open; a **limit sell** on the first bar whose high reaches the limit,
  at the higher of the two.

It fills at a price the bar traded at or better than it and never better than the order
allows, and a resting order is filled in full (no partial fills in the simulator).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Match", "match_bar"]


@dataclass(frozen=True, slots=True)
class Match:
    """What one bar did to a resting order: triggered it, filled it (at `price`), or nothing."""

    triggered: bool
    price: float | None = None


def match_bar(
    kind: str,
    side: str,
    *,
    limit: float,
    stop: float | None,
    triggered: bool,
    open_: float,
    high: float,
    low: float,
) -> Match:
    """Match one resting order against one bar (see the module docstring for the rule).

    >>> match_bar("stop_limit", "sell", limit=99.5, stop=100.0, triggered=False,
    ...           open_=101.0, high=101.0, low=99.0)
    Match(triggered=True, price=100.0)
    >>> match_bar("stop_limit", "sell", limit=99.5, stop=100.0, triggered=False,
    ...           open_=98.0, high=99.0, low=97.0)
    Match(triggered=True, price=None)
    """
    if kind == "stop_limit":
        if not triggered and stop is not None and low <= stop:
            if high < limit:
                return Match(True)
            return Match(True, max(limit, min(stop, open_)))
        if not triggered:
            return Match(False)
        return Match(True, max(limit, open_) if high >= limit else None)
    if side == "buy":
        return Match(True, min(limit, open_) if low <= limit else None)
    return Match(True, max(limit, open_) if high >= limit else None)
