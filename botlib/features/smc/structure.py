"""Market structure (BOS / CHoCH), order blocks and premium/discount, from confirmed swings.

Rules (all causal: only swings confirmed at or before bar i are used at bar i):
- A close above the last confirmed swing high is a bullish break, below the last swing low a
  bearish one. In the trend's direction it is a BOS; against it a CHoCH, which flips the trend.
  The first break (no trend yet) is labelled BOS and sets the trend. Each swing level can be
  broken once; it is consumed until a newer swing is confirmed. A wick through it is no break.
- Order block: on a break, the last opposite-colour candle (bearish for a bullish break) from the
  broken swing's pivot up to the bar before the break; its high/low is the zone. It is mitigated
  by the first later bar that trades into it (bullish: low <= top). No candle, no block.
- Premium/discount: the dealing range is the last confirmed swing high and low; the close's
  position in it (0 at the low, 1 at the high, outside [0, 1] beyond them) and which side of the
  equilibrium (midpoint) it is on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from botlib.features.smc._input import check_ohlc
from botlib.features.smc._zones import TOUCH, zone_frame
from botlib.features.smc.pivots import swings

__all__ = ["market_structure", "order_blocks", "premium_discount"]


@njit(cache=True)
def _breaks(close, high_lvl, high_pos, low_lvl, low_pos):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = len(close)
    bos, choch = np.zeros(n, np.int64), np.zeros(n, np.int64)
    level, pos, trend_out = np.full(n, np.nan), np.full(n, -1, np.int64), np.zeros(n, np.int64)
    trend, used_high, used_low = 0, -1, -1
    for i in range(n):
        direction = 0
        if high_pos[i] >= 0 and high_pos[i] != used_high and close[i] > high_lvl[i]:
            direction, used_high = 1, high_pos[i]
            level[i], pos[i] = high_lvl[i], high_pos[i]
        elif low_pos[i] >= 0 and low_pos[i] != used_low and close[i] < low_lvl[i]:
            direction, used_low = -1, low_pos[i]
            level[i], pos[i] = low_lvl[i], low_pos[i]
        if direction != 0:
            if trend == -direction:
                choch[i] = direction
            else:
                bos[i] = direction
            trend = direction
        trend_out[i] = trend
    return bos, choch, level, pos, trend_out


def _swings(df: pd.DataFrame, length: int, swings_df: pd.DataFrame | None) -> pd.DataFrame:
    check_ohlc(df)
    return swings(df, length) if swings_df is None else swings_df


def market_structure(
    df: pd.DataFrame, length: int = 5, swings_df: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return `bos`, `choch` (+1 bullish, -1 bearish, 0), `broken_level`, `broken_swing_pos`
    and `trend` (after this bar: +1, -1, or 0 before the first break).

    >>> idx = pd.date_range("2026-01-01", periods=8, freq="h", tz="UTC")
    >>> h = pd.Series([1, 2, 5, 3, 2, 4, 6, 7.0], index=idx)
    >>> df = pd.DataFrame({"open": h, "high": h, "low": h - 1, "close": h - 0.5})
    >>> market_structure(df, length=2)[["bos", "broken_level", "trend"]].iloc[6].tolist()
    [1.0, 5.0, 1.0]
    """
    s = _swings(df, length, swings_df)
    bos, choch, level, pos, trend = _breaks(
        df["close"].to_numpy(dtype=float),
        s["last_high"].to_numpy(dtype=float),
        s["last_high_pos"].to_numpy(dtype=np.int64),
        s["last_low"].to_numpy(dtype=float),
        s["last_low_pos"].to_numpy(dtype=np.int64),
    )
    return pd.DataFrame(
        {
            "bos": bos,
            "choch": choch,
            "broken_level": level,
            "broken_swing_pos": pos,
            "trend": trend,
        },
        index=df.index,
    )


@njit(cache=True)
def _blocks(open_, close, high, low, direction, swing_pos):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = len(close)
    ob, ob_pos = np.zeros(n, np.int64), np.full(n, -1, np.int64)
    top, bottom = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        d = direction[i]
        if d == 0:
            continue
        for j in range(i - 1, max(swing_pos[i], 0) - 1, -1):
            opposite = close[j] < open_[j] if d == 1 else close[j] > open_[j]
            if opposite:
                ob[i], ob_pos[i], top[i], bottom[i] = d, j, high[j], low[j]
                break
    return ob, ob_pos, top, bottom


def order_blocks(
    df: pd.DataFrame, length: int = 5, swings_df: pd.DataFrame | None = None, capacity: int = 50,
    structure_df: pd.DataFrame | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Return `ob` (+1/-1 on the breaking bar), `ob_top`, `ob_bottom`, `ob_pos`, `ob_mitigated`
    and the nearest active blocks: `bull_ob_top/bottom` (below), `bear_ob_top/bottom` (above).
    `structure_df`: `market_structure(df, length)` when the caller has it already.

    >>> idx = pd.date_range("2026-01-01", periods=8, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"open": [1, 2, 5, 3.5, 2.5, 3, 5, 7.0],
    ...     "high": [1, 2, 5, 3.6, 2.6, 4, 6, 7.0], "low": [0, 1, 4, 2.9, 1.9, 3, 5, 6.0],
    ...     "close": [1, 2, 4.5, 3, 2, 3.9, 5.8, 6.9]}, index=idx)
    >>> f = order_blocks(df, length=2)
    >>> f[["ob", "ob_pos", "ob_top", "ob_bottom"]].iloc[6].tolist()
    [1.0, 4.0, 2.6, 1.9]
    """
    s = _swings(df, length, swings_df)
    ms = market_structure(df, length, swings_df=s) if structure_df is None else structure_df
    direction = (ms["bos"] + ms["choch"]).to_numpy(dtype=np.int64)
    o, h, lo, c = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    ob, ob_pos, top, bottom = _blocks(o, c, h, lo, direction, ms["broken_swing_pos"].to_numpy())
    frame = zone_frame("ob", ob, top, bottom, h, lo, TOUCH, capacity, df.index)
    frame.insert(3, "ob_pos", ob_pos)
    return frame


def premium_discount(
    df: pd.DataFrame, length: int = 5, swings_df: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return `range_high`, `range_low`, `equilibrium`, `pd_position` and `zone`
    ("premium" above the equilibrium, "discount" below, "equilibrium" on it, "" without a range).

    >>> idx = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.0, "close": [1, 0.5, 1.8]}, idx)
    >>> s = pd.DataFrame({"last_high": [np.nan, 2, 2], "last_low": [np.nan, 0, 0]}, idx)
    >>> premium_discount(df, swings_df=s)["zone"].tolist()
    ['', 'discount', 'premium']
    """
    s = _swings(df, length, swings_df)
    high, low = s["last_high"].to_numpy(dtype=float), s["last_low"].to_numpy(dtype=float)
    close = df["close"].to_numpy(dtype=float)
    valid = np.isfinite(high) & np.isfinite(low) & (high > low)
    eq = np.where(valid, (high + low) / 2, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.where(valid, (close - low) / (high - low), np.nan)
    zone = np.where(
        ~valid, "", np.where(close > eq, "premium", np.where(close < eq, "discount", "equilibrium"))
    )
    return pd.DataFrame(
        {
            "range_high": np.where(valid, high, np.nan),
            "range_low": np.where(valid, low, np.nan),
            "equilibrium": eq,
            "pd_position": position,
            "zone": zone.astype(object),
        },
        index=df.index,
    )
