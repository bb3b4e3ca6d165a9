"""Turn one asset's query results into the arrays its price chart draws (pure, no widgets).

Kept apart from the widgets so unit tests can check every number and label without a browser.
Every string that came from the database is HTML-escaped before it reaches a widget: the widgets
render HTML, and an analyst's reasoning is untrusted text. (One asset panel's texts live beside
its widgets in `botlib.ui.asset_panel`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from botlib.features.indicators import add_indicators
from botlib.models import TIMEFRAMES
from botlib.reporting.queries import DashboardData
from botlib.ui.shaping.downsample import ohlc_buckets
from botlib.ui.shaping.smc import SmcChartData, smc_chart_data

__all__ = [
    "MAX_CANDLES",
    "OVERLAYS",
    "RESTING_KINDS",
    "ChartData",
    "RestingLevel",
    "chart_data",
    "order_status",
    "resting_levels",
]

MAX_CANDLES = 240  # most candles a chart draws: bqplot re-sends whole arrays on every update
OVERLAYS = ("sma_20", "sma_50", "bb_upper", "bb_lower")  # `add_indicators` columns drawn
# a protective stop's trigger and its limit (a band below it), and a limit order's price
RESTING_KINDS = ("resting_stop", "resting_stop_limit", "resting_limit")
_STATUS_WORDS = {"pending": "open"}  # an intent stays `pending` while its order rests


@dataclass(frozen=True)
class RestingLevel:
    """One price an order resting at the venue waits for, drawn as a labelled level."""

    kind: str  # one of `RESTING_KINDS`
    price: float
    label: str


def order_status(order: dict[str, Any]) -> str:
    """Say how a resting order stands: its status, and a protective stop's revision.

    >>> order_status({"status": "pending", "revision": 2})
    'open, rev 2'
    >>> order_status({"status": "canceled"})
    'canceled'
    """
    status = str(order.get("status") or "?")
    words = _STATUS_WORDS.get(status, status)
    return f"{words}, rev {order['revision']}" if order.get("revision") else words


def _price(value: Any) -> float | None:
    """Return a stored price, or None for a missing one (NULL or not finite)."""
    price = None if value is None else float(value)
    return price if price is not None and np.isfinite(price) else None


def resting_levels(orders: list[dict[str, Any]]) -> tuple[RestingLevel, ...]:
    """Turn resting orders (`botlib.reporting.queries.resting_orders` rows) into chart levels.

    A stop_limit gives its stop and its limit; a limit order its limit. Labels are plain text
    (bqplot draws them as SVG text, not HTML).

    >>> [lv.label for lv in resting_levels([{"order_type": "stop_limit", "side": "sell",
    ...     "stop_price": 59000.0, "limit_price": 58705.0, "status": "pending", "revision": 1}])]
    ['stop 59,000 (open, rev 1)', 'stop limit 58,705 (open, rev 1)']
    """
    levels = []
    for order in orders:
        status = order_status(order)
        stop, limit = _price(order.get("stop_price")), _price(order.get("limit_price"))
        if order.get("order_type") == "stop_limit":
            if stop is not None:
                levels.append(RestingLevel("resting_stop", stop, f"stop {stop:,.8g} ({status})"))
            if limit is not None:
                label = f"stop limit {limit:,.8g} ({status})"
                levels.append(RestingLevel("resting_stop_limit", limit, label))
        elif limit is not None:
            label = f"{order.get('side') or '?'} limit {limit:,.8g} ({status})"
            levels.append(RestingLevel("resting_limit", limit, label))
    return tuple(levels)


@dataclass(frozen=True)
class ChartData:
    """Arrays for one price chart, all on `x` (candle close times): candles, volume, indicator
    overlays and SMC zones; fills and break marks keep their own (real) times."""

    x: np.ndarray  # candle close times, datetime64[ms], UTC without tz (what bqplot expects)
    ohlc: np.ndarray  # (n, 4): open, high, low, close
    volume: np.ndarray
    overlays: dict[str, np.ndarray]  # `OVERLAYS` columns, NaN while an indicator warms up
    buys_x: np.ndarray
    buys_y: np.ndarray
    sells_x: np.ndarray
    sells_y: np.ndarray
    levels: dict[str, float | None]  # stop_loss, take_profit, entry
    smc: SmcChartData = field(default_factory=SmcChartData)  # FVG/OB zones, BOS/CHoCH points
    resting: tuple[RestingLevel, ...] = ()  # orders resting at the venue, newest first

    @property
    def close(self) -> np.ndarray:
        return self.ohlc[:, 3]

    @property
    def rising(self) -> np.ndarray:
        """Return 1.0 for candles that closed at or above their open, else 0.0 (bar colours)."""
        return (self.ohlc[:, 3] >= self.ohlc[:, 0]).astype(float)

    def overlay_line(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return an overlay from its first defined value on (bqplot mis-draws NaN ends)."""
        y = self.overlays.get(name, _NO_VALUES)
        defined = np.flatnonzero(np.isfinite(y))
        start = int(defined[0]) if len(defined) else len(y)
        return self.x[start : len(y)], y[start:]

    def level_line(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return a horizontal segment across the chart at a level (empty when there is none)."""
        level = self.levels.get(name)
        if level is None or not len(self.x):
            return _NO_TIMES, _NO_VALUES
        return self._span(), np.array([level, level], dtype=float)

    def resting_lines(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the levels of one `RESTING_KINDS` kind as horizontal lines across the chart
        (`y` has one row per level; empty when there is none)."""
        found = [level.price for level in self.resting if level.kind == kind]
        if not found or not len(self.x):
            return _NO_TIMES, _NO_VALUES
        return self._span(), np.array([[price, price] for price in found], dtype=float)

    def resting_labels(self, kind: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Return where the labels of one kind's levels go (at the chart's left end, on each
        level) and their texts."""
        found = [level for level in self.resting if level.kind == kind]
        if not found or not len(self.x):
            return _NO_TIMES, _NO_VALUES, []
        prices = np.array([level.price for level in found], dtype=float)
        return np.repeat(self._span()[:1], len(found)), prices, [level.label for level in found]

    def _span(self) -> np.ndarray:
        """Return the chart's first and last times (a fill after the last candle extends it)."""
        ends = np.array([self.x[0], max(self.x[-1], *self.buys_x, *self.sells_x)])
        return ends.astype("datetime64[ms]")


_NO_TIMES = np.array([], dtype="datetime64[ms]")
_NO_VALUES = np.array([], dtype=float)


def _naive_utc(times: pd.Series | pd.Index) -> np.ndarray:
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"))
    return index.tz_convert(None).to_numpy().astype("datetime64[ms]")


def _fills(trades: pd.DataFrame, side: str, since: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
    """Return fill times and prices of one side, from `since` on (older ones would stretch x)."""
    if trades.empty or "price" not in trades or "filled_at" not in trades:
        return _NO_TIMES, _NO_VALUES
    done = trades[(trades["side"] == side) & trades["price"].notna() & trades["filled_at"].notna()]
    x = _naive_utc(done["filled_at"])
    keep = x >= since
    return x[keep], done["price"].to_numpy(dtype=float)[keep]


def _last_rows(bars: pd.Index, candles: pd.Index) -> np.ndarray:
    """Return, for each (merged) candle, the position of its last bar in `bars`."""
    starts = bars.get_indexer(candles)
    return np.append(starts[1:], len(bars)) - 1


def _levels(position: dict[str, Any] | None) -> dict[str, float | None]:
    position = position or {}
    return {
        "stop_loss": position.get("stop_loss"),
        "take_profit": position.get("take_profit"),
        "entry": position.get("avg_entry_price"),
    }


def chart_data(data: DashboardData, max_candles: int = MAX_CANDLES) -> ChartData:
    """Shape one asset's bars, trades and position for the chart, drawing <= `max_candles`.

    A candle is drawn at its close time, when a cycle trades on it, so a fill marker sits on
    the candle it was priced from. Indicators are computed on the warm-up bars plus the window
    (causal), then read at each drawn candle's last bar; longer windows are merged by
    `ohlc_buckets`, which keeps the window's extremes and its first open and last close.
    """
    bars = data.bars
    if bars.empty:
        return _empty_chart(data.position)
    ends = _naive_utc(bars.index + pd.Timedelta(minutes=TIMEFRAMES.get(data.asset.timeframe, 0)))
    full = pd.concat([data.history, bars]) if len(data.history) else bars
    features = add_indicators(full).iloc[len(full) - len(bars) :]
    candles = ohlc_buckets(bars, max_candles)
    rows = _last_rows(bars.index, candles.index)
    buys_x, buys_y = _fills(data.trades, "buy", ends[0])
    sells_x, sells_y = _fills(data.trades, "sell", ends[0])
    return ChartData(
        x=ends[rows],
        ohlc=candles[["open", "high", "low", "close"]].to_numpy(dtype=float),
        volume=(candles["volume"] if "volume" in candles else candles["close"] * 0).to_numpy(float),
        overlays={name: features[name].to_numpy(dtype=float)[rows] for name in OVERLAYS},
        buys_x=buys_x,
        buys_y=buys_y,
        sells_x=sells_x,
        sells_y=sells_y,
        levels=_levels(data.position),
        smc=smc_chart_data(full, ends).at_rows(rows),
        resting=resting_levels(data.resting),
    )


def _empty_chart(position: dict[str, Any] | None) -> ChartData:
    """Return a chart with no candles (its levels have nothing to span, so none is drawn)."""
    return ChartData(
        x=_NO_TIMES,
        ohlc=np.empty((0, 4)),
        volume=_NO_VALUES,
        overlays={name: _NO_VALUES for name in OVERLAYS},
        buys_x=_NO_TIMES,
        buys_y=_NO_VALUES,
        sells_x=_NO_TIMES,
        sells_y=_NO_VALUES,
        levels=_levels(position),
    )
