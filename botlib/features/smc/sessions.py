"""ICT killzones and the Asian range, in each market's local time (zoneinfo, so DST is right).

Windows (ICT's usual ones): London killzone 07:00-10:00 Europe/London, New York killzone
07:00-10:00 America/New_York, Asian session 20:00-24:00 America/New_York. London and New York
change clocks on different dates, so their UTC hours shift independently through the year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from botlib.features.smc._input import check_ohlc

__all__ = ["killzones", "asian_range", "sessions", "WINDOWS"]

# name -> (time zone, first local hour, end local hour (exclusive))
WINDOWS = {
    "london": ("Europe/London", 7, 10),
    "new_york": ("America/New_York", 7, 10),
    "asia": ("America/New_York", 20, 24),
}


def _within(hours: np.ndarray, name: str) -> np.ndarray:
    _, start, end = WINDOWS[name]
    return np.asarray((hours >= start) & (hours < end))


def _hours(index: pd.DatetimeIndex, zone: str) -> np.ndarray:
    return np.asarray(index.tz_convert(zone).hour)


def killzones(index: pd.DatetimeIndex, ny_hours: np.ndarray | None = None) -> pd.DataFrame:
    """Return `killzone` ("london", "new_york" or "") and `in_london`, `in_new_york`, `in_asia`.

    >>> times = ["2026-01-15 07:30", "2026-07-15 06:30", "2026-07-15 11:30"]
    >>> # winter London = UTC; summer London = UTC+1, New York = UTC-4
    >>> killzones(pd.DatetimeIndex(times, tz="UTC"))["killzone"].tolist()
    ['london', 'london', 'new_york']
    """
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("killzones need a timezone-aware DatetimeIndex")
    london = _within(_hours(index, "Europe/London"), "london")
    if ny_hours is None:  # New York and Asia share it
        ny_hours = _hours(index, "America/New_York")
    new_york, asia = _within(ny_hours, "new_york"), _within(ny_hours, "asia")
    label = np.where(london, "london", np.where(new_york, "new_york", ""))
    return pd.DataFrame(
        {
            "killzone": label.astype(object),
            "in_london": london,
            "in_new_york": new_york,
            "in_asia": asia,
        },
        index=index,
    )


def asian_range(df: pd.DataFrame, ny_hours: np.ndarray | None = None) -> pd.DataFrame:
    """Return `asia_high`/`asia_low`: the running range of the current Asian session while it
    trades, then the last session's final range until the next one opens (NaN before the first).
    """
    check_ohlc(df)
    if df.index.tz is None:
        raise ValueError("asian_range needs a timezone-aware DatetimeIndex")
    if ny_hours is None:
        ny_hours = _hours(df.index, WINDOWS["asia"][0])
    inside = _within(ny_hours, "asia")
    rows = np.flatnonzero(inside)
    high, low = np.full(len(df), np.nan), np.full(len(df), np.nan)
    highs, lows = df["high"].to_numpy(dtype=float), df["low"].to_numpy(dtype=float)
    for session in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):  # one per session
        high[session] = np.maximum.accumulate(highs[session])
        low[session] = np.minimum.accumulate(lows[session])
    last = np.maximum.accumulate(np.where(inside, np.arange(len(df)), -1))  # the last row inside
    seen = last >= 0
    return pd.DataFrame(
        {
            "asia_high": np.where(seen, high[np.maximum(last, 0)], np.nan),
            "asia_low": np.where(seen, low[np.maximum(last, 0)], np.nan),
        },
        index=df.index,
    )


def sessions(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`killzones` and `asian_range` of `df`, converting the index to New York time once."""
    if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
        raise ValueError("sessions need a timezone-aware DatetimeIndex")
    ny_hours = _hours(df.index, "America/New_York")
    return killzones(df.index, ny_hours), asian_range(df, ny_hours)
