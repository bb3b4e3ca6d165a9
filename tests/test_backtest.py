"""Backtests replay the real engine: parity with step-by-step cycles, own DB, no look-ahead."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from botlib.analysts.rules import RulesAnalyst
from botlib.backtest import BACKTEST_DIR, TRADE_COLUMNS, BacktestResult, run_backtest
from botlib.backtest_fast import run_fast_backtest
from botlib.clock import ManualClock
from botlib.engine import Engine
from botlib.errors import ConfigError
from botlib.sim import SimBroker, SimMarket
from botlib.store import Store
from tests.ui_helpers import copy_db

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = END - timedelta(days=2)
STEP = timedelta(minutes=15)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    """A 2-day 15-minute BTC/USD backtest (shared: it takes a few seconds)."""
    path = tmp_path_factory.mktemp("bt") / "two_days.db"
    return run_backtest("BTC/USD", START, END, timeframe="15Min", db_path=path)


def stepwise_trades(path: Path, symbol: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Run `Engine.run_cycle` by hand on a fresh DB, one 15-minute clock step at a time."""
    with Store(path) as store:
        store.ensure_asset(symbol, timeframe="15Min", interval_minutes=15)
        clock = ManualClock(start)
        market = SimMarket()
        engine = Engine(market, SimBroker(store, market, clock), RulesAnalyst(), store, clock=clock)
        while clock.now() <= end:
            engine.run_cycle(symbol)
            clock.advance(STEP)
        rows = store.rows(f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades ORDER BY id")
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def test_backtest_trades_match_stepwise_engine_cycles(
    two_days: BacktestResult, tmp_path: Path
) -> None:
    expected = stepwise_trades(tmp_path / "live.db", "BTC/USD", START, END)
    assert len(expected) >= 4, "the window should trade, or parity proves nothing"
    pd.testing.assert_frame_equal(two_days.trades, expected)


def test_results_live_in_the_backtest_db_only(two_days: BacktestResult) -> None:
    with Store(two_days.db_path, read_only=True) as store:
        cycles = store.rows("SELECT count(*) AS n FROM cycles")[0]["n"]
        trades = store.rows("SELECT count(*) AS n FROM trades")[0]["n"]
        params = json.loads(
            store.rows("SELECT value FROM bot_settings WHERE key = 'backtest'")[0]["value"]
        )
    assert cycles == two_days.cycles == 2 * 24 * 4 + 1
    assert trades == len(two_days.trades)
    assert params["id"] == two_days.backtest_id
    assert params["timeframe"] == "15Min"


def test_default_db_is_a_new_file_per_run_under_data_backtests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = run_backtest("SOL/USD", END - timedelta(hours=3), END, timeframe="15Min")
    second = run_backtest("SOL/USD", END - timedelta(hours=3), END, timeframe="15Min")
    assert first.db_path == BACKTEST_DIR / f"{first.backtest_id}.db"
    assert first.db_path != second.db_path
    assert first.db_path.exists() and second.db_path.exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["backtests"]


def test_refuses_an_existing_database_and_leaves_it_untouched(
    demo_db: Path, tmp_path: Path
) -> None:
    live = copy_db(demo_db, tmp_path / "live.db")
    before = live.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        run_backtest("BTC/USD", START, END, timeframe="15Min", db_path=live)
    assert live.read_bytes() == before


def test_no_look_ahead_trades_before_the_cut_are_unchanged(
    two_days: BacktestResult, tmp_path: Path
) -> None:
    cut = END - timedelta(hours=12)
    short = run_backtest("BTC/USD", START, cut, timeframe="15Min", db_path=tmp_path / "cut.db")
    full = two_days.trades
    before = full[full["created_at"] <= cut.isoformat()].reset_index(drop=True)
    assert len(before) >= 2
    pd.testing.assert_frame_equal(short.trades, before)
    pd.testing.assert_series_equal(short.equity, two_days.equity.loc[: short.equity.index[-1]])


def test_metrics_agree_with_the_trades_and_the_curve(two_days: BacktestResult) -> None:
    closed = two_days.trades["realized_pnl"].dropna()
    assert two_days.metrics.n_trades == len(closed)
    final = float(two_days.equity.iloc[-1])
    assert two_days.return_pct == pytest.approx((final / 100_000 - 1) * 100)
    assert two_days.metrics.total_pnl == pytest.approx(final - 100_000)
    assert 0 < two_days.exposure_pct < 100  # it traded, and was flat some of the time
    market = SimMarket()
    first, last = market.latest_price("BTC/USD", START), market.latest_price("BTC/USD", END)
    assert two_days.buy_and_hold_pct == pytest.approx((last / first - 1) * 100)


def test_fast_path_makes_the_same_trades_at_the_same_prices_over_days(
    two_days: BacktestResult,
) -> None:
    fast = run_fast_backtest("BTC/USD", START, END, timeframe="15Min")
    pd.testing.assert_frame_equal(fast.trades, two_days.trades, check_exact=False, rtol=1e-12)
    assert fast.cycles == two_days.cycles
    assert fast.equity.to_numpy() == pytest.approx(two_days.equity.to_numpy(), rel=1e-12)


@pytest.mark.parametrize(("symbol", "timeframe", "span"), [
    ("ETH/USD", "15Min", timedelta(days=3)),
    ("SOL/USD", "1Min", timedelta(hours=6)),
])  # fmt: skip
def test_fast_path_parity_on_other_assets_and_timeframes(
    symbol: str, timeframe: str, span: timedelta, tmp_path: Path
) -> None:
    end = END - timedelta(days=30)
    slow = run_backtest(symbol, end - span, end, timeframe=timeframe, db_path=tmp_path / "s.db")
    fast = run_fast_backtest(symbol, end - span, end, timeframe=timeframe)
    assert len(slow.trades) >= 2
    pd.testing.assert_frame_equal(fast.trades, slow.trades, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"end": START}, "must be after start"),
    ({"timeframe": "2Min"}, "timeframe '2Min' unknown"),
    ({"analyst": "oracle"}, "analyst 'oracle'"),
    ({"cash": 0}, "cash must be positive"),
    ({"start": START.replace(tzinfo=None)}, "timezone-aware"),
])  # fmt: skip
def test_bad_input_is_refused_before_anything_is_written(
    kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    args: dict[str, object] = {"start": START, "end": END, "db_path": tmp_path / "bt.db"}
    with pytest.raises(ConfigError, match=message):
        run_backtest("BTC/USD", **(args | kwargs))  # type: ignore[arg-type]
    assert not (tmp_path / "bt.db").exists()


def test_fast_path_refuses_a_start_between_bars() -> None:
    with pytest.raises(ConfigError, match="not on a 15Min bar boundary"):
        run_fast_backtest("BTC/USD", START + timedelta(minutes=7), END, timeframe="15Min")
