"""Liquidity: relative equal highs/lows and sweeps (grabs) of swing levels, causally.

- Equal highs: when a swing high is confirmed, it is "equal" to one of the previous `lookback`
  confirmed swing highs within a tolerance of `atr_mult` x ATR(`atr_length`) at the confirming bar
  (Wilder's ATR, recursive from the first bar, so it uses past bars only). Lows mirror this.
- Sweep: buy-side liquidity rests above the last confirmed swing high. A bar whose high trades
  above it but closes back below sweeps it (`sweep` = -1, a bearish signal); a close above it just
  takes it. Either way the level is used up until a newer swing high is confirmed. Sell-side
  mirrors this (`sweep` = +1). If both happen on one bar, the buy-side sweep is reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from botlib.features.smc._input import check_ohlc
from botlib.features.smc.pivots import swings

__all__ = ["liquidity", "causal_atr"]


def causal_atr(df: pd.DataFrame, length: int = 14) -> pd.Series:
    """Wilder's average true range, row i from bars <= i (no whole-sample statistics).

    >>> idx = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"open": 1.0, "high": [2, 3, 3], "low": [1, 1, 2], "close": 2.0}, idx)
    >>> causal_atr(df, length=2).tolist()
    [1.0, 1.5, 1.25]
    """
    high, low = df["high"].to_numpy(dtype=float), df["low"].to_numpy(dtype=float)
    prev = np.concatenate(([np.nan], df["close"].to_numpy(dtype=float)[:-1]))
    with np.errstate(invalid="ignore"):
        tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    return pd.Series(_wilder(tr, 1.0 / length), index=df.index)


@njit(cache=True)
def _wilder(values, alpha):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.empty(len(values))
    for i in range(len(values)):
        out[i] = values[i] if i == 0 else out[i - 1] + alpha * (values[i] - out[i - 1])
    return out


@njit(cache=True)
def _equal(flag, price, tol, lookback):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = len(flag)
    equal, level = np.zeros(n, np.bool_), np.full(n, np.nan)
    recent = np.full(lookback, np.nan)
    slot = 0
    for i in range(n):
        if not flag[i]:
            continue
        for k in range(lookback):
            if not np.isnan(recent[k]) and abs(price[i] - recent[k]) <= tol[i]:
                equal[i] = True  # the level is the more extreme of the pair (for lows: negated)
                pair = max(price[i], recent[k])
                level[i] = pair if np.isnan(level[i]) else max(level[i], pair)
        recent[slot] = price[i]
        slot = (slot + 1) % lookback
    return equal, level


@njit(cache=True)
def _sweeps(high, low, close, hi_lvl, hi_pos, lo_lvl, lo_pos):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = len(close)
    sweep, level = np.zeros(n, np.int64), np.full(n, np.nan)
    used_high, used_low = -1, -1
    for i in range(n):
        if hi_pos[i] >= 0 and hi_pos[i] != used_high and high[i] > hi_lvl[i]:
            used_high = hi_pos[i]
            if close[i] < hi_lvl[i]:
                sweep[i], level[i] = -1, hi_lvl[i]
        if lo_pos[i] >= 0 and lo_pos[i] != used_low and low[i] < lo_lvl[i]:
            used_low = lo_pos[i]
            if close[i] > lo_lvl[i] and sweep[i] == 0:
                sweep[i], level[i] = 1, lo_lvl[i]
    return sweep, level


def liquidity(
    df: pd.DataFrame,
    length: int = 5,
    atr_length: int = 14,
    atr_mult: float = 0.1,
    lookback: int = 10,
    swings_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return `equal_highs`, `equal_highs_level`, `equal_lows`, `equal_lows_level` (on the
    confirming bar), `sweep` (+1 sell-side swept, -1 buy-side swept, 0) and `sweep_level`.

    >>> idx = pd.date_range("2026-01-01", periods=6, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"open": 1.0, "high": [1, 3, 1, 1, 3.5, 1], "low": 0.5,
    ...     "close": [1, 2, 1, 1, 2.5, 1]}, idx)
    >>> liquidity(df, length=1)[["sweep", "sweep_level"]].iloc[4].tolist()
    [-1.0, 3.0]
    """
    check_ohlc(df)
    s = swings(df, length) if swings_df is None else swings_df
    tol = (causal_atr(df, atr_length) * atr_mult).to_numpy(dtype=float)
    out = {}
    for name, col, sign in (("highs", "high", 1.0), ("lows", "low", -1.0)):
        flag = s[f"swing_{col}"].to_numpy(dtype=np.bool_)
        price = sign * s[f"swing_{col}_price"].to_numpy(dtype=float)
        equal, level = _equal(flag, price, tol, lookback)
        out[f"equal_{name}"], out[f"equal_{name}_level"] = equal, sign * level
    sweep, level = _sweeps(
        df["high"].to_numpy(dtype=float),
        df["low"].to_numpy(dtype=float),
        df["close"].to_numpy(dtype=float),
        s["last_high"].to_numpy(dtype=float),
        s["last_high_pos"].to_numpy(dtype=np.int64),
        s["last_low"].to_numpy(dtype=float),
        s["last_low_pos"].to_numpy(dtype=np.int64),
    )
    out["sweep"], out["sweep_level"] = sweep, level
    return pd.DataFrame(out, index=df.index)
