"""Backtests replay the real engine: parity with live-mode cycles at any length, own DB, no
look-ahead, the fast path equal to the engine path to the last bit, stored bars, LLM replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from botlib.analysts.rules import RuleParams, RulesAnalyst
from botlib.app.config import load_settings
from botlib.app.wiring import build_engine, llm_config
from botlib.backtest import (
    BACKTEST_DIR,
    TRADE_COLUMNS,
    BacktestResult,
    Sizing,
    list_backtests,
    load_backtest,
    run_backtest,
)
from botlib.backtest.fast_path import run_fast_backtest
from botlib.clock import ManualClock
from botlib.errors import ConfigError, DataError
from botlib.features.window import WINDOW_BLOCK
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket
from botlib.venues.stored_bars import FrameMarket
from tests.conftest import openai_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.ui_helpers import copy_db

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = END - timedelta(days=2)
STEP = timedelta(minutes=15)


def block_boundary(minutes: int, near: datetime = END) -> datetime:
    """The last feature-window block boundary before `near` (where every window jumps)."""
    span = WINDOW_BLOCK * minutes * 60
    return datetime.fromtimestamp(int(near.timestamp()) // span * span, UTC)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    """A 2-day 15-minute BTC/USD backtest on the engine path (shared: it takes seconds)."""
    path = tmp_path_factory.mktemp("bt") / "two_days.db"
    return run_backtest("BTC/USD", START, END, timeframe="15Min", path="engine", db_path=path)


def stepwise_trades(path: Path, symbol: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Live-mode cycles: the production wiring in sim mode, one 15-minute clock step at a time."""
    settings = load_settings(None, mode="sim", analyst="rules", db_path=path)
    with Store(path) as store:
        store.ensure_asset(symbol, timeframe="15Min", interval_minutes=15)
        clock = ManualClock(start)
        engine = build_engine(settings, store, clock)
        while clock.now() <= end:
            engine.run_cycle(symbol)
            clock.advance(STEP)
        rows = store.rows(f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades ORDER BY id")
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


@pytest.mark.slow
def test_backtest_trades_match_live_mode_cycles(two_days: BacktestResult, tmp_path: Path) -> None:
    expected = stepwise_trades(tmp_path / "live.db", "BTC/USD", START, END)
    assert len(expected) >= 4, "the window should trade, or parity proves nothing"
    pd.testing.assert_frame_equal(two_days.trades, expected)
    fast = run_backtest("BTC/USD", START, END, timeframe="15Min", db_path=tmp_path / "f.db")
    assert fast.path == "fast"  # the default for the rules analyst
    pd.testing.assert_frame_equal(fast.trades, expected, check_exact=True)


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
    assert params["timeframe"] == "15Min" and params["path"] == "engine"


def test_the_report_is_stored_under_its_id_and_reads_back(two_days: BacktestResult) -> None:
    loaded = load_backtest(two_days.db_path)
    assert loaded.backtest_id == two_days.backtest_id and loaded.path == "engine"
    pd.testing.assert_frame_equal(loaded.trades, two_days.trades)
    pd.testing.assert_series_equal(loaded.equity, two_days.equity, check_freq=False)
    assert loaded.metrics == two_days.metrics
    listed = list_backtests(two_days.db_path.parent)
    assert listed["id"].tolist() == [two_days.backtest_id]
    assert listed["trades"].iloc[0] == two_days.metrics.n_trades
    table = two_days.table().set_index("metric")["value"]
    assert table["trades (closed)"] == two_days.metrics.n_trades
    assert table["LLM calls"] == 0  # the rules analyst costs nothing
    assert (two_days.drawdown <= 0).all() and two_days.drawdown.min() == pytest.approx(
        -two_days.metrics.max_drawdown_pct
    )


def test_default_db_is_a_new_file_per_run_under_data_backtests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = run_backtest("SOL/USD", END - timedelta(hours=3), END, timeframe="15Min")
    second = run_backtest(
        "SOL/USD", END - timedelta(hours=3), END, timeframe="15Min", path="engine"
    )
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


@pytest.mark.slow
def test_no_look_ahead_trades_before_the_cut_are_unchanged(
    two_days: BacktestResult, tmp_path: Path
) -> None:
    cut = END - timedelta(hours=12)
    full = two_days.trades
    before = full[full["created_at"] <= cut.isoformat()].reset_index(drop=True)
    assert len(before) >= 2
    for path in ("engine", "fast"):
        short = run_backtest("BTC/USD", START, cut, timeframe="15Min", path=path,
                             db_path=tmp_path / f"cut-{path}.db")  # fmt: skip
        pd.testing.assert_frame_equal(short.trades, before)
        expected = two_days.equity.loc[: short.equity.index[-1]]
        pd.testing.assert_series_equal(short.equity, expected, check_freq=False)


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


def test_fast_path_equals_the_engine_path_to_the_last_bit(two_days: BacktestResult) -> None:
    fast = run_fast_backtest("BTC/USD", START, END, timeframe="15Min")
    pd.testing.assert_frame_equal(fast.trades, two_days.trades, check_exact=True)
    assert fast.cycles == two_days.cycles
    assert fast.equity.to_numpy().tolist() == two_days.equity.to_numpy().tolist()


def _both_paths(
    tmp_path: Path, name: str, paths: tuple[str, str], **kw: Any
) -> dict[str, BacktestResult]:
    """The two days of `two_days` replayed on each of `paths`, each into its own database."""
    return {
        path: run_backtest(
            "BTC/USD",
            START,
            END,
            timeframe="15Min",
            path=path,
            db_path=tmp_path / f"{name}-{path}.db",
            **kw,
        )
        for path in paths
    }


@pytest.mark.slow
def test_a_changed_rule_changes_both_paths_alike(two_days: BacktestResult, tmp_path: Path) -> None:
    """The rules' numbers live in `RuleParams` only: both paths read the changed ones."""
    rules = RulesAnalyst(RuleParams(atr_stop=1.0, atr_target=1.5, rsi_exit=70.0, trend_votes=4))
    runs = _both_paths(tmp_path, "rules", ("auto", "engine"), analyst=rules)
    assert runs["auto"].path == "fast"  # a rules analyst instance replays fast too
    pd.testing.assert_frame_equal(runs["auto"].trades, runs["engine"].trades, check_exact=True)
    assert runs["auto"].equity.tolist() == runs["engine"].equity.tolist()
    assert len(runs["auto"].trades) != len(two_days.trades)  # the parameters mattered
    take = runs["engine"].trades.query("reason == 'take_profit'")
    assert len(take), "tighter targets should be reached in two days"
    with Store(runs["auto"].db_path) as store:
        (row,) = store.rows("SELECT value FROM bot_settings WHERE key = 'backtest'")
    assert json.loads(row["value"])["rules"]["atr_target"] == 1.5  # stored beside the results


@pytest.mark.slow
@pytest.mark.parametrize(("symbol", "timeframe", "before", "after"), [
    ("ETH/USD", "15Min", timedelta(days=2), timedelta(days=1)),
    ("SOL/USD", "1Min", timedelta(hours=3), timedelta(hours=2)),
])  # fmt: skip
def test_parity_holds_across_a_feature_window_boundary(
    symbol: str, timeframe: str, before: timedelta, after: timedelta, tmp_path: Path
) -> None:
    """Where every cycle's window jumps forward a block: the old fast path diverged here."""
    minutes = 15 if timeframe == "15Min" else 1
    boundary = block_boundary(minutes, END - timedelta(days=30))
    start, end = boundary - before, boundary + after
    slow = run_backtest(symbol, start, end, timeframe=timeframe, path="engine",
                        db_path=tmp_path / "s.db")  # fmt: skip
    fast = run_fast_backtest(symbol, start, end, timeframe=timeframe)
    assert len(slow.trades) >= 2
    crossing = slow.trades["created_at"] > boundary.isoformat()
    assert crossing.any(), "a trade after the boundary, or the test proves nothing"
    pd.testing.assert_frame_equal(fast.trades, slow.trades, check_exact=True)
    assert fast.equity.to_numpy().tolist() == slow.equity.to_numpy().tolist()


@pytest.mark.slow
def test_stored_bars_replay_with_gaps_on_both_paths(
    two_days: BacktestResult, tmp_path: Path
) -> None:
    """A bot's saved bars (here the engine run's own), with a hole: one cycle per stored bar."""
    stored = FrameMarket.from_store(two_days.db_path, "BTC/USD", "15Min")
    assert stored.frame.index[0] <= START - timedelta(days=5)  # the windows' history came along
    # the stored bars are the simulated ones: without venue stops (whose fills need the
    # minute bars a 15-minute store does not have) both replay the same trades
    runs = [
        run_backtest("BTC/USD", START, END, timeframe="15Min", market=market,
                     db_path=tmp_path / f"same-{k}.db", stop_band_pct=None)
        for k, market in enumerate((stored, SimMarket()))
    ]  # fmt: skip
    assert len(runs[1].trades) >= 4
    pd.testing.assert_frame_equal(runs[0].trades, runs[1].trades, check_exact=True)
    hole = (stored.frame.index > START + timedelta(hours=20)) & (
        stored.frame.index <= START + timedelta(hours=26)
    )
    holed = FrameMarket("BTC/USD", "15Min", stored.frame[~hole])
    runs = _both_paths(tmp_path, "hole", ("engine", "fast"), market=holed)
    assert runs["engine"].cycles == two_days.cycles - int(hole.sum())
    assert len(runs["engine"].trades) >= 2
    pd.testing.assert_frame_equal(runs["fast"].trades, runs["engine"].trades, check_exact=True)


def test_a_csv_of_bars_replays_and_a_wrong_symbol_is_refused(tmp_path: Path) -> None:
    bars = SimMarket().bars("BTC/USD", "15Min", END, 800)
    csv = tmp_path / "bars.csv"
    bars.reset_index().rename(columns={"ts": "Time"}).to_csv(csv, index=False)
    market = FrameMarket.from_csv(csv, "BTC/USD", "15Min")
    pd.testing.assert_frame_equal(market.frame, bars, check_freq=False)
    with pytest.raises(DataError, match="holds BTC/USD 15Min, not ETH/USD"):
        market.bars("ETH/USD", "15Min", END, 10)
    with pytest.raises(DataError, match="replayed bar"):  # nothing stored that far back
        run_fast_backtest("BTC/USD", END - timedelta(days=30), END, timeframe="15Min",
                          market=FrameMarket("BTC/USD", "15Min", bars.iloc[::2]))  # fmt: skip


def test_openai_backtest_records_once_then_replays_at_no_cost(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    start, end, cache = END - timedelta(hours=2), END, tmp_path / "llm_cache.db"
    settings = openai_settings(fake_openai)
    recorded = run_backtest("BTC/USD", start, end, timeframe="15Min", analyst="openai",
                            llm=llm_config(settings), llm_cache="record", cache_db=cache,
                            db_path=tmp_path / "rec.db")  # fmt: skip
    assert recorded.path == "engine" and recorded.llm["calls"] == recorded.cycles == 9
    assert len(fake_openai.requests) == 9
    assert recorded.llm["prompt_tokens"] > 0 and recorded.llm["cost_usd"] > 0
    offline = load_settings(None, analyst="openai", openai_base_url="http://127.0.0.1:9/v1")
    replayed = run_backtest("BTC/USD", start, end, timeframe="15Min", analyst="openai",
                            llm=llm_config(offline), llm_cache="replay", cache_db=cache,
                            db_path=tmp_path / "rep.db")  # fmt: skip
    assert len(fake_openai.requests) == 9  # not one more call
    assert replayed.llm["cache_hits"] == replayed.llm["calls"] == 9
    assert replayed.llm["cost_usd"] == 0
    with Store(tmp_path / "rec.db", read_only=True) as a, Store(tmp_path / "rep.db") as b:
        query = "SELECT action, reasoning FROM ai_decision_logs ORDER BY id"
        assert a.rows(query) == b.rows(query)
    never = tmp_path / "never.db"
    with pytest.raises(ConfigError, match="replay cache has no answer for the cycle at"):
        run_backtest("BTC/USD", start - timedelta(days=1), end - timedelta(days=1),
                     timeframe="15Min", analyst="openai", llm=llm_config(offline), cache_db=cache,
                     db_path=never)  # fmt: skip
    assert not never.exists()  # stored whole or not at all
    with pytest.raises(ConfigError, match="replays the rules analyst only"):
        run_backtest("BTC/USD", start, end, analyst="openai", path="fast", llm=llm_config(offline))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"end": START}, "must be after start"),
    ({"timeframe": "2Min"}, "timeframe '2Min' unknown"),
    ({"analyst": "oracle"}, "analyst 'oracle'"),
    ({"analyst": "openai", "llm_cache": "off"}, "llm_cache 'off'"),
    ({"path": "warp"}, "path 'warp'"),
    ({"cash": 0}, "cash must be positive"),
    ({"start": START.replace(tzinfo=None)}, "timezone-aware"),
    ({"stop_band_pct": 0.0}, "stop_band_pct must be > 0"),
    ({"stop_band_pct": float("nan")}, "stop_band_pct must be > 0"),
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


