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
from numba import njit

from botlib.features.smc._input import check_ohlc

__all__ = ["swings"]


@njit(cache=True)
def _side(values, length):  # type: ignore[no-untyped-def]  # pragma: no cover
    """One pass for one side (highs, or negated lows): events on confirming bars, last pivots."""
    n = len(values)
    flag = np.zeros(n, np.bool_)
    pos = np.full(n, -1, np.int64)
    last_pos = np.full(n, -1, np.int64)
    latest = -1
    for i in range(n):
        p = i - length
        if p >= length:
            centre, ok = values[p], True
            for k in range(p - length, p):
                if values[k] >= centre:  # strictly above every bar before it
                    ok = False
                    break
            if ok:
                for k in range(p + 1, i + 1):
                    if values[k] > centre:  # at least as high as every bar after it
                        ok = False
                        break
            if ok:
                flag[i], pos[i], latest = True, p, p
        last_pos[i] = latest
    return flag, pos, last_pos


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
        flag, pos, last_pos = _side(price * sign, length)
        out[f"swing_{name}"] = flag
        out[f"swing_{name}_pos"] = pos
        out[f"swing_{name}_price"] = np.where(flag, price[np.maximum(pos, 0)], np.nan)
        out[f"last_{name}_pos"] = last_pos
        out[f"last_{name}"] = np.where(last_pos >= 0, price[np.maximum(last_pos, 0)], np.nan)
    return pd.DataFrame(out, index=df.index)
