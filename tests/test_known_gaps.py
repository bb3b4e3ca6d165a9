"""Issue #19's known gaps, each closed with a test named after it (test_gap_...)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from botlib.backtest import run_backtest
from botlib.backtest.block_features import BlockFeatures
from botlib.clock import ManualClock
from botlib.core.cycle_features import LiveFeatures
from botlib.core.decision_checks import stop_distance_problem
from botlib.errors import DataError
from botlib.features.smc.summary import summary
from botlib.models import AssetSettings
from botlib.reporting.analytics import periods_per_year, sharpe_ratio
from botlib.storage.store import Store
from botlib.venues.stored_bars import FrameMarket
from tests.conftest import openai_engine
from tests.fakes.openai_server import FakeOpenAI, buy, prompt_price
from tests.test_fuzz_decisions import MEGABYTE, answer_text, untokenised

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_gap_an_smc_summary_of_an_empty_frame_says_so() -> None:
    empty = pd.DataFrame(columns=["open", "high", "low", "close", "volume"], dtype=float)
    empty.index = pd.DatetimeIndex([], tz="UTC")
    with pytest.raises(ValueError, match="needs at least one bar"):
        summary(empty)


def test_gap_flat_prices_fail_as_a_flat_market_not_as_too_little_history(tmp_path: Path) -> None:
    index = pd.date_range(T0 - timedelta(hours=300), periods=300, freq="h", tz="UTC")
    prices = np.full(300, 1.0)  # a pegged coin, or a market that stopped trading
    bars = pd.DataFrame({"open": prices, "high": prices, "low": prices, "close": prices,
                         "volume": 1.0}, index=index)  # fmt: skip
    market = FrameMarket("BTC/USD", "1Hour", bars)
    asset = AssetSettings(symbol="BTC/USD", timeframe="1Hour")
    flat = "the price has not moved in 300 bars"
    with Store(tmp_path / "a.db") as store, pytest.raises(DataError, match=flat) as live:
        LiveFeatures(market, store).features(asset, T0)
    with Store(tmp_path / "b.db") as store:
        block = BlockFeatures(market, store, "BTC/USD", "1Hour", [T0])
        with pytest.raises(DataError) as replay:
            block.features(asset, T0)
    assert str(replay.value) == str(live.value)  # the backtest says it the same way
    assert "too little history" not in str(live.value)
    bars.iloc[10, :4] = 1.01  # one move in the window: RSI is defined again
    with Store(tmp_path / "c.db") as store:
        moved = LiveFeatures(FrameMarket("BTC/USD", "1Hour", bars), store).features(asset, T0)
    assert math.isfinite(moved["rsi"].iloc[-1])


def test_gap_a_rejected_answer_is_stored_once(tmp_path: Path) -> None:
    with FakeOpenAI() as fake, Store(tmp_path / "bot.db") as store:
        fake.push(untokenised(lambda r: answer_text(r, reasoning=MEGABYTE)))
        report = openai_engine(fake, store, ManualClock(T0)).run_cycle("BTC/USD", force=True)
        row = store.rows("SELECT * FROM ai_decision_logs")[0]
    assert report.action == "HOLD" and row["error"]
    assert row["response"] is None  # not a second copy of the megabyte
    assert MEGABYTE in row["raw_response"]
    stored = sum(len(row[k] or "") for k in ("reasoning", "response", "raw_response", "error"))
    assert stored < 1.2 * len(MEGABYTE)


def test_gap_sharpe_is_annualised_by_the_bars_a_year_the_data_has() -> None:
    days = pd.bdate_range("2025-01-01", "2026-01-01", tz="UTC")  # weekdays only: FX, equities
    rng = np.random.default_rng(3)
    equity = pd.Series(100 * np.cumprod(1 + rng.normal(0.001, 0.01, len(days))), index=days)
    per_year = periods_per_year(pd.DatetimeIndex(equity.index))
    assert per_year is not None and 255 < per_year < 265  # not 365
    returns = equity.pct_change().dropna()
    expected = returns.mean() / returns.std() * math.sqrt(per_year)
    assert sharpe_ratio(equity) == pytest.approx(expected)
    every_day = returns.mean() / returns.std() * math.sqrt(365)
    assert sharpe_ratio(equity) < every_day  # what the 24/7 assumption overstated


def test_gap_the_report_states_the_bars_a_year_its_sharpe_used(tmp_path: Path) -> None:
    result = run_backtest("BTC/USD", T0 - timedelta(days=2), T0, timeframe="15Min",
                          db_path=tmp_path / "r.db")  # fmt: skip
    table = dict(result.table().itertuples(index=False))
    assert table["Sharpe bars/year"] == pytest.approx(365 * 96)  # 15-minute bars, every day


def test_gap_a_stop_too_far_below_the_entry_is_rejected(tmp_path: Path) -> None:
    far = buy(stop_loss=lambda r: round(prompt_price(r) * 0.85, 2))  # 15 % below
    with FakeOpenAI() as fake, Store(tmp_path / "bot.db") as store:
        clock = ManualClock(T0)
        engine = openai_engine(fake, store, clock)
        fake.push(far)
        refused = engine.run_cycle("BTC/USD", force=True)
        row = store.rows("SELECT action, error FROM ai_decision_logs ORDER BY id DESC LIMIT 1")[0]
        assert refused.action == "HOLD" and row["action"] == "HOLD"
        assert "below the entry" in row["error"] and "max_stop_pct 10%" in row["error"]
        store.update_asset("BTC/USD", max_stop_pct=20.0)  # the operator allows it for this asset
        clock.advance(timedelta(minutes=15))
        fake.push(far)
        assert engine.run_cycle("BTC/USD", force=True).action == "BUY"
    asset = AssetSettings(symbol="BTC/USD", max_stop_atr=2.0)
    assert stop_distance_problem(100.0, 95.0, asset, 2.0) is not None  # 2.5 ATR
    assert stop_distance_problem(100.0, 97.0, asset, 2.0) is None  # 1.5 ATR
    assert stop_distance_problem(100.0, 95.0, AssetSettings(symbol="BTC/USD"), 2.0) is None