def test_sizing_is_a_run_parameter_and_both_paths_agree_all_in(tmp_path: Path) -> None:
    """`Sizing(100, 100)`: entries far above the live 10 % / 25 % caps, the same on both paths,
    stored with the run; out-of-range sizes are refused before anything is written."""
    runs = _both_paths(tmp_path, "all-in", ("engine", "fast"), sizing=Sizing(100, 100))
    pd.testing.assert_frame_equal(runs["fast"].trades, runs["engine"].trades, check_exact=True)
    pd.testing.assert_series_equal(runs["fast"].equity, runs["engine"].equity, check_exact=True)
    buys = runs["fast"].trades[runs["fast"].trades["side"] == "buy"]
    assert len(buys) >= 2
    first = buys.iloc[0]
    assert first["qty"] * first["price"] > 0.25 * 100_000  # over the live default cap
    default = run_backtest("BTC/USD", START, END, timeframe="15Min", db_path=tmp_path / "d.db")
    entry = default.trades[default.trades["side"] == "buy"].iloc[0]
    assert entry["qty"] * entry["price"] <= 0.10 * 100_000 + 0.01  # the live 10 %, as before
    with Store(runs["engine"].db_path, read_only=True) as store:
        stored = json.loads(store.rows("SELECT value FROM bot_settings WHERE key = 'backtest'")[0]
                            ["value"])  # fmt: skip
        assert (stored["position_pct"], stored["max_position_pct"]) == (100, 100)
        assert store.get_asset("BTC/USD").position_size_pct == 100
    for bad in (0, -5, 101, float("nan")):
        with pytest.raises(ConfigError, match="must be > 0 and <= 100"):
            Sizing(max_position_pct=bad)
