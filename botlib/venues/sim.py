"""The embedded venue: a deterministic synthetic market and a broker that fills against it.

The market is a pure function of (symbol, time): every minute since 2020-01-01 is generated
from seeds, so a bar never changes once it has closed and no query can see a bar that has not.
Daily levels follow a regime-switching walk (trends and ranges) with volatility clustering;
each day's minutes are a Brownian bridge between two daily levels, with intraday clustering,
a busier US session and occasional jumps. The broker keeps its own books (`sim_*` tables) and
answers like Alpaca: a reused client_order_id is 422/40010001, selling more than held is 403,
orders under $1 are 403, fees (taker 0.25% by default) are taken in the received asset.
"""

from __future__ import annotations

import math
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from botlib.clock import floor_time, iso, parse_time
from botlib.errors import DUPLICATE_CLIENT_ORDER_ID, DataError, OrderRejectedError
from botlib.features.indicators import checked_price
from botlib.models import Account, Order, OrderRequest, Position, timeframe_minutes
from botlib.ports import Clock, MarketData
from botlib.storage.store import Store

__all__ = ["SimMarket", "SimBroker", "EPOCH", "Fill", "market_fill", "books_after"]

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


@dataclass(frozen=True, slots=True)
class Fill:
    """One market fill, booked as Alpaca books crypto: the fee is taken in the received asset."""

    price: float  # the last price plus slippage (minus for a sell)
    qty: float  # what the order bought or sold
    value: float  # qty * price: USD paid, or USD proceeds before the fee
    fee: float  # value * fee_rate, in USD
    asset_change: float  # + qty net of the fee (buy), - qty (sell)
    cash_change: float  # - value (buy), + value net of the fee (sell)


def market_fill(
    side: str,
    last: float,
    fee_rate: float,
    slippage: float,
    *,
    qty: float | None = None,
    notional: float | None = None,
) -> Fill:
    """The fill arithmetic of `SimBroker` and the fast backtest: one statement of it.

    >>> market_fill("buy", 100.0, 0.0025, 0.0, notional=50.0).asset_change
    0.49875
    """
    sign = 1 if side == "buy" else -1
    price = last * (1 + sign * slippage)
    filled = qty if qty is not None else (notional or 0.0) / price
    value = filled * price
    if sign > 0:
        return Fill(price, filled, value, value * fee_rate, filled * (1 - fee_rate), -value)
    return Fill(price, filled, value, value * fee_rate, -filled, value * (1 - fee_rate))


def books_after(qty: float, avg_entry: float, fill: Fill) -> tuple[float, float]:
    """A position's quantity and average entry after `fill` (a sell keeps the entry price)."""
    new_qty = qty + fill.asset_change
    if fill.asset_change < 0:
        return max(new_qty, 0.0), avg_entry
    return new_qty, (qty * avg_entry + fill.value) / new_qty


class SimBroker:
    """A broker that fills market orders at the latest simulated price plus slippage and fees."""

    mode = "sim"

    def __init__(
        self,
        store: Store,
        market: MarketData,  # simulated bars, or stored ones (FrameMarket)
        clock: Clock,
        *,
        cash: float = 100_000.0,
        fee_rate: float = 0.0025,
        slippage_bps: float = 5.0,
    ) -> None:
        self.store, self.market, self.clock = store, market, clock
        self.fee_rate, self.slippage = fee_rate, slippage_bps / 10_000
        store.open_sim_account(cash, clock.now())

    def positions(self) -> list[Position]:
        rows = self.store.sim_positions()
        return [Position(r["symbol"], r["qty"], r["avg_entry_price"]) for r in rows]

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def account(self) -> Account:
        now = self.clock.now()
        cash = self.store.sim_cash()
        value = sum(p.qty * self.market.latest_price(p.symbol, now) for p in self.positions())
        return Account(cash=cash, equity=cash + value, buying_power=cash, mode=self.mode)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        found = self.store.sim_order(client_order_id)
        return _order(found) if found else None

    def submit_order(self, request: OrderRequest) -> Order:
        if self.get_order_by_client_id(request.client_order_id):
            raise OrderRejectedError(
                "client_order_id must be unique", status=422, code=DUPLICATE_CLIENT_ORDER_ID
            )
        now = self.clock.now()
        last = self.market.latest_price(request.symbol, now)
        try:  # no fill at a price the market does not have (an operator's close skips the engine)
            last = checked_price(request.symbol, last)
        except DataError as exc:
            raise OrderRejectedError(f"{exc}: order not filled", status=403) from None
        fill = market_fill(request.side, last, self.fee_rate, self.slippage,
                           qty=request.qty, notional=request.notional)  # fmt: skip
        if fill.value < 1.0:
            raise OrderRejectedError("cost basis must be >= minimal amount of order 1", status=403)
        with self.store.transaction():
            self._book(request, fill)
            record = {
                "id": str(uuid.uuid4()),
                "client_order_id": request.client_order_id,
                "symbol": request.symbol,
                "side": request.side,
                "status": "filled",
                "qty": request.qty,
                "notional": request.notional,
                "filled_qty": fill.qty,
                "filled_avg_price": fill.price,
                "fee": fill.fee,
                "created_at": iso(now),
                "filled_at": iso(now),
            }
            self.store.add_sim_order(record)
        return _order(record)

    def _book(self, request: OrderRequest, fill: Fill) -> None:
        """Refuse what Alpaca refuses (more cash or coin than held), else update the books."""
        cash, held = self.store.sim_cash(), self.position(request.symbol)
        qty, avg = (held.qty, held.avg_entry_price) if held else (0.0, 0.0)
        if request.side == "buy" and fill.value > cash + 1e-9:
            asked = f"requested: {fill.value:.2f}, available: {cash:.2f}"
            raise OrderRejectedError(f"insufficient balance for USD ({asked})", status=403)
        if request.side == "sell" and fill.qty > qty * (1 + 1e-9):
            asset = request.symbol.split("/")[0]
            raise OrderRejectedError(
                f"insufficient balance for {asset} (requested: {fill.qty}, available: {qty})",
                status=403,
            )
        new_qty, new_avg = books_after(qty, avg, fill)
        self.store.set_sim_books(cash + fill.cash_change, request.symbol, new_qty, new_avg)


def _order(row: dict) -> Order:
    return Order(
        id=row["id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        status=row["status"],
        created_at=parse_time(row["created_at"]) or EPOCH,
        qty=row["qty"],
        notional=row["notional"],
        filled_qty=row["filled_qty"] or 0.0,
        filled_avg_price=row["filled_avg_price"],
        fee=row["fee"] or 0.0,
        filled_at=parse_time(row["filled_at"]),
    )
