"""The fast path's model of the stop that rests at the simulated venue (`SimBroker`).

On the engine path a backtest's position is protected as a live one is: a stop_limit sell
rests from the entry on and `SimBroker` matches it against the market's fill bars (1-minute
bars of the simulated market, or the stored bars' own timeframe) with `venues.resting.
match_bar`. Here the same bars are read once into arrays and the same rule walks them, so
both paths fill the stop at the same price, in the same minute, to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from botlib.models import timeframe_minutes
from botlib.ports import MarketData
from botlib.venues.resting import match_bar

__all__ = ["FillBars", "fill_timeframe"]


def fill_timeframe(market: MarketData) -> str:
    """The bars a backtest's resting orders fill from: minutes, or stored bars' own width."""
    return str(getattr(market, "timeframe", None) or "1Min")


@dataclass(frozen=True)
class FillBars:
    """The fill bars of a run as lists (open times in ns, open, high, low)."""

    starts: np.ndarray
    open: list[float]
    high: list[float]
    low: list[float]
    width: timedelta

    @classmethod
    def load(
        cls, market: MarketData, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> FillBars:
        """Read every fill bar from `start` to `end` in one call."""
        width = timedelta(minutes=timeframe_minutes(timeframe))
        bars = market.bars(symbol, timeframe, end, int((end - start) / width) + 1)
        bars = bars[bars.index >= start]
        arrays = [bars[c].to_numpy(float).tolist() for c in ("open", "high", "low")]
        return cls(bars.index.asi8, arrays[0], arrays[1], arrays[2], width)

    def first_fill(
        self, stop: float, limit: float, triggered: bool, since: datetime, until: datetime
    ) -> tuple[float | None, bool, datetime | None]:
        """Walk the bars that opened at or after `since` and closed by `until`.

        Return (fill price or None, triggered, fill time): `SimBroker._match`, on arrays.
        """
        first = int(np.searchsorted(self.starts, _ns(since), "left"))
        last = int(np.searchsorted(self.starts, _ns(until - self.width), "right"))
        for j in range(first, last):
            m = match_bar("stop_limit", "sell", limit=limit, stop=stop, triggered=triggered,
                          open_=self.open[j], high=self.high[j], low=self.low[j])  # fmt: skip
            triggered = m.triggered
            if m.price is not None:
                opened = datetime.fromtimestamp(self.starts[j] / 1e9, UTC)
                return m.price, True, opened + self.width
        return None, triggered, None


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
