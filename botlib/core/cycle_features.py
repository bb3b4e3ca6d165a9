"""Where a cycle's features come from: computed per cycle (live), or sliced from a block (replay).

`LiveFeatures` is what a live cycle does: fetch the window's bars, check them, store the new
ones, compute the indicators on the window (`botlib.features.window`) and, when the analyst is
asked, the SMC detectors. A backtest passes the engine another `FeatureSource`
(`botlib.backtest.block_features`) that returns the same frames, bit for bit, computed once per
window block: the engine's cycle is the same code either way.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from botlib.errors import DataError, StaleDataError
from botlib.features.indicators import (
    INDICATOR_COLUMNS,
    WARM_UP,
    add_indicators,
    validate_bars,
)
from botlib.features.smc.summary import smc_features, summary
from botlib.features.window import window_length, window_start
from botlib.models import TIMEFRAMES, AssetSettings
from botlib.ports import MarketData
from botlib.storage.store import Store

__all__ = ["FeatureSource", "LiveFeatures", "check_fresh", "UNDEFINED", "undefined_reason"]

UNDEFINED = "indicators are not defined on the last bar (too little history)"


def undefined_reason(features: pd.DataFrame) -> str:
    """Say why the last bar's indicators are undefined: too little history, or a price that has
    not moved in the whole window (RSI's gains and losses are both zero: 0/0, however long)."""
    closes = features["close"].to_numpy()
    if len(features) > max(WARM_UP.values()) and (closes == closes[0]).all():
        return (
            "indicators are not defined on the last bar: the price has not moved in"
            f" {len(closes)} bars ({closes[0]:g}), so RSI is undefined; no decision on a flat"
            " market"
        )
    return UNDEFINED


class FeatureSource(Protocol):
    def features(self, asset: AssetSettings, now: datetime) -> pd.DataFrame:
        """The window's bars with the indicator columns, last row = the last completed bar.

        Raises DataError (bad or too few bars), StaleDataError (no recent bar)."""
        ...

    def summary(self, features: pd.DataFrame) -> dict[str, Any]:
        """The SMC summary at the last bar of `features` (the frame `features` returned)."""
        ...


def check_fresh(last_bar: pd.Timestamp, now: datetime, minutes: int) -> None:
    """Refuse a window whose last bar is more than three bars old: nothing new to decide on."""
    width = timedelta(minutes=minutes)
    if last_bar + width < now - 3 * width:
        raise StaleDataError(f"stale data: last bar {last_bar:%Y-%m-%d %H:%M}Z")


class LiveFeatures:
    """Each cycle computes its own window: what the tick, the demo and the guard's cycles do."""

    def __init__(self, market: MarketData, store: Store | None) -> None:
        """`store` None: store no bars (a what-if rebuilding a logged cycle reads only)."""
        self.market, self.store = market, store

    def features(self, asset: AssetSettings, now: datetime) -> pd.DataFrame:
        minutes = TIMEFRAMES[asset.timeframe]
        bars = self.market.bars(asset.symbol, asset.timeframe, now, window_length(now, minutes))
        validate_bars(bars)
        check_fresh(bars.index[-1], now, minutes)
        if self.store is not None:
            self.store.save_new_bars(asset.symbol, asset.timeframe, bars)
        bars = bars[bars.index >= window_start(bars.index[-1], minutes)]
        features = add_indicators(bars)
        last = features.iloc[-1][list(INDICATOR_COLUMNS)]
        if not all(math.isfinite(float(v)) for v in last):
            raise DataError(undefined_reason(features))
        return features

    def summary(self, features: pd.DataFrame) -> dict[str, Any]:
        return summary(features, features=smc_features(features))
