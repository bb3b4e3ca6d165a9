"""Input checks shared by the ICT/SMC detectors: refuse what cannot be fixed, loudly."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np
import pandas as pd

__all__ = ["check_ohlc", "checked_once"]

_trusted: contextvars.ContextVar[int] = contextvars.ContextVar("smc_trusted", default=0)


@contextlib.contextmanager
def checked_once(df: pd.DataFrame) -> Iterator[None]:
    """Check `df` once, then let the detectors called inside skip re-checking the same frame."""
    check_ohlc(df)
    token = _trusted.set(id(df))
    try:
        yield
    finally:
        _trusted.reset(token)


_COLUMNS = ("open", "high", "low", "close")


def check_ohlc(df: pd.DataFrame) -> None:
    """Raise ValueError naming the problem: missing or non-numeric columns, bad index, NaN/inf,
    high < low.

    Zero-range bars, constant prices and frames shorter than a window are valid input.
    """
    if _trusted.get() == id(df):
        return
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"OHLC frame lacks column(s): {', '.join(missing)}")
    doubled = [c for c in _COLUMNS if (df.columns == c).sum() > 1]
    if doubled:
        raise ValueError(f"OHLC frame has duplicated column(s): {', '.join(doubled)}")
    wrong = [c for c in _COLUMNS if not _numeric(df[c])]
    if wrong:  # strings would compare as text; object columns fail inside numba, unexplained
        raise ValueError(f"OHLC column(s) {', '.join(wrong)} are not numeric; convert to float")
    if not isinstance(df.index, pd.DatetimeIndex):
        raise ValueError("OHLC frame needs a DatetimeIndex")
    if df.index.has_duplicates:
        raise ValueError("OHLC frame has duplicated timestamps; drop or aggregate them first")
    if not df.index.is_monotonic_increasing:
        raise ValueError("OHLC frame is not sorted by time; sort it first (df.sort_index())")
    values = df[list(_COLUMNS)].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"OHLC frame has NaN/inf on {int(bad.sum())} row(s), first at {df.index[bad][0]}"
        )
    if (values[:, 1] < values[:, 2]).any():
        raise ValueError("OHLC frame has a bar with high < low")


def _numeric(column: pd.Series) -> bool:
    """Say whether a column holds numbers (booleans do not count as prices)."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
