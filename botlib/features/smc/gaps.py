"""Fair value gaps: three-candle imbalances, emitted on the third candle, mitigated causally.

Bullish when high[j-2] < low[j] and the middle candle closed up; bearish when low[j-2] > high[j]
and the middle candle closed down. A gap is mitigated on the first later bar that fills it
(bullish: low <= its bottom; bearish: high >= its top); the 50 most recent gaps are tracked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from botlib.features.smc._input import check_ohlc
from botlib.features.smc._zones import FILL, zone_frame

__all__ = ["fair_value_gaps"]


def fair_value_gaps(df: pd.DataFrame, capacity: int = 50) -> pd.DataFrame:
    """Return `fvg` (+1/-1/0), `fvg_top`, `fvg_bottom`, `fvg_mitigated` (gaps filled on this bar)
    and the nearest active gaps: `bull_fvg_top/bottom` (below), `bear_fvg_top/bottom` (above).

    >>> idx = pd.date_range("2026-01-01", periods=5, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"open": [1, 1.5, 3.5, 4, 1], "high": [2, 3.8, 5, 5, 2],
    ...     "low": [0.5, 1.4, 3, 3.6, 0.5], "close": [1.5, 3.5, 4, 4.5, 1]}, index=idx)
    >>> f = fair_value_gaps(df)
    >>> f[["fvg", "fvg_top", "fvg_bottom"]].iloc[2].tolist()
    [1.0, 3.0, 2.0]
    >>> f["fvg_mitigated"].tolist(), f["bull_fvg_top"].isna().tolist()
    ([0, 0, 0, 0, 1], [True, True, False, False, True])
    """
    check_ohlc(df)
    o, h, lo, c = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    n = len(df)
    direction = np.zeros(n, dtype=np.int64)
    top, bottom = np.full(n, np.nan), np.full(n, np.nan)
    if n >= 3:
        up = (h[:-2] < lo[2:]) & (c[1:-1] > o[1:-1])
        down = (lo[:-2] > h[2:]) & (c[1:-1] < o[1:-1])
        direction[2:] = np.where(up, 1, np.where(down, -1, 0))
        top[2:] = np.where(up, lo[2:], np.where(down, lo[:-2], np.nan))
        bottom[2:] = np.where(up, h[:-2], np.where(down, h[2:], np.nan))
    return zone_frame("fvg", direction, top, bottom, h, lo, FILL, capacity, df.index)
