"""Which bars a cycle computes its features on: a window anchored on fixed blocks of bars.

Indicators with exponential smoothing (RSI, MACD, ATR) and every ICT/SMC detector (swings,
trend, order blocks, gaps, equal highs/lows) depend on where their input starts. A window that
slides by one bar per cycle therefore sees slightly different history each time, and no
computation over a long series can reproduce it without redoing the work bar by bar.

So the window starts on a block boundary instead: bars are grouped in blocks of `WINDOW_BLOCK`
bars counted from the Unix epoch, and a cycle whose last completed bar lies in block b computes
on blocks b-1 and b (between `WINDOW_BLOCK + 1` and `2 * WINDOW_BLOCK` bars). Every cycle of
one block starts its frame on the same bar, and the features are causal, so a backtest computes
each block's features once over its whole frame and gets, bar for bar and to the last bit,
what the live cycle saw: parity with live cycles at any length, at a fraction of the cost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botlib.clock import floor_time

__all__ = ["WINDOW_BLOCK", "window_start", "window_length"]

WINDOW_BLOCK = 3000  # at 1Min: 50-100 hours of context; at 1Hour: 125-250 days


def window_start(last_bar: datetime, minutes: int, block: int = WINDOW_BLOCK) -> datetime:
    """Return the open time of the first bar of the window whose last bar opened at `last_bar`.

    >>> from datetime import datetime, UTC
    >>> window_start(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), 1).isoformat()
    '2026-11-18T00:00:00+00:00'
    """
    span = block * minutes * 60
    first = (int(last_bar.timestamp()) // span - 1) * span
    return datetime.fromtimestamp(first, UTC)


def window_length(now: datetime, minutes: int, block: int = WINDOW_BLOCK) -> int:
    """Return how many bars the window of the cycle running at `now` holds (completed bars)."""
    width = timedelta(minutes=minutes)
    last = floor_time(now, minutes) - width  # the bar still forming is not a bar yet
    return (last - window_start(last, minutes, block)) // width + 1
