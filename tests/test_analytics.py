import doctest
import importlib

import numpy as np
import pandas as pd
import pytest

from botlib.reporting.analytics import (
    drawdown,
    max_drawdown_pct,
    metrics,
    sharpe_ratio,
    trade_stats,
)


@pytest.mark.parametrize(
    "module",
    [
        "botlib.reporting.analytics",
        "botlib.features.indicators",
        "botlib.clock",
        "botlib.venues.sim",
        "botlib.features.smc.pivots",
        "botlib.features.smc.structure",
        "botlib.features.smc.gaps",
        "botlib.features.smc.liquidity",
        "botlib.features.smc.sessions",
        "botlib.features.smc.summary",
        "botlib.analysts.smc_rules",
        "botlib.analysts.schema",
        "botlib.analysts.pricing",
        "botlib.ui.shaping.charts",
        "botlib.ui.shaping.downsample",
        "botlib.venues.alpaca.symbols",
        "botlib.venues.alpaca.market",
        "botlib.venues.alpaca.broker",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_drawdown_is_measured_from_the_running_peak() -> None:
    eq = pd.Series([100.0, 110.0, 99.0, 121.0, 60.5])
    assert drawdown(eq).round(3).tolist() == [0.0, 0.0, -0.1, 0.0, -0.5]
    assert max_drawdown_pct(eq) == 50.0
    assert max_drawdown_pct(pd.Series(dtype=float)) == 0.0


def test_sharpe_uses_the_sampling_period() -> None:
    rng = np.random.default_rng(1)
    returns = rng.normal(0.001, 0.01, 500)
    hourly = pd.Series(
        100 * np.cumprod(1 + returns), index=pd.date_range("2026", periods=500, freq="h", tz="UTC")
    )
    daily = hourly.set_axis(pd.date_range("2026", periods=500, freq="D", tz="UTC"))
    r = hourly.pct_change().dropna()
    assert sharpe_ratio(hourly) == pytest.approx(r.mean() / r.std() * np.sqrt(365 * 24))
    assert sharpe_ratio(hourly) / sharpe_ratio(daily) == pytest.approx(np.sqrt(24))  # type: ignore[operator]
    flat = pd.Series([1.0] * 5, index=pd.date_range("2026", periods=5, freq="h", tz="UTC"))
    assert sharpe_ratio(flat) is None
    assert sharpe_ratio(hourly.iloc[:2]) is None


def test_trade_stats() -> None:
    stats = trade_stats(pd.Series([30.0, -10.0, -20.0, 50.0]))
    assert stats == {
        "n_trades": 4,
        "win_rate": 0.5,
        "avg_win": 40.0,
        "avg_loss": -15.0,
        "profit_factor": 80.0 / 30.0,
    }
    empty = trade_stats(pd.Series(dtype=float))
    assert empty["win_rate"] is None and empty["profit_factor"] is None


def test_metrics_bundle() -> None:
    eq = pd.Series([100.0, 90.0, 120.0], index=pd.date_range("2026", periods=3, freq="h", tz="UTC"))
    m = metrics(eq, pd.Series([20.0]), 20.0)
    assert (m.n_trades, m.win_rate, m.max_drawdown_pct, m.total_pnl) == (1, 1.0, 10.0, 20.0)
    assert m.as_dict()["sharpe"] == m.sharpe
