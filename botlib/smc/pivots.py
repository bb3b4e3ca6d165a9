"""Swing highs and lows, emitted on the bar that confirms them (never on the pivot itself).

A pivot high at bar p has `length` bars on each side: its high is strictly above the `length`
highs before it and at least as high as the `length` highs after it. Ties: of two equal highs
inside one window the first is the pivot (the second is not strictly above it). Lows mirror this.
The pivot is only known `length` bars later, so the event is on row p + length, with the pivot's
position and price in columns; row i therefore depends on bars <= i only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from botlib.smc._input import check_ohlc

__all__ = ["swings"]


def _pivots(values: np.ndarray, length: int, sign: float) -> np.ndarray:
    """Boolean mask of pivot bars (sign +1: highs, -1: lows), False where a side is short."""
    v = values * sign
    n = len(v)
    out = np.zeros(n, dtype=bool)
    if n < 2 * length + 1:
        return out
    rolled = pd.Series(v).rolling(length).max().to_numpy()  # rolled[k] = max v[k-length+1 : k+1]
    left = rolled[length - 1 : n - length - 1]  # max v[p - length : p]
    right = rolled[2 * length :]  # max v[p + 1 : p + length + 1]
    centre = v[length : n - length]
    out[length : n - length] = (centre > left) & (centre >= right)
    return out


def _events(pivot: np.ndarray, price: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
    n = len(pivot)
    flag = np.zeros(n, dtype=bool)
    if n > length:
        flag[length:] = pivot[: n - length]
    pos = np.where(flag, np.arange(n) - length, -1)
    level = np.where(flag, np.roll(price, length), np.nan)
    last_pos = np.maximum.accumulate(pos) if n else pos
    last_level = np.where(last_pos >= 0, price[np.maximum(last_pos, 0)], np.nan)
    return flag, pos, level, last_pos, last_level


def swings(df: pd.DataFrame, length: int = 5) -> pd.DataFrame:
    """Return confirmed swing events and the last confirmed swing high/low on every bar.

    Columns: `swing_high` (bool), `swing_high_pos`, `swing_high_price` (pivot position in the
    frame and its high, -1/NaN when no event), `last_high_pos`, `last_high` (the latest
    confirmed swing high so far), and the same for lows.

    >>> idx = pd.date_range("2026-01-01", periods=7, freq="h", tz="UTC")
    >>> h = pd.Series([1, 2, 5, 3, 2, 2, 1.0], index=idx)
    >>> df = pd.DataFrame({"open": h, "high": h, "low": h - 1, "close": h})
    >>> s = swings(df, length=2)
    >>> s.loc[s.swing_high, ["swing_high_pos", "swing_high_price"]].values.tolist()
    [[2.0, 5.0]]
    >>> int(s.swing_high.values.argmax())  # confirmed two bars after the pivot
    4
    """
    if length < 1:
        raise ValueError("swing length must be >= 1")
    check_ohlc(df)
    high = df["high"].to_numpy(dtype=float)
    low = df["low"].to_numpy(dtype=float)
    out = {}
    for name, price, sign in (("high", high, 1.0), ("low", low, -1.0)):
        flag, pos, level, last_pos, last_level = _events(
            _pivots(price, length, sign), price, length
        )
        out[f"swing_{name}"] = flag
        out[f"swing_{name}_pos"] = pos
        out[f"swing_{name}_price"] = level
        out[f"last_{name}_pos"] = last_pos
        out[f"last_{name}"] = last_level
    return pd.DataFrame(out, index=df.index)
