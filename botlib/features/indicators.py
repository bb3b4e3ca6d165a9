"""Indicators through pandas-ta: RSI(14), MACD(12,26,9), Bollinger(20,2), SMA 20/50, ATR(14).

Every column is causal: row i uses rows <= i only (the property tests check it by truncation).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas_ta as ta

from botlib.errors import DataError

__all__ = [
    "add_indicators",
    "checked_price",
    "validate_bars",
    "INDICATOR_COLUMNS",
    "MAX_PRICE",
    "MIN_BARS",
]

INDICATOR_COLUMNS = (
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_lower",
    "bb_middle",
    "bb_upper",
    "sma_20",
    "sma_50",
    "atr",
)
MIN_BARS = 60  # SMA(50) plus a few bars of MACD/ATR warm-up
# No quote comes near it: a bigger price is a units or feed error (and Bollinger's squares
# overflow to inf around 1e154).
MAX_PRICE = 1e12
# Leading rows where a column is undefined. pandas-ta returns nothing for shorter frames and
# fills some rows with length-dependent values (RSI 0.0 on row 1): blanked, so defined = causal.
WARM_UP = {
    "rsi": 14,
    "macd": 33,
    "macd_signal": 33,
    "macd_hist": 33,
    "bb_lower": 19,
    "bb_middle": 19,
    "bb_upper": 19,
    "sma_20": 19,
    "sma_50": 49,
    "atr": 14,
}
_OHLCV = ("open", "high", "low", "close", "volume")


def validate_bars(bars: pd.DataFrame, min_bars: int = MIN_BARS) -> None:
    """Raise DataError naming the first problem that makes `bars` unsafe to trade on.

    Refused: a non-frame, missing, duplicated or non-numeric OHLCV columns (strings, objects,
    booleans), fewer than `min_bars` rows, an index that is not a timezone-aware DatetimeIndex or
    has NaT, unsorted or duplicated timestamps, NaN/inf, prices <= 0 or >= `MAX_PRICE`, negative
    volume, open/close/low above the high and open/close below the low. Fuzzing found text and
    object columns crashing inside pandas-ta (a TypeError, a numba error: no reason a reader
    could act on) and a low above the close, negative volume or 1e200 prices passing
    (tests/test_fuzz_bars.py).

    Accepted on purpose: gaps (crypto venues skip intervals without trades; the stale check and
    the indicators cope), zero volume, constant prices, any timezone (times are compared as
    instants and stored as UTC) and extra columns.
    """
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    _check_columns(bars)
    if len(bars) < min_bars:
        raise DataError(f"need at least {min_bars} bars, got {len(bars)}")
    _check_index(bars.index)
    _check_values(bars)


def _check_columns(bars: pd.DataFrame) -> None:
    missing = [c for c in _OHLCV if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack column(s) {', '.join(missing)}")
    doubled = [c for c in _OHLCV if (bars.columns == c).sum() > 1]
    if doubled:
        raise DataError(f"bars have duplicated column(s) {', '.join(doubled)}")
    wrong = [
        f"{c} ({bars[c].dtype})"
        for c in _OHLCV
        if not pd.api.types.is_numeric_dtype(bars[c]) or pd.api.types.is_bool_dtype(bars[c])
    ]
    if wrong:  # strings such as "93714.2" would compare as text, objects break numba
        raise DataError(f"bars column(s) {', '.join(wrong)} are not numeric; convert to float")


def _check_index(index: pd.Index) -> None:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError("bars need a timezone-aware (UTC) DatetimeIndex")
    if index.hasnans:
        raise DataError("bars have missing timestamps (NaT) in the index")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise DataError(f"bars have duplicated timestamps, first at {first}")
    if not index.is_monotonic_increasing:
        later = np.flatnonzero(np.diff(index.asi8) < 0)[0]
        raise DataError(f"bars are out of order: {index[later + 1]} comes after {index[later]}")


def _check_values(bars: pd.DataFrame) -> None:
    values = bars[list(_OHLCV)].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        names = ", ".join(c for c, hit in zip(_OHLCV, bad.any(axis=0), strict=True) if hit)
        raise DataError(f"bars contain NaN or infinite values in {names}")
    prices = values[:, :4]
    if (prices <= 0).any():
        raise DataError("bars contain non-positive prices")
    if (prices >= MAX_PRICE).any():
        raise DataError(f"bars contain prices >= {MAX_PRICE:g}: check the feed's units")
    if (values[:, 4] < 0).any():
        raise DataError("bars contain negative volume")
    open_, high, low, close = prices.T
    if (high < np.maximum.reduce([open_, close, low])).any():
        raise DataError("bars have a high below open/close/low")
    if (low > np.minimum(open_, close)).any():
        raise DataError("bars have a low above open/close")


def checked_price(symbol: str, price: object) -> float:
    """Return `price` as a float if it is a usable quote (finite, > 0, < MAX_PRICE), else raise.

    Meant for `MarketData.latest_price` before anything is sized or ordered: a NaN or inf price
    once reached the simulator's fills (its cash became NULL, or equity inf), and a zero or
    negative one the risk gate.

    >>> checked_price("BTC/USD", 93_000)
    93000.0
    """
    number = math.nan
    if isinstance(price, int | float | np.number) and not isinstance(price, bool | np.bool_):
        number = float(price)
    if not 0 < number < MAX_PRICE:  # False for NaN
        raise DataError(
            f"latest price for {symbol} is {price!r}: not a usable price (> 0, < {MAX_PRICE:g})"
        )
    return number


def add_indicators(bars: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of `bars` with the indicator columns appended.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2025-01-01", periods=80, freq="h", tz="UTC")
    >>> c = pd.Series(np.linspace(100, 120, 80), index=idx)
    >>> df = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c, "volume": 1.0})
    >>> round(float(add_indicators(df)["sma_20"].iloc[-1]), 2)
    117.59
    """
    close, high, low = bars["close"], bars["high"], bars["low"]
    n = len(bars)
    macd = _frame(ta.macd(close, fast=12, slow=26, signal=9), n, 3)
    bb = _frame(ta.bbands(close, length=20, lower_std=2.0, upper_std=2.0, ddof=0), n, 3)
    arrays = {
        "rsi": _column(ta.rsi(close, length=14), n),
        "macd": macd[0],
        "macd_hist": macd[1],
        "macd_signal": macd[2],
        "bb_lower": bb[0],
        "bb_middle": bb[1],
        "bb_upper": bb[2],
        "sma_20": _column(ta.sma(close, length=20), n),
        "sma_50": _column(ta.sma(close, length=50), n),
        "atr": _column(ta.atr(high, low, close, length=14), n),
    }
    for name, rows in WARM_UP.items():
        arrays[name][:rows] = np.nan
    # one frame built from plain arrays: joins and per-column inserts cost milliseconds a cycle
    others = [name for name in bars.columns if name not in arrays]
    if len(set(others)) < len(others):  # duplicated extra columns: let pandas keep them all
        base = bars.drop(columns=[name for name in arrays if name in bars.columns])
        return base.join(pd.DataFrame(arrays, index=bars.index))
    return pd.DataFrame({name: bars[name].to_numpy() for name in others} | arrays, index=bars.index)


def _column(result: pd.Series | None, n: int) -> np.ndarray:
    """pandas-ta returns None when there are fewer bars than the period: make that NaN."""
    if result is None:
        return np.full(n, np.nan)
    return result.to_numpy(dtype=float, copy=True)


def _frame(result: pd.DataFrame | None, n: int, width: int) -> list[np.ndarray]:
    if result is None:
        return [np.full(n, np.nan) for _ in range(width)]
    return [result.iloc[:, i].to_numpy(dtype=float, copy=True) for i in range(width)]
