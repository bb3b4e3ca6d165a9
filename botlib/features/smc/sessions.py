"""ICT killzones and the Asian range, in each market's local time (zoneinfo, so DST is right).

Windows (ICT's usual ones): London killzone 07:00-10:00 Europe/London, New York killzone
07:00-10:00 America/New_York, Asian session 20:00-24:00 America/New_York. London and New York
change clocks on different dates, so their UTC hours shift independently through the year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from botlib.features.smc._input import check_ohlc

__all__ = ["killzones", "asian_range", "WINDOWS"]

# name -> (time zone, first local hour, end local hour (exclusive))
WINDOWS = {
    "london": ("Europe/London", 7, 10),
    "new_york": ("America/New_York", 7, 10),
    "asia": ("America/New_York", 20, 24),
}


def _within(hours: np.ndarray, name: str) -> np.ndarray:
    _, start, end = WINDOWS[name]
    return np.asarray((hours >= start) & (hours < end))


def _inside(index: pd.DatetimeIndex, name: str) -> np.ndarray:
    return _within(np.asarray(index.tz_convert(WINDOWS[name][0]).hour), name)


def killzones(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Return `killzone` ("london", "new_york" or "") and `in_london`, `in_new_york`, `in_asia`.

    >>> times = ["2026-01-15 07:30", "2026-07-15 06:30", "2026-07-15 11:30"]
    >>> # winter London = UTC; summer London = UTC+1, New York = UTC-4
    >>> killzones(pd.DatetimeIndex(times, tz="UTC"))["killzone"].tolist()
    ['london', 'london', 'new_york']
    """
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("killzones need a timezone-aware DatetimeIndex")
    london = _inside(index, "london")
    ny_hours = np.asarray(index.tz_convert("America/New_York").hour)  # New York and Asia share it
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


def asian_range(df: pd.DataFrame) -> pd.DataFrame:
    """Return `asia_high`/`asia_low`: the running range of the current Asian session while it
    trades, then the last session's final range until the next one opens (NaN before the first).
    """
    check_ohlc(df)
    if df.index.tz is None:
        raise ValueError("asian_range needs a timezone-aware DatetimeIndex")
    inside = _inside(df.index, "asia")
    starts = inside & ~np.concatenate(([False], inside[:-1]))
    session = pd.Series(np.cumsum(starts), index=df.index)
    high = df["high"].where(inside).groupby(session).cummax()
    low = df["low"].where(inside).groupby(session).cummin()
    return pd.DataFrame(
        {"asia_high": high.where(inside).ffill(), "asia_low": low.where(inside).ffill()},
        index=df.index,
    ).astype(float)
