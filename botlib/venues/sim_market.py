"""The embedded venue's market: deterministic synthetic OHLCV for any `XXX/USD` symbol.

The market is a pure function of (symbol, time): every minute since 2020-01-01 is generated
from seeds, so a bar never changes once it has closed and no query can see a bar that has not.
Daily levels follow a regime-switching walk (trends and ranges) with volatility clustering;
each day's minutes are a Brownian bridge between two daily levels, with intraday clustering,
a busier US session and occasional jumps.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from botlib.clock import floor_time
from botlib.errors import DataError
from botlib.models import timeframe_minutes

__all__ = ["SimMarket", "EPOCH"]

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_DAYS = 366 * 25  # daily levels are generated once per symbol up to 2045
_MINUTES = 1440
# Plausible starting levels and daily volatility; any other XXX/USD gets a level from its name.
_PROFILES = {"BTC": (60_000.0, 0.030), "ETH": (3_000.0, 0.038), "SOL": (150.0, 0.050)}


def _profile(symbol: str) -> tuple[float, float, int]:
    base = symbol.split("/")[0].upper()
    seed = zlib.crc32(symbol.upper().encode())
    price, vol = _PROFILES.get(base, (10.0 + seed % 490, 0.045))
    return price, vol, seed


@lru_cache(maxsize=32)
def _daily_levels(symbol: str) -> np.ndarray:
    """Return the log price at each day's 00:00 UTC since EPOCH (regimes + clustered volatility)."""
    price, vol, seed = _profile(symbol)
    rng = np.random.default_rng([seed, 1])
    z, u, eps = rng.standard_normal(_DAYS), rng.random(_DAYS), rng.standard_normal(_DAYS)
    levels = np.empty(_DAYS + 1)
    levels[0] = math.log(price)
    regime, log_vol = 0, math.log(vol)
    drifts = (0.0, 0.6 * vol, -0.6 * vol)  # range, uptrend, downtrend
    for d in range(_DAYS):
        if u[d] < 0.08:  # regimes last ~12 days on average
            regime = int(u[d] * 1000) % 3
        log_vol = 0.85 * log_vol + 0.15 * math.log(vol) + 0.2 * eps[d]
        pull = -0.01 * (levels[d] - math.log(price))  # keeps levels plausible over years
        levels[d + 1] = levels[d] + drifts[regime] + pull + math.exp(log_vol) * z[d]
    return levels


@lru_cache(maxsize=256)
def _day_minutes(symbol: str, day: int) -> np.ndarray:
    """Return a (1440, 5) array of one day's minute OHLCV, bridging the day's two daily levels."""
    if not 0 <= day < _DAYS:
        raise DataError(f"simulated market covers {EPOCH:%Y-%m-%d} to 2045; day {day} is outside")
    levels = _daily_levels(symbol)
    _, vol, seed = _profile(symbol)
    rng = np.random.default_rng([seed, 2, day])
    sigma = vol / math.sqrt(_MINUTES)
    hours = np.arange(_MINUTES) / 60.0
    session = 1.0 + 0.6 * np.exp(-(((hours - 15.0) / 3.0) ** 2))  # busier US session
    cluster = np.exp(np.cumsum(rng.standard_normal(_MINUTES)) * 0.02)  # intraday clustering
    steps = rng.standard_normal(_MINUTES) * sigma * session * cluster / cluster.mean()
    jumps = rng.random(_MINUTES) < 0.0007
    steps[jumps] += rng.choice([-1.0, 1.0], jumps.sum()) * rng.uniform(4, 10, jumps.sum()) * sigma
    walk = np.cumsum(steps)
    target = levels[day + 1] - levels[day]
    path = levels[day] + walk - np.arange(1, _MINUTES + 1) / _MINUTES * (walk[-1] - target)
    close = np.exp(path)
    open_ = np.exp(np.concatenate(([levels[day]], path[:-1])))
    wick = np.abs(rng.standard_normal((2, _MINUTES))) * sigma * 0.6
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(0.0, 0.5, _MINUTES) * (1.0 + np.abs(steps) / sigma) * 1e6 / close
    return np.column_stack([open_, high, low, close, volume])


@lru_cache(maxsize=1024)
def _day_bars(symbol: str, day: int, minutes: int) -> np.ndarray:
    """Aggregate one day's minutes into `minutes`-wide bars (every timeframe divides a day)."""
    m = _day_minutes(symbol, day).reshape(_MINUTES // minutes, minutes, 5)
    return np.column_stack(
        [m[:, 0, 0], m[:, :, 1].max(1), m[:, :, 2].min(1), m[:, -1, 3], m[:, :, 4].sum(1)]
    )


class SimMarket:
    """Synthetic OHLCV for any `XXX/USD` symbol, timeframes 1Min..1Hour, bars up to `end`."""

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        minutes = timeframe_minutes(timeframe)
        stop = floor_time(end, minutes)  # open time of the bar still forming
        start = max(stop - timedelta(minutes=minutes * limit), EPOCH)
        first_day = (start - EPOCH).days
        last_day = (stop - timedelta(minutes=1) - EPOCH).days
        if stop <= EPOCH:
            return _frame(np.empty((0, 5)), EPOCH, minutes)
        blocks = [_day_bars(symbol, d, minutes) for d in range(first_day, last_day + 1)]
        data = np.concatenate(blocks)
        offset = int((start - (EPOCH + timedelta(days=first_day))).total_seconds() // 60)
        count = int((stop - start).total_seconds() // 60) // minutes
        rows = data[offset // minutes : offset // minutes + count]
        return _frame(rows, start, minutes)

    def latest_price(self, symbol: str, at: datetime) -> float:
        """Return the close of the last completed minute before `at`."""
        last = floor_time(at, 1) - timedelta(minutes=1)
        day = (last - EPOCH).days
        minute = int((last - (EPOCH + timedelta(days=day))).total_seconds() // 60)
        return float(_day_minutes(symbol, day)[minute, 3])


def _frame(rows: np.ndarray, start: datetime, minutes: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=len(rows), freq=f"{minutes}min", tz=UTC, name="ts")
    return pd.DataFrame(rows, index=index, columns=["open", "high", "low", "close", "volume"])
