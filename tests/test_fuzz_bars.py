"""Broken market data: a corrupted OHLCV frame or price is refused with its reason, and a cycle
fed one records that reason and places no order (issue #8).

Two layers:
- hypothesis corrupts a valid simulator frame (NaN/inf, prices <= 0 or absurd, high < low,
  open/close outside the bar, negative volume, duplicated/unsorted/NaT/naive timestamps,
  strings/objects/booleans, missing or doubled columns, too few rows, not a frame) and stacks
  up to three faults on top of benign variations. `validate_bars` must raise `DataError` naming
  one of them; with no fault the frame must be accepted and the indicators, the SMC features
  and their summary must run without producing inf. The SMC detectors on their own raise a
  ValueError or produce finite output.
- the same faults fed to a real `Engine` (simulator broker, rules analyst) through a
  `MarketData` wrapper: the cycle fails with the reason on its row, nothing is ordered, booked,
  logged or saved, and the database passes `PRAGMA integrity_check`. A NaN/inf/zero/negative
  latest price fails the cycle the same way, also while a position is held.

Accepted on purpose (see `validate_bars`): gaps (crypto venues skip intervals without trades),
any timezone, zero volume, integer columns, extra columns, prices from about 1e-4 to 1e11.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from botlib.analysts.rules import RulesAnalyst
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.errors import DataError
from botlib.features.indicators import INDICATOR_COLUMNS, MIN_BARS, add_indicators, validate_bars
from botlib.features.smc.summary import smc_features, summary
from botlib.models import CycleStatus
from botlib.ops.control import close_now
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import T0
from tests.ledger import tally

SYMBOL = "BTC/USD"
OHLCV = ("open", "high", "low", "close", "volume")
BASE = SimMarket().bars(SYMBOL, "1Hour", T0, 240)  # a valid frame; BTC trades near 9e4
NO_ORDER_TABLES = ("trades", "sim_orders", "order_intents", "ai_decision_logs", "positions")


# faults ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """One corruption: what it does, the words the refusal must use, and when it applies.

    `rank` orders stacked faults so each still applies: values, then timestamps, then dtypes,
    then columns, then the index type, then shrinking, then not a frame at all.
    """

    name: str
    expect: str  # regex the DataError message must match
    rank: int
    apply: Callable[[pd.DataFrame, st.DataObject], Any]


def _row(frame: pd.DataFrame, data: st.DataObject) -> int:
    """Any row, or one of the last three (the bar a cycle trades on)."""
    n = len(frame)
    return data.draw(st.one_of(st.integers(0, n - 1), st.integers(max(n - 3, 0), n - 1)), "row")


def _set(frame: pd.DataFrame, column: str, row: int, value: Any) -> pd.DataFrame:
    out = frame.astype({column: float})  # a copy; an int volume column cannot take NaN or 0.5
    out.iloc[row, out.columns.get_loc(column)] = value
    return out


def nan_or_inf(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    column = data.draw(st.sampled_from(OHLCV), "column")
    value = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]), "value")
    return _set(frame, column, _row(frame, data), value)


def non_positive(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    column = data.draw(st.sampled_from(OHLCV[:4]), "column")
    value = data.draw(st.sampled_from([0.0, -0.0, -1e-9, -1.0, -9e4]), "value")
    return _set(frame, column, _row(frame, data), value)


def absurd_price(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    """A flat bar at a price no asset has (a units slip, a corrupt record)."""
    value = data.draw(st.sampled_from([1e12, 1e15, 1e100, 1e300]), "value")
    out = frame.copy()
    out.iloc[_row(frame, data), [out.columns.get_loc(c) for c in OHLCV[:4]]] = value
    return out


def high_below_low(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    row = _row(frame, data)
    return _set(frame, "high", row, frame["low"].iloc[row] * 0.5)


def open_close_outside(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    column = data.draw(st.sampled_from(["open", "close"]), "column")
    row = _row(frame, data)
    above = data.draw(st.booleans(), "above")
    value = frame["high"].iloc[row] * 1.05 if above else frame["low"].iloc[row] * 0.95
    return _set(frame, column, row, value)


def negative_volume(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return _set(frame, "volume", _row(frame, data), -data.draw(st.floats(1e-6, 1e6), "vol"))


def duplicate_timestamp(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    row = max(_row(frame, data), 1)
    if data.draw(st.booleans(), "append"):
        return pd.concat([frame, frame.iloc[[row]]]).sort_index(kind="stable")
    index = frame.index.to_numpy().copy()
    index[row] = index[row - 1]
    return frame.set_axis(pd.DatetimeIndex(index, tz=frame.index.tz))


def unsorted(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    if data.draw(st.booleans(), "reverse"):
        return frame.iloc[::-1]
    i = data.draw(st.integers(0, len(frame) - 2), "i")
    j = data.draw(st.integers(i + 1, len(frame) - 1), "j")
    order = list(range(len(frame)))
    order[i], order[j] = order[j], order[i]
    return frame.iloc[order]


def nat_timestamp(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    row = _row(frame, data)
    return frame.set_axis(frame.index.where(np.arange(len(frame)) != row))


def strings(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    column = data.draw(st.sampled_from(OHLCV), "column")
    kind = data.draw(st.sampled_from(["numeric text", "junk cell", "object", "bool"]), "kind")
    out = frame.copy()
    if kind == "numeric text":  # "93714.2": would compare as text, not as a number
        out[column] = out[column].astype(str)
    elif kind == "junk cell":
        out[column] = out[column].astype(object)
        out.iloc[_row(frame, data), out.columns.get_loc(column)] = "n/a"
    elif kind == "object":  # floats in an object column break pandas-ta's numba kernels
        out[column] = out[column].astype(object)
    else:
        out[column] = out[column] > out[column].median()
    return out


def missing_column(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return frame.drop(columns=data.draw(st.sampled_from(OHLCV), "column"))


def doubled_column(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    present = [c for c in OHLCV if c in frame.columns]  # one may have been dropped already
    column = data.draw(st.sampled_from(present), "column")
    return pd.concat([frame, frame[[column]]], axis=1)


def naive_index(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return frame.tz_localize(None) if frame.index.tz is not None else frame


def range_index(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return frame.reset_index(drop=True)


def too_short(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return frame.iloc[: data.draw(st.sampled_from([0, 1, 2, MIN_BARS - 1]), "rows")]


def not_a_frame(frame: pd.DataFrame, data: st.DataObject) -> Any:
    others = [None, frame.to_numpy(), frame.iloc[:, 0], {}, "bars.csv"]  # iloc: always a Series
    return data.draw(st.sampled_from(others), "other")


FAULTS = (
    Fault("nan_or_inf", "NaN or infinite", 0, nan_or_inf),
    Fault("non_positive", "non-positive", 0, non_positive),
    Fault("absurd_price", r"prices >= 1e\+12", 0, absurd_price),
    Fault("high_below_low", "high below", 0, high_below_low),
    Fault("open_close_outside", "high below|low above", 0, open_close_outside),
    Fault("negative_volume", "negative volume", 0, negative_volume),
    Fault("duplicate_timestamp", "duplicated timestamps", 1, duplicate_timestamp),
    Fault("unsorted", "out of order", 1, unsorted),
    Fault("nat_timestamp", r"NaT", 1, nat_timestamp),
    Fault("strings", "not numeric", 2, strings),
    Fault("missing_column", "lack column", 3, missing_column),
    Fault("doubled_column", "duplicated column", 4, doubled_column),
    Fault("naive_index", "timezone-aware", 5, naive_index),
    Fault("range_index", "DatetimeIndex", 6, range_index),
    Fault("too_short", "at least", 7, too_short),
    Fault("not_a_frame", "must be a pandas DataFrame", 8, not_a_frame),
)


def corrupt(frame: pd.DataFrame, faults: list[Fault], data: st.DataObject) -> Any:
    """Apply `faults` in rank order (each still applies to what the previous ones left)."""
    out: Any = frame
    for fault in sorted(faults, key=lambda f: f.rank):
        out = fault.apply(out, data)
    return out


# benign variations: real feeds look like this and must be accepted ---------------------------
@st.composite
def benign(draw: st.DrawFn, frame: pd.DataFrame = BASE) -> pd.DataFrame:
    """A valid frame: a tail of `frame`, gaps, a timezone, scaled prices, odd but legal columns."""
    out = frame.iloc[-draw(st.integers(MIN_BARS + 20, len(frame)), "rows") :]
    for _ in range(draw(st.integers(0, 3), "gaps")):  # missing bars: crypto skips idle minutes
        start = draw(st.integers(0, len(out) - MIN_BARS - 1), "gap at")
        out = out.drop(out.index[start : start + draw(st.integers(1, 6), "gap")])
    scale = 10 ** draw(st.floats(-9, 6), "scale exponent")  # 9e-5 .. 9e10 for BTC
    out = out.assign(**{c: out[c] * scale for c in OHLCV[:4]})
    tz = draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]), "tz")
    out = out.tz_convert(tz)
    volume = draw(st.sampled_from(["float", "int", "zero"]), "volume")
    if volume != "float":
        out = out.assign(volume=0 if volume == "zero" else out["volume"].round().astype("int64"))
    if draw(st.booleans(), "extra column"):
        out = out.assign(trade_count=7, vwap=out["close"])
    return out


def finite_everywhere(frame: pd.DataFrame) -> bool:
    numbers = frame.select_dtypes("number").to_numpy(dtype=float)
    return not np.isinf(numbers).any()


def summary_numbers(value: Any) -> Iterator[float]:
    if isinstance(value, dict):
        for item in value.values():
            yield from summary_numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield float(value)


# property A: validate_bars and the pure computations ------------------------------------------
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=benign(), data=st.data())
def test_each_fault_alone_is_refused_with_its_own_words(
    fault: Fault, frame: pd.DataFrame, data: st.DataObject
) -> None:
    with pytest.raises(DataError, match=fault.expect):
        validate_bars(fault.apply(frame, data))
    tally(fuzz_cases=1)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=benign(),
    faults=st.lists(st.sampled_from(FAULTS), max_size=3, unique_by=lambda f: f.name),
    data=st.data(),
)
def test_bad_bars_are_refused_by_name_and_good_ones_compute_finite(
    frame: pd.DataFrame, faults: list[Fault], data: st.DataObject
) -> None:
    bars = corrupt(frame, faults, data)
    tally(fuzz_cases=1)
    event(f"{len(faults)} fault(s)")  # --hypothesis-show-statistics: how often each size ran
    if faults:
        expected = "|".join(f.expect for f in faults)
        with pytest.raises(DataError) as refused:
            validate_bars(bars)
        assert re.search(expected, str(refused.value)), (str(refused.value), expected)
    else:
        validate_bars(bars)
        features = add_indicators(bars)
        assert finite_everywhere(features)
        assert features[list(INDICATOR_COLUMNS)].iloc[-1].notna().all()
        smc_finite(bars, smc_features(bars))  # accepted bars: the detectors must not refuse
    if isinstance(bars, pd.DataFrame):
        smc_finite_or_value_error(bars)


def smc_finite_or_value_error(bars: pd.DataFrame) -> None:
    """The SMC detectors, called on their own, refuse with ValueError or produce finite output."""
    refusal = None
    try:
        features = smc_features(bars)
    except ValueError as exc:
        refusal = str(exc)
    if refusal is not None:
        assert refusal.strip()  # a message that names the problem, not a bare ValueError
        return
    smc_finite(bars, features)


def smc_finite(bars: pd.DataFrame, features: pd.DataFrame) -> None:
    assert finite_everywhere(features)
    if len(bars):  # the summary of the last bar (there is none in an empty frame)
        facts = summary(bars, features=features)
        assert all(math.isfinite(x) for x in summary_numbers(facts)), facts


# property B: a real engine cycle fed the broken frame -----------------------------------------
class BrokenMarket:
    """The `MarketData` port over the simulator, with the bars or the price corrupted."""

    def __init__(self, corrupt_bars: Callable[[pd.DataFrame], Any] | None = None) -> None:
        self.inner = SimMarket()
        self.corrupt_bars = corrupt_bars
        self.price: Any = None  # None: the simulator's price

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> Any:
        frame = self.inner.bars(symbol, timeframe, end, limit)
        return frame if self.corrupt_bars is None else self.corrupt_bars(frame)

    def latest_price(self, symbol: str, at: datetime) -> float:
        return self.inner.latest_price(symbol, at) if self.price is None else self.price


@contextmanager
def sim_engine(market: BrokenMarket) -> Iterator[Engine]:
    """A real engine on a fresh database: the simulator broker (sharing `market`, as the sim
    wiring does) and the rules analyst."""
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bot.db") as store:
        clock = ManualClock(T0)
        ensure_assets(store, [SYMBOL, "SOL/USD"])
        yield Engine(market, SimBroker(store, market, clock), RulesAnalyst(), store, clock=clock)


def counts(store: Store) -> dict[str, int]:
    return {table: store.db[table].count for table in NO_ORDER_TABLES}


def assert_failed_without_order(engine: Engine, report: Any, expected: str) -> None:
    store = engine.store
    assert report.status is CycleStatus.FAILED, report
    [cycle] = store.rows("SELECT * FROM cycles")
    assert cycle["status"] == "failed" and cycle["error"] == "DataError", cycle
    assert re.search(expected, cycle["reason"]), (cycle["reason"], expected)
    assert report.reason == cycle["reason"]
    assert counts(store) == dict.fromkeys(NO_ORDER_TABLES, 0)
    assert engine.broker.positions() == [] and engine.broker.account().cash == 100_000.0
    assert store.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=2, unique_by=lambda f: f.name),
    data=st.data(),
)
def test_a_cycle_fed_broken_bars_fails_with_the_reason_and_orders_nothing(
    faults: list[Fault], data: st.DataObject
) -> None:
    market = BrokenMarket(lambda frame: corrupt(frame, faults, data))
    with sim_engine(market) as engine:
        report = engine.run_cycle(SYMBOL, force=True)
        assert_failed_without_order(engine, report, "|".join(f.expect for f in faults))
        assert engine.store.db["market_data"].count == 0  # refused bars are never saved
    tally(fuzz_cases=1, cycles_run=1, faults_injected=1, orders_checked=1)


def test_the_same_engine_with_good_bars_does_order() -> None:
    """The control for the two tests around it: unbroken, this setup buys."""
    with sim_engine(BrokenMarket()) as engine:
        report = engine.run_cycle(SYMBOL, force=True)
        assert report.status is CycleStatus.OK and report.action == "BUY" and report.orders
        assert engine.store.db["sim_orders"].count == 1
    tally(cycles_run=1)


def test_a_feed_that_stopped_skips_the_cycle_and_orders_nothing() -> None:
    market = BrokenMarket(lambda frame: frame.iloc[:-5])  # the last 5 hourly bars never came
    with sim_engine(market) as engine:
        report = engine.run_cycle(SYMBOL, force=True)
        assert report.status is CycleStatus.SKIPPED and report.reason.startswith("stale data")
        [cycle] = engine.store.rows("SELECT * FROM cycles")
        assert cycle["status"] == "skipped" and cycle["reason"] == report.reason
        assert engine.store.db["sim_orders"].count == engine.store.db["trades"].count == 0
    tally(cycles_run=1, faults_injected=1, orders_checked=1)


BAD_PRICES = [math.nan, math.inf, -math.inf, 0.0, -5.0, 1e13]


@pytest.mark.parametrize("price", BAD_PRICES)
def test_a_broken_latest_price_fails_the_cycle_before_anything_is_sized(price: float) -> None:
    market = BrokenMarket()
    market.price = price
    with sim_engine(market) as engine:
        report = engine.run_cycle(SYMBOL, force=True)
        assert_failed_without_order(engine, report, f"latest price for {SYMBOL} is")
    tally(cycles_run=1, faults_injected=1, orders_checked=1)


@pytest.mark.parametrize("price", BAD_PRICES)
def test_a_broken_price_while_holding_sells_nothing_and_keeps_the_books_finite(
    price: float,
) -> None:
    """Regression: a NaN price reached the simulator's fill (its cash became NULL), inf made
    equity inf. Here the stop is moved above the market, so without the price check the
    engine's exit would sell at the broken price."""
    market = BrokenMarket()
    with sim_engine(market) as engine:
        store = engine.store
        assert engine.run_cycle(SYMBOL, force=True).orders  # bought at a good price
        cash = engine.broker.account().cash
        store.db.execute("UPDATE positions SET stop_loss = 1e9 WHERE symbol = ?", [SYMBOL])
        clock = engine.clock
        assert isinstance(clock, ManualClock)
        clock.set(T0 + timedelta(hours=1))
        market.price = price
        report = engine.run_cycle(SYMBOL, force=True)
        assert report.status is CycleStatus.FAILED
        assert report.reason.startswith(f"latest price for {SYMBOL} is")
        assert store.db["sim_orders"].count == 1 and store.db["trades"].count == 1
        [cash_now] = [r["cash"] for r in store.rows("SELECT cash FROM sim_account")]
        assert cash_now == cash and math.isfinite(cash_now)
        assert store.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    tally(cycles_run=2, faults_injected=1, orders_checked=1)


@pytest.mark.parametrize("price", [math.nan, math.inf, 0.0])
def test_a_manual_close_at_a_broken_price_is_refused_by_the_simulator(price: float) -> None:
    """The operator's close goes straight to the broker: the simulator refuses to fill at a
    price it does not have, like a venue, and the books stay as they were."""
    market = BrokenMarket()
    with sim_engine(market) as engine:
        store = engine.store
        assert engine.run_cycle(SYMBOL, force=True).orders
        cash = engine.broker.account().cash
        market.price = price
        message = close_now(engine, SYMBOL, actor="ops", now=T0)
        assert "order rejected" in message and "price" in message, message
        assert store.db["sim_orders"].count == 1 and engine.broker.position(SYMBOL) is not None
        assert engine.broker.account().cash == cash
        [intent] = store.rows("SELECT * FROM order_intents WHERE side = 'sell'")
        assert intent["status"] == "rejected"
    tally(faults_injected=1, orders_checked=1)
