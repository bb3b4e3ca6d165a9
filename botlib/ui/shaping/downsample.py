"""Draw at most a few hundred marks however long the history is (the browser stays responsive).

bqplot re-sends whole arrays on every update, so what is drawn must stay small: candles are
merged into wider candles, lines keep each bucket's first, lowest, highest and last point (the
extremes a trader looks for survive; a plain stride would drop them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ohlc_buckets", "minmax_line"]


def ohlc_buckets(bars: pd.DataFrame, max_bars: int) -> pd.DataFrame:
    """Merge consecutive bars into at most `max_bars` candles (open first, high max, low min,
    close last, volume sum); each merged candle keeps its first bar's time.

    >>> idx = pd.date_range("2026-11-20", periods=6, freq="15min", tz="UTC")
    >>> bars = pd.DataFrame({"open": [1, 2, 3, 4, 5, 6], "high": [2, 9, 4, 5, 6, 7],
    ...     "low": [0, 1, 2, 3, 4, -1], "close": [2, 3, 4, 5, 6, 5], "volume": 1.0}, index=idx)
    >>> ohlc_buckets(bars, 2)[["open", "high", "low", "close", "volume"]].to_numpy().tolist()
    [[1.0, 9.0, 0.0, 4.0, 3.0], [4.0, 7.0, -1.0, 5.0, 3.0]]
    """
    if max_bars < 1:
        raise ValueError("max_bars must be at least 1")
    if len(bars) <= max_bars:
        return bars
    size = -(-len(bars) // max_bars)  # ceil: bars per candle
    groups = np.arange(len(bars)) // size
    grouped = bars.groupby(groups)
    merged = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            **({"volume": grouped["volume"].sum()} if "volume" in bars else {}),
        }
    ).astype(float)
    merged.index = bars.index[::size]
    return merged


def minmax_line(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a line to at most ~`max_points` points, keeping each bucket's first, min, max and
    last point in time order (NaNs are kept out of the extremes).

    >>> x = np.arange(10); y = np.array([0, 5, 1, 1, 1, -4, 1, 1, 2, 3], dtype=float)
    >>> minmax_line(x, y, 8)[1].tolist()
    [0.0, 5.0, 1.0, -4.0, 3.0]
    """
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max_points // 4
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        if stop <= start:
            continue
        chunk = y[start:stop]
        finite = np.isfinite(chunk)
        picks = {start, stop - 1}
        if finite.any():
            masked = np.where(finite, chunk, np.nan)
            picks |= {start + int(np.nanargmin(masked)), start + int(np.nanargmax(masked))}
        keep.extend(sorted(picks))
    index = np.array(keep, dtype=int)
    return x[index], y[index]
