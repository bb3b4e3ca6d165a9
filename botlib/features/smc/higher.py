"""Higher-timeframe structure: the cycle's bars resampled to 4-hour and daily bars, summarised.

An LLM analyst may ask for it (`multi_timeframe = true` in the arena file): the trend, the last
break, the nearest zones and premium/discount of the 4h and 1d charts, built from the same bars
the cycle already holds. Only completed higher bars count (a 4h bar is used once its last minute
has closed), so the summary at bar i uses bars <= i only, like every feature (the tests check it
by truncation). A window of 3,001-6,000 1-minute bars holds 12-25 4h bars and 2-4 days: a chart
with fewer than `MIN_BARS` bars is left out rather than summarised from noise.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from botlib.features.smc.summary import smc_features, summary

__all__ = ["higher_timeframes", "HIGHER", "MIN_BARS"]

HIGHER = {"4h": "4h", "1d": "1D"}  # label -> pandas frequency
MIN_BARS = 12
_KEPT = ("trend", "last_break", "fvg_below", "fvg_above", "ob_below", "ob_above",
         "premium_discount")  # fmt: skip


def higher_timeframes(bars: pd.DataFrame, width: timedelta) -> dict[str, Any]:
    """Summarise each higher timeframe of `bars` (OHLCV, `width` apart) that has enough bars."""
    closed_by = bars.index[-1] + width  # the last completed moment the cycle knows
    found: dict[str, Any] = {}
    for label, freq in HIGHER.items():
        frame = _resampled(bars, freq, closed_by)
        if len(frame) >= MIN_BARS:
            full = summary(frame, features=smc_features(frame))
            found[label] = {"bars": len(frame)} | {k: full[k] for k in _KEPT}
    return found


def _resampled(bars: pd.DataFrame, freq: str, closed_by: pd.Timestamp) -> pd.DataFrame:
    ohlcv = bars[["open", "high", "low", "close", "volume"]]
    grouped = ohlcv.resample(freq, origin="epoch", label="left", closed="left")
    frame = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    ).dropna()
    period = pd.Timedelta(freq)
    return frame[frame.index + period <= closed_by]  # completed higher bars only
