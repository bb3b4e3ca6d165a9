"""A backtest's features: computed once per window block and sliced per cycle, bit for bit.

A live cycle's window starts on a fixed block boundary (`botlib.features.window`) and every
feature is causal, so the cycles of one block compute their indicators and SMC columns on
prefixes of one frame. `BlockFeatures` fetches the run's bars once, computes each block's
frame once and hands each cycle the prefix it would have computed itself: the engine runs its
own cycle around it (`Engine(features=...)`), at a fraction of the cost. The rows, the checks
(too few bars, stale data, undefined indicators) and the bars stored in the run's database
equal `LiveFeatures`' (tests/test_block_features.py compares them cycle by cycle, across block
boundaries, on simulated bars and on stored bars with gaps). Whatever it cannot reproduce
exactly (bars that fail validation, a window cut short by the data's start or by a gap) it
leaves to `LiveFeatures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from botlib.clock import iso
from botlib.core.cycle_features import LiveFeatures, check_fresh, undefined_reason
from botlib.errors import DataError
from botlib.features.indicators import INDICATOR_COLUMNS, MIN_BARS, add_indicators, validate_bars
from botlib.features.smc.summary import Columns, smc_features, summary
from botlib.features.window import WINDOW_BLOCK, window_length, window_start
from botlib.models import TIMEFRAMES, AssetSettings
from botlib.ports import MarketData
from botlib.storage.store import BAR_COLUMNS, BAR_UPSERT, Store

__all__ = ["BlockFeatures"]


@dataclass
class _Block:
    """One window block: its first row in the run's bars, its features, its SMC (on demand)."""

    first: int
    features: pd.DataFrame
    defined: np.ndarray  # rows whose indicators are all defined
    smc: Columns | None = None


class BlockFeatures:
    """The `FeatureSource` of one backtest (one symbol, one timeframe, cycles at `times`)."""

    def __init__(
        self, market: MarketData, store: Store, symbol: str, timeframe: str, times: list[datetime]
    ) -> None:
        self.live = LiveFeatures(market, store)
        self.store, self.symbol, self.timeframe = store, symbol, timeframe
        self.minutes = TIMEFRAMES[timeframe]
        self.bars = _prefetch(market, symbol, timeframe, times, self.minutes)
        index = self.bars.index if self.bars is not None else pd.DatetimeIndex([], tz="UTC")
        self._opens = index.asi8
        ohlcv = (
            self.bars[["open", "high", "low", "close", "volume"]] if self.bars is not None else None
        )
        self._values = ohlcv.to_numpy(float).tolist() if ohlcv is not None else []
        self._closes = (index + timedelta(minutes=self.minutes)).asi8
        newest = store.newest_bar(symbol, timeframe)
        self._saved = newest.value if newest is not None else None
        self._block: _Block | None = None
        self._last: pd.DataFrame | None = None

    def features(self, asset: AssetSettings, now: datetime) -> pd.DataFrame:
        ours = (asset.symbol, asset.timeframe) == (self.symbol, self.timeframe)
        stop = int(np.searchsorted(self._closes, pd.Timestamp(now).value, side="right"))
        start = stop - window_length(now, self.minutes)
        if self.bars is None or not ours or start < 0 or stop - start < MIN_BARS:
            return self.live.features(asset, now)  # the live path raises what it should
        last = self.bars.index[stop - 1]
        check_fresh(last, now, self.minutes)
        self._save(start, stop)
        anchor = pd.Timestamp(window_start(last.to_pydatetime(), self.minutes)).value
        first = int(np.searchsorted(self._opens, anchor, side="left"))
        if first < start:  # a gap cut the window short: compute it as the live cycle does
            return self.live.features(asset, now)
        block = self._block_at(first)
        if not block.defined[stop - 1 - first]:
            raise DataError(undefined_reason(block.features.iloc[: stop - first]))
        self._last = block.features.iloc[: stop - first]
        return self._last

    def summary(self, features: pd.DataFrame) -> dict[str, Any]:
        block, rows = self._block, len(features)
        if block is None or features is not self._last:
            return self.live.summary(features)
        if block.smc is None:
            block.smc = Columns(smc_features(block.features))
        # the block's frames at the cycle's last bar: `summary` reads bars <= `at` only
        return summary(block.features, at=rows - 1, features=block.smc)

    def _block_at(self, first: int) -> _Block:
        """The block whose windows start at row `first`, computed on its first use."""
        if self._block is not None and self._block.first == first:
            return self._block
        assert self.bars is not None
        span = WINDOW_BLOCK * self.minutes * 60 * 10**9  # the window spans two blocks at most
        end = int(np.searchsorted(self._opens, self._opens[first] + 2 * span, side="left"))
        features = add_indicators(self.bars.iloc[first:end])
        defined = np.isfinite(features[list(INDICATOR_COLUMNS)].to_numpy(float)).all(axis=1)
        self._block = _Block(first, features, defined)
        return self._block

    def _save(self, start: int, stop: int) -> None:
        """Store the fetched bars newer than the newest stored one (`Store.save_new_bars`)."""
        assert self.bars is not None
        fresh = start
        if self._saved is not None:
            fresh = max(start, int(np.searchsorted(self._opens, self._saved, side="right")))
        if fresh < stop:  # usually the one bar that closed since the last cycle
            rows = [self._row(k) for k in range(fresh, stop)]
            with self.store.transaction():
                self.store.insert_rows("market_data", BAR_COLUMNS, rows, BAR_UPSERT)
            self._saved = int(self._opens[stop - 1])

    def _row(self, k: int) -> tuple[Any, ...]:
        assert self.bars is not None
        stamp = iso(self.bars.index[k].to_pydatetime())
        return (self.symbol, self.timeframe, stamp, *self._values[k])


def _prefetch(
    market: MarketData, symbol: str, timeframe: str, times: list[datetime], minutes: int
) -> pd.DataFrame | None:
    """Every bar any cycle of the run fetches, in one call; None when they fail validation
    (then each cycle fetches and checks its own, and fails where the live cycle would)."""
    width = timedelta(minutes=minutes)
    first, last = times[0], times[-1]
    count = window_length(first, minutes) + (last - first) // width + 1
    bars = market.bars(symbol, timeframe, last, count)
    try:
        validate_bars(bars)
    except DataError:
        return None
    return bars
