"""The rules analyst's backtest at 70-120k bars/s: features once per window, one loop for state.

The engine's feature windows start on fixed block boundaries (`botlib.features.window`), so
every cycle of one block computes `add_indicators` and `smc_features` on a prefix of the same
frame. Here each block's frame is computed once, the rules analyst's signals and SMC setups
become numpy columns (`rule_columns`), and only the path-dependent state (flat/long, stop, take-
profit, cash, the risk gate's peak and day-start equity) is walked cycle by cycle. Trades,
prices, fees and equity equal the engine path's exactly, at any length (`tests/test_backtest.py`
checks it across window boundaries, on simulated and stored bars, with gaps).

The rules are not restated: the per-bar choice, confidence and levels are the rules analyst's
own functions and `RuleParams` (`botlib.analysts.rules`), sizing is `risk.size_entry`, fills
are `sim.market_fill`, P&L is `execution.realized_pnl`. What stays here is the vectorised
reading of the same signals (`rule_columns`), which the parity tests tie to `RulesAnalyst`.
Nothing is stored here (`botlib.backtest.run_backtest` stores the report).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from tqdm import tqdm

from botlib.analysts.rules import RuleParams, choose, confidence, entry_levels
from botlib.backtest.results import TRADE_COLUMNS
from botlib.backtest.venue_stop import FillBars, fill_timeframe
from botlib.clock import floor_time, iso
from botlib.core.decision_checks import stop_distance_problem
from botlib.core.engine import client_order_id
from botlib.core.orders.execution import PROTECT, realized_pnl
from botlib.core.orders.exits import hit
from botlib.core.orders.protection import Protection
from botlib.core.risk import RiskLimits, is_halted, size_entry
from botlib.errors import ConfigError, DataError
from botlib.features.indicators import INDICATOR_COLUMNS, add_indicators, validate_bars
from botlib.features.smc.summary import RECENT_BARS, smc_features
from botlib.features.window import WINDOW_BLOCK, window_start
from botlib.models import TIMEFRAMES, Action, AssetSettings, timeframe_minutes
from botlib.ports import MarketData
from botlib.venues.sim import SimMarket, books_after, market_fill

__all__ = [
    "FastResult", "run_fast_backtest", "rule_columns", "window_columns", "cycle_times",
]  # fmt: skip

log = logging.getLogger(__name__)
_CHUNK = 10_000  # cycles per progress-bar update


@dataclass(frozen=True)
class FastResult:
    """Trades (the columns `run_backtest` returns), the equity curve and the wall time."""

    trades: pd.DataFrame
    equity: pd.Series
    cycles: int
    elapsed_s: float
    features_s: float
    held: int = 0  # cycles that ended holding a position (exposure)

    @property
    def bars_per_s(self) -> float:
        return self.cycles / self.elapsed_s if self.elapsed_s > 0 else float("inf")


@dataclass
class _Book:
    """The state one bar hands to the next: the broker's books and the risk gate's memory."""

    cash: float
    qty: float = 0.0
    avg: float = 0.0
    stop: float = 0.0
    take: float = 0.0
    limit: float = 0.0  # the resting stop's limit (venue stops on)
    triggered: bool = False
    placed: datetime | None = None  # when the resting stop was placed: matched from then on
    stop_cid: str = ""
    peak: float | None = None
    day: object = None
    day_start: float | None = None
    last_equity: float | None = None
    trades: list[dict[str, object]] = field(default_factory=list)


def _last_event(values: np.ndarray) -> np.ndarray:
    """Position of the last non-zero value at or before each row (-1 before the first)."""
    pos = np.where(values != 0, np.arange(len(values)), -1)
    return np.maximum.accumulate(pos)


def rule_columns(
    features: pd.DataFrame, smc: pd.DataFrame, params: RuleParams | None = None
) -> dict[str, np.ndarray]:
    """Return the rules analyst's per-bar inputs as arrays (its `_signals`, vectorised)."""
    p = params or RuleParams()
    f = {c: features[c].to_numpy(float) for c in (*INDICATOR_COLUMNS, "close", "low", "high")}
    sma_up, macd_up = f["sma_20"] > f["sma_50"], f["macd_hist"] > 0
    close_up, rsi, (low, high) = f["close"] > f["bb_middle"], f["rsi"], p.rsi_band
    n_bull = sma_up.astype(int) + macd_up + ((rsi >= low) & (rsi < high)) + close_up
    n_bear = (~sma_up).astype(int) + ~macd_up + (rsi < low) + ~close_up
    smc_cols = _smc_columns(smc, p.fresh_choch_bars)
    return f | smc_cols | {"n_bull": n_bull, "n_bear": n_bear, "sma_up": sma_up}


