"""The market-data port on Alpaca (`CryptoHistoricalDataClient`, no keys needed for crypto).

Closed bars are cached in `market_data`; a cycle fetches only what is newer than the cache.
The bar still forming is dropped (its close is kept as the latest price). Alpaca omits bars
without trades: up to `MAX_FILL` missing bars are filled flat (previous close, volume 0); a
longer hole is a `DataError`. Duplicated or unordered bars are repaired and logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from botlib.errors import DataError
from botlib.models import TIMEFRAMES
from botlib.storage.store import Store
from botlib.venues.alpaca.http import read
from botlib.venues.alpaca.symbols import pair

if TYPE_CHECKING:
    from alpaca.data.historical import CryptoHistoricalDataClient

__all__ = ["AlpacaMarket", "bars_frame", "fill_gaps", "MAX_FILL"]

log = logging.getLogger(__name__)
MAX_FILL = 5  # missing bars filled flat; more in a row means the feed is broken
COLUMNS = ["open", "high", "low", "close", "volume"]


def _timeframe(name: str) -> Any:
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    minutes = TIMEFRAMES[name]
    if minutes % 60 == 0:
        return TimeFrame(minutes // 60, TimeFrameUnit.Hour)
    return TimeFrame(minutes, TimeFrameUnit.Minute)


def bars_frame(bars: list[Any]) -> pd.DataFrame:
    """Turn SDK `Bar`s into our frame: UTC index of bar open times, float columns, sorted."""
    index = pd.DatetimeIndex(pd.to_datetime([b.timestamp for b in bars], utc=True), name="ts")
    frame = pd.DataFrame(
        {name: [float(getattr(b, name)) for b in bars] for name in COLUMNS}, index=index
    )
    if frame.index.has_duplicates or not frame.index.is_monotonic_increasing:
        log.warning("bars arrived duplicated or out of order: repaired")
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame


def fill_gaps(frame: pd.DataFrame, width: timedelta) -> pd.DataFrame:
    """Fill up to `MAX_FILL` missing bars in a row flat; raise DataError on a longer hole.

    >>> t = pd.date_range("2026-01-01", periods=4, freq="1h", tz="UTC")[[0, 1, 3]]
    >>> f = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 9.0}, t)
    >>> fill_gaps(f, timedelta(hours=1))["volume"].tolist()
    [9.0, 9.0, 0.0, 9.0]
    """
    if len(frame) < 2:
        return frame
    longest = int(max((frame.index[1:] - frame.index[:-1]) / width)) - 1  # missing in a row
    if longest <= 0:
        return frame
    if longest > MAX_FILL:
        raise DataError(f"{longest} bars missing in a row (at most {MAX_FILL} are filled)")
    full = pd.date_range(frame.index[0], frame.index[-1], freq=width, name=frame.index.name)
    missing = full.difference(frame.index)
    filled = frame.reindex(full)
    close = filled["close"].ffill()
    for name in ("open", "high", "low"):
        filled[name] = filled[name].fillna(close)
    filled["close"], filled["volume"] = close, filled["volume"].fillna(0.0)
    log.info("filled %d missing bars flat", len(missing))
    return filled


class AlpacaMarket:
    """Bars and prices from Alpaca, cached in the store so each cycle fetches only new bars."""

    def __init__(self, client: CryptoHistoricalDataClient, store: Store | None = None) -> None:
        self.client, self.store = client, store
        self._last: dict[str, float] = {}

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        width = timedelta(minutes=TIMEFRAMES[timeframe])
        window_start = end - width * (limit + MAX_FILL)
        cached = self._cached(symbol, timeframe, limit, window_start)
        start = cached.index[-1] + width if len(cached) else window_start
        fresh = self._fetch(symbol, timeframe, start, end)
        if len(fresh):
            self._last[pair(symbol)] = float(fresh["close"].iloc[-1])
        closed = fresh[fresh.index + width <= end]  # the bar still forming is not a bar yet
        frame = pd.concat([cached, closed]) if len(cached) else closed
        if frame.empty:
            raise DataError(f"no bars for {symbol} from Alpaca: is it a pair Alpaca trades?")
        frame = fill_gaps(frame[~frame.index.duplicated(keep="last")].sort_index(), width)
        return frame.iloc[-limit:]

    def latest_price(self, symbol: str, at: datetime) -> float:
        """Return the close of the newest bar seen (the forming one included)."""
        known = self._last.get(pair(symbol))
        if known is None:
            frame = self._fetch(symbol, "1Min", at - timedelta(minutes=30), at)
            if frame.empty:
                raise DataError(f"no recent trades for {symbol}")
            known = float(frame["close"].iloc[-1])
        return known

    def _cached(self, symbol: str, timeframe: str, limit: int, since: datetime) -> pd.DataFrame:
        if self.store is None:
            return pd.DataFrame(columns=COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="ts"))
        frame = self.store.load_bars(symbol, timeframe, limit=limit + MAX_FILL)
        return frame[frame.index >= since].astype(float)

    def _fetch(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
        from alpaca.data.requests import CryptoBarsRequest

        request = CryptoBarsRequest(
            symbol_or_symbols=pair(symbol), timeframe=_timeframe(timeframe), start=start, end=end
        )
        barset: Any = read("fetch bars", self.client.get_crypto_bars, request)
        return bars_frame(barset.data.get(pair(symbol), []))
