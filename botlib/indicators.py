"""Indicators through pandas-ta: RSI(14), MACD(12,26,9), Bollinger(20,2), SMA 20/50, ATR(14).

Every column is causal: row i uses rows <= i only (the property tests check it by truncation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas_ta as ta

from botlib.errors import DataError

__all__ = ["add_indicators", "validate_bars", "INDICATOR_COLUMNS", "MIN_BARS"]

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
    """Raise DataError naming the first problem that makes `bars` unsafe to trade on."""
    missing = [c for c in _OHLCV if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack column(s) {', '.join(missing)}")
    if len(bars) < min_bars:
        raise DataError(f"need at least {min_bars} bars, got {len(bars)}")
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise DataError("bars need a timezone-aware (UTC) DatetimeIndex")
    if not bars.index.is_monotonic_increasing or bars.index.has_duplicates:
        raise DataError("bars are out of order or duplicated")
    values = bars[list(_OHLCV)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise DataError("bars contain NaN or infinite values")
    if (values[:, :4] <= 0).any():
        raise DataError("bars contain non-positive prices")
    if (bars["high"] < bars[["open", "close", "low"]].max(axis=1)).any():
        raise DataError("bars have a high below open/close/low")


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
    macd = _frame(ta.macd(close, fast=12, slow=26, signal=9), bars.index, 3)
    bb = _frame(ta.bbands(close, length=20, lower_std=2.0, upper_std=2.0, ddof=0), bars.index, 3)
    columns = {
        "rsi": _column(ta.rsi(close, length=14), bars.index),
        "macd": macd[0],
        "macd_hist": macd[1],
        "macd_signal": macd[2],
        "bb_lower": bb[0],
        "bb_middle": bb[1],
        "bb_upper": bb[2],
        "sma_20": _column(ta.sma(close, length=20), bars.index),
        "sma_50": _column(ta.sma(close, length=50), bars.index),
        "atr": _column(ta.atr(high, low, close, length=14), bars.index),
    }
    arrays = {name: np.array(values, dtype=float) for name, values in columns.items()}
    for name, rows in WARM_UP.items():  # plain arrays: one frame built once, not ten setitems
        arrays[name][:rows] = np.nan
    base = bars.drop(columns=[name for name in arrays if name in bars.columns])
    return base.join(pd.DataFrame(arrays, index=bars.index))


def _column(result: pd.Series | None, index: pd.Index) -> pd.Series:
    """pandas-ta returns None when there are fewer bars than the period: make that NaN."""
    if result is None:
        return pd.Series(np.nan, index=index, dtype=float)
    return result.astype(float)


def _frame(result: pd.DataFrame | None, index: pd.Index, width: int) -> list[pd.Series]:
    if result is None:
        return [_column(None, index) for _ in range(width)]
    return [result.iloc[:, i].astype(float) for i in range(width)]