def _smc_columns(smc: pd.DataFrame, fresh_bars: int) -> dict[str, np.ndarray]:
    """Vectorise `long_setup` and `exit_setup` over `summary`'s view of every bar."""
    n = len(smc)
    bos, choch, sweep = (smc[c].to_numpy() for c in ("bos", "choch", "sweep"))
    bos_pos, choch_pos, sweep_pos = _last_event(bos), _last_event(choch), _last_event(sweep)
    is_choch = (choch_pos >= bos_pos) & (choch_pos >= 0)  # a tie is a CHoCH, as in `summary`
    choch_dir = np.where(choch_pos >= 0, choch[np.maximum(choch_pos, 0)], 0)
    recent = (sweep_pos >= 0) & (np.arange(n) - sweep_pos < RECENT_BARS)
    side = np.where(recent, sweep[np.maximum(sweep_pos, 0)], 0)
    level = smc["sweep_level"].to_numpy(float)[np.maximum(sweep_pos, 0)]
    sell_sweep = np.where((side > 0) & np.isfinite(level), level, np.nan)
    fvg, ob = (_zone_bottom(smc, prefix) for prefix in ("bull_fvg", "bull_ob"))
    zone = smc["zone"].to_numpy(object)
    bullish = (smc["trend"].to_numpy() == 1) | (is_choch & (choch_dir > 0))
    below = np.isfinite(fvg) | np.isfinite(ob) | np.isfinite(sell_sweep)
    fresh_choch = is_choch & (choch_dir < 0) & (np.arange(n) - choch_pos < fresh_bars)
    return {
        "setup": bullish & (zone == "discount") & below,
        "smc_exit": fresh_choch | ((side < 0) & (zone == "premium")),
        "fvg": fvg, "ob": ob, "sell_sweep": sell_sweep,
    }  # fmt: skip


def _zone_bottom(smc: pd.DataFrame, prefix: str) -> np.ndarray:
    """The zone's bottom where the zone exists (both edges defined), else NaN."""
    top, bottom = smc[f"{prefix}_top"].to_numpy(float), smc[f"{prefix}_bottom"].to_numpy(float)
    return np.where(np.isfinite(top) & np.isfinite(bottom), bottom, np.nan)


def run_fast_backtest(
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    timeframe: str = "1Min",
    cash: float = 100_000,
    fee_rate: float = 0.0025,
    slippage_bps: float = 5,
    asset: AssetSettings | None = None,
    limits: RiskLimits | None = None,
    market: MarketData | None = None,
    progress: bool = False,
    rules: RuleParams | None = None,
    stop_band_pct: float | None = 0.5,
) -> FastResult:
    """Replay the cycles `run_backtest` runs between `start` and `end`, without the engine.

    `rules`: the rules analyst's parameters (`RulesAnalyst(rules)` on the engine path).
    `stop_band_pct`: the resting stop's limit band (`Protection`), None: no venue stop.
    """
    _validate(start, end, timeframe)
    market = market or SimMarket()
    times = cycle_times(market, timeframe, start, end)
    began = time.perf_counter()
    width = timedelta(minutes=TIMEFRAMES[timeframe])
    bar_times = pd.DatetimeIndex([t - width for t in times], name="ts")
    rules = rules or RuleParams()
    cols = window_columns(market, symbol, timeframe, bar_times, progress, rules)
    features_s = time.perf_counter() - began
    book = _Book(cash=cash)
    asset = asset or AssetSettings(symbol=symbol, timeframe=timeframe)
    stops = None
    if stop_band_pct is not None:
        stops = FillBars.load(market, symbol, fill_timeframe(market), times[0], times[-1])
    ctx = _Ctx(symbol, asset, limits or RiskLimits(), rules, fee_rate, slippage_bps / 10_000,
               cols, bar_times, stops, Protection(stop_band_pct or 0.5))  # fmt: skip
    equity, held = [], 0
    with tqdm(total=len(times), desc=f"replay {symbol}", unit="bar", disable=not progress) as bar:
        for first in range(0, len(times), _CHUNK):  # the bar ticks per chunk, not per cycle
            for k in range(first, min(first + _CHUNK, len(times))):
                _cycle(ctx, book, k, times[k])
                equity.append(book.last_equity)
                held += book.qty > 0
            bar.update(min(_CHUNK, len(times) - first))
    elapsed = time.perf_counter() - began
    trades = pd.DataFrame(book.trades, columns=TRADE_COLUMNS)
    curve = pd.Series(equity, index=pd.DatetimeIndex(times, name="ts"), name="equity", dtype=float)
    return FastResult(trades, curve, len(times), elapsed, features_s, held)


