"""Stored bars as a market: replay what the bot recorded (`market_data`) or a CSV file.

`FrameMarket` answers the engine's `MarketData` questions from one frame of bars, as if the
clock stood at `end`: the completed bars, and the close of the last completed bar as the price
(what the simulator quotes on a bar boundary). Gaps (weekends, a bot that was down) stay gaps:
a backtest runs one cycle per stored bar, at its close.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from botlib.errors import DataError
from botlib.features.indicators import validate_bars
from botlib.models import timeframe_minutes
from botlib.storage.store import Store

__all__ = ["FrameMarket"]

_OHLCV = ["open", "high", "low", "close", "volume"]


class FrameMarket:
    """One symbol's bars of one timeframe, served without look-ahead."""

    def __init__(self, symbol: str, timeframe: str, bars: pd.DataFrame) -> None:
        minutes = timeframe_minutes(timeframe)
        validate_bars(bars)
        self.symbol, self.timeframe = symbol, timeframe
        self.width = timedelta(minutes=minutes)
        self.frame = bars[_OHLCV].astype(float)
        self._closes = self.frame.index + self.width

    @classmethod
    def from_store(cls, db_path: Path | str, symbol: str, timeframe: str) -> FrameMarket:
        """Read the bars a bot saved in its database (`market_data`)."""
        with Store(db_path, read_only=True) as store:
            frame = store.load_bars(symbol, timeframe, limit=None)
        if frame.empty:
            raise DataError(f"{db_path} holds no {timeframe} bars for {symbol}")
        return cls(symbol, timeframe, frame)

    @classmethod
    def from_csv(cls, path: Path | str, symbol: str, timeframe: str) -> FrameMarket:
        """Read a CSV with a time column (first column; naive times are UTC) and OHLC(V)."""
        frame = pd.read_csv(path)
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        time_column = frame.columns[0]
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(time_column), utc=True), name="ts")
        if "volume" not in frame.columns:
            frame["volume"] = 0.0
        missing = [c for c in _OHLCV if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: no column(s) {', '.join(missing)}")
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        return cls(symbol, timeframe, frame)

    def _check(self, symbol: str, timeframe: str) -> None:
        if symbol != self.symbol or timeframe != self.timeframe:
            raise DataError(
                f"this stored market holds {self.symbol} {self.timeframe}, not {symbol} {timeframe}"
            )

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        """Return up to `limit` bars that closed at or before `end`."""
        self._check(symbol, timeframe)
        stop = int(self._closes.searchsorted(pd.Timestamp(end), side="right"))
        return self.frame.iloc[max(0, stop - limit) : stop]

    def latest_price(self, symbol: str, at: datetime) -> float:
        """Return the close of the last bar completed at `at`."""
        self._check(symbol, self.timeframe)
        stop = int(self._closes.searchsorted(pd.Timestamp(at), side="right"))
        if stop == 0:
            raise DataError(f"no {symbol} bar closed before {at:%Y-%m-%d %H:%M}")
        return float(self.frame["close"].iloc[stop - 1])

    def cycle_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Return the close time of every stored bar closing within `start`..`end`."""
        closes = self._closes[(self._closes >= start) & (self._closes <= end)]
        return [t.to_pydatetime() for t in closes]