def cycle_times(
    market: MarketData, timeframe: str, start: datetime, end: datetime
) -> list[datetime]:
    """When a backtest runs a cycle: every bar boundary, or each stored bar's close."""
    own = getattr(market, "cycle_times", None)
    if own is not None:
        times: list[datetime] = own(start, end)
        if not times:
            raise DataError(
                f"no stored bar closes between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"
            )
        return times
    step = timedelta(minutes=TIMEFRAMES[timeframe])
    return [start + k * step for k in range(int((end - start) / step) + 1)]


def window_columns(
    market: MarketData,
    symbol: str,
    timeframe: str,
    bar_times: pd.DatetimeIndex,
    progress: bool = False,
    rules: RuleParams | None = None,
) -> dict[str, np.ndarray]:
    """Return the rules' inputs on each cycle's last completed bar (`bar_times`).

    Cycles are grouped by their window's first bar (`botlib.features.window`): each group's features
    are computed once over its frame, which is, row for row, what each cycle computed.
    """
    minutes = TIMEFRAMES[timeframe]
    step = timedelta(minutes=minutes)
    first_bar, last_bar = bar_times[0].to_pydatetime(), bar_times[-1].to_pydatetime()
    frame_start = window_start(first_bar, minutes)
    bars = market.bars(symbol, timeframe, last_bar + step, (last_bar - frame_start) // step + 1)
    validate_bars(bars)
    missing = bar_times.difference(bars.index)
    if len(missing):
        raise DataError(f"{symbol}: {len(missing)} replayed bar(s) missing, first {missing[0]}")
    span = WINDOW_BLOCK * minutes * 60
    anchors = (bar_times.asi8 // 1_000_000_000 // span - 1) * span
    parts: list[dict[str, np.ndarray]] = []
    groups = np.unique(anchors)
    for anchor in tqdm(groups, desc=f"features {symbol}", unit="window", disable=not progress):
        rows = bar_times[anchors == anchor]
        first = pd.Timestamp(int(anchor), unit="s", tz=UTC)
        frame = bars[(bars.index >= first) & (bars.index <= rows[-1])]
        features = add_indicators(frame)
        at = frame.index.get_indexer(rows)
        if not np.isfinite(features[list(INDICATOR_COLUMNS)].to_numpy(float)[at]).all():
            raise DataError("indicators are not defined on every replayed bar (too little history)")
        cols = rule_columns(features, smc_features(frame), rules)
        parts.append({name: values[at] for name, values in cols.items()})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _validate(start: datetime, end: datetime, timeframe: str) -> timedelta:
    timeframe_minutes(timeframe, ConfigError)
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ConfigError("start and end must be timezone-aware UTC datetimes, start < end")
    if floor_time(start, TIMEFRAMES[timeframe]) != start:
        raise ConfigError(f"start {start:%H:%M} is not on a {timeframe} bar boundary")
    return timedelta(minutes=TIMEFRAMES[timeframe])


@dataclass(frozen=True)
class _Ctx:
    symbol: str
    asset: AssetSettings
    limits: RiskLimits
    rules: RuleParams
    fee_rate: float
    slippage: float
    cols: dict[str, np.ndarray]
    index: pd.DatetimeIndex
    stops: FillBars | None
    protection: Protection
    lists: dict[str, list] = field(init=False)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        # Python lists: indexing one is ~10x cheaper than a numpy scalar in the per-bar loop.
        object.__setattr__(self, "lists", {k: v.tolist() for k, v in self.cols.items()})


def _cycle(ctx: _Ctx, book: _Book, i: int, now: datetime) -> None:
    """One engine cycle: the venue's stop, exits, then the rules' choice through the risk gate."""
    c = ctx.lists
    price = c["close"][i]  # on a bar boundary the latest minute closes the last bar
    if book.qty > 0 and ctx.stops is not None:
        _venue_stop(ctx, ctx.stops, book, now)
    holding = book.qty > 0
    reason = None
    if holding:
        reason = hit({"stop_loss": book.stop, "take_profit": book.take}, c["low"][i], c["high"][i])
    if reason == "stop_loss" and ctx.stops is not None:
        reason = "gap_exit" if price < book.limit else None  # `Exits.action`
    if reason is not None:
        _sell(ctx, book, price, _cid(ctx, i, "exit"), reason, now)
    else:
        setup = c["setup"][i]
        action = choose(ctx.rules, holding, c["sma_up"][i], c["n_bull"][i], c["n_bear"][i],
                        c["rsi"][i], setup, c["smc_exit"][i])  # fmt: skip
        if action is Action.SELL:
            _sell(ctx, book, price, _cid(ctx, i, "SELL"), "signal", now)
        elif action is Action.BUY:
            _buy(ctx, book, i, price, setup, now)
    _snapshot(book, price, now)


def _cid(ctx: _Ctx, i: int, action: str) -> str:
    """The engine's client_order_id for bar `i` (built only when an order is sent)."""
    return client_order_id(ctx.symbol, ctx.index[i].to_pydatetime(), action)


def _status_halted(ctx: _Ctx, book: _Book, equity: float, now: datetime) -> bool:
    """The engine's `account_status`, from the snapshots this run has taken so far."""
    if book.day != now.date():
        book.day, book.day_start = now.date(), book.last_equity
    peak = book.peak if book.peak is not None else equity
    return is_halted(equity, peak, ctx.limits, book.day_start)


def _zone_level(c: dict[str, list], i: int) -> float:  # type: ignore[type-arg]
    """The setup's stop level as `long_setup` reads it from the summary (8 decimals)."""
    levels = (c["fvg"][i], c["ob"][i], c["sell_sweep"][i])
    return min(round(v, 8) for v in levels if math.isfinite(v))


def _buy(ctx: _Ctx, book: _Book, i: int, price: float, setup: bool, now: datetime) -> None:
    """`RulesAnalyst.decide`'s buy, `decision_problem`, the gate's `size_entry`, the fill."""
    c = ctx.lists
    size = round(ctx.asset.position_size_pct * confidence(c["n_bull"][i], c["n_bear"][i], setup), 4)
    level = _zone_level(c, i) if setup else None
    stop, take = entry_levels(ctx.rules, c["close"][i], c["atr"][i], level)
    if size <= 0 or (stop is not None and not stop < price) or not take > price:
        return  # `decision_problem` turns this into a HOLD
    if stop_distance_problem(price, stop, ctx.asset, c["atr"][i]) is not None:
        return  # likewise
    equity = book.cash + book.qty * price
    if _status_halted(ctx, book, equity, now):
        return
    entry = size_entry(size, stop, take, asset=ctx.asset, limits=ctx.limits, equity=equity,
                       cash=book.cash, price=price)  # fmt: skip
    if entry.denied:
        return
    fill = market_fill("buy", price, ctx.fee_rate, ctx.slippage, notional=entry.notional)
    book.cash += fill.cash_change
    book.qty, book.avg = books_after(book.qty, book.avg, fill)
    book.stop, book.take = entry.stop, entry.take
    cid = _cid(ctx, i, "BUY")
    book.trades.append(_trade(ctx.symbol, cid, "buy", "signal", fill.qty, fill.price, fill.fee,
                              None, now))  # fmt: skip
    book.limit, book.triggered = ctx.protection.limit_for(entry.stop), False
    book.placed, book.stop_cid = now, f"{cid}-p1"  # `Protector._place`: the entry's id, rev 1


def _venue_stop(ctx: _Ctx, stops: FillBars, book: _Book, now: datetime) -> None:
    """Fill the resting stop where `SimBroker` would (its bars since the last look)."""
    since = book.placed or now
    price, book.triggered, at = stops.first_fill(book.stop, book.limit, book.triggered, since, now)
    book.placed = now
    if price is None or at is None:
        return
    fill = market_fill("sell", price, ctx.fee_rate, 0.0, qty=book.qty)
    pnl = realized_pnl(fill.qty, fill.price, book.avg, fill.fee)
    book.cash += fill.cash_change
    book.qty, book.avg = 0.0, 0.0
    book.trades.append(_trade(ctx.symbol, book.stop_cid, "sell", PROTECT, fill.qty, fill.price,
                              fill.fee, pnl, at))  # fmt: skip


def _sell(ctx: _Ctx, book: _Book, price: float, cid: str, reason: str, now: datetime) -> None:
    fill = market_fill("sell", price, ctx.fee_rate, ctx.slippage, qty=book.qty)
    pnl = realized_pnl(fill.qty, fill.price, book.avg, fill.fee)
    book.cash += fill.cash_change
    book.qty, book.avg = 0.0, 0.0
    book.trades.append(_trade(ctx.symbol, cid, "sell", reason, fill.qty, fill.price, fill.fee,
                              pnl, now))  # fmt: skip


def _snapshot(book: _Book, price: float, now: datetime) -> None:
    """Record the cycle's closing equity, as the engine's equity snapshot does."""
    if book.day != now.date():  # a day without a decision still starts from the last snapshot
        book.day, book.day_start = now.date(), book.last_equity
    equity = book.cash + book.qty * price
    book.last_equity = equity
    book.peak = equity if book.peak is None else max(book.peak, equity)
    if book.day_start is None:
        book.day_start = equity  # the day's first snapshot, when nothing came before it


def _trade(
    symbol: str, cid: str, side: str, reason: str, qty: float, price: float, fee: float,
    pnl: float | None, now: datetime,
) -> dict[str, object]:  # fmt: skip
    values = (cid, symbol, side, reason, qty, price, fee, pnl, iso(now))
    return dict(zip(TRADE_COLUMNS, values, strict=True))
