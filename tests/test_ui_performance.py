"""The performance section's widgets: charts drawn from the bucketed curve, the metrics table,
and a large database that still sends at most `MAX_POINTS` points per line."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from botlib.clock import iso
from botlib.models import AssetSettings
from botlib.reporting.analytics import drawdown
from botlib.reporting.monitoring import read_performance
from botlib.storage.store import Store
from botlib.ui.performance import MAX_POINTS, PerformanceSection, curve_arrays, metrics_html
from tests.conftest import T0
from tests.ui_helpers import copy_db


def test_section_draws_the_demo_curve_and_table(demo_db: Path, tmp_path: Path) -> None:
    with Store(copy_db(demo_db, tmp_path / "demo.db"), read_only=True) as store:
        performance = read_performance(store)
    section = PerformanceSection()
    equity, table = section.equity, section.table
    section.show(performance)
    assert section.equity is equity and section.table is table
    assert len(equity.x) == len(performance.curve) > 50
    assert equity.y[-1] == pytest.approx(performance.curve.iloc[-1])
    expected_dd = drawdown(performance.curve).to_numpy() * 100
    assert section.drawdown.y == pytest.approx(expected_dd)
    assert "botlib-performance" in section.widget._dom_classes
    for label in ("BTC/USD", "SOL/USD", "Total"):
        assert f"<td>{label}</td>" in table.value
    assert "Before fees" in table.value and "After LLM" in table.value


def test_metrics_table_escapes_labels() -> None:
    from botlib.reporting.analytics import metrics
    from botlib.reporting.monitoring import PerformanceRow

    row = PerformanceRow("<b>X</b>", metrics(pd.Series(dtype=float), pd.Series([1.0]), 1.0), 0, 0)
    assert "&lt;b&gt;X&lt;/b&gt;" in metrics_html([row]) and "<b>X" not in metrics_html([row])


def test_curve_arrays_keep_the_extremes_of_a_long_curve() -> None:
    index = pd.date_range("2026-01-01", periods=50_000, freq="min", tz="UTC")
    values = np.cumsum(np.random.default_rng(1).normal(size=len(index))) + 1000
    x, y = curve_arrays(pd.Series(values, index=index))
    assert len(x) <= MAX_POINTS
    assert y.min() == values.min() and y.max() == values.max()


def _big_db(path: Path, rows: int) -> Path:
    """Write `rows` equity snapshots (3 assets, one a minute each) and some trades."""
    store = Store(path)
    symbols = ["AAA/USD", "BBB/USD", "CCC/USD"]
    for symbol in symbols:
        store.upsert_asset(AssetSettings(symbol=symbol, interval_minutes=1, timeframe="1Min"))
    rng = random.Random(7)
    equity, snapshots = 100_000.0, []
    for n in range(rows):
        equity *= 1 + rng.gauss(0, 0.0005)
        when = iso(T0 + timedelta(minutes=n // len(symbols)))
        snapshots.append((when, symbols[n % 3], equity, equity / 2, equity - 100_000.0))
    with store.transaction():
        store.db.conn.executemany(
            "INSERT INTO equity_snapshots (ts, symbol, equity, cash, asset_pnl)"
            " VALUES (?, ?, ?, ?, ?)",
            snapshots,
        )
        store.db.conn.executemany(
            "INSERT INTO trades (symbol, side, client_order_id, fee, realized_pnl)"
            " VALUES (?, 'sell', ?, 1.0, ?)",
            [(symbols[n % 3], f"t{n}", rng.gauss(0, 50)) for n in range(3000)],
        )
    store.close()
    return path


def test_a_large_database_draws_at_most_max_points(tmp_path: Path) -> None:
    """Scale check without a timing assertion: 300k snapshots, at most 1000 points per line."""
    db = _big_db(tmp_path / "big.db", 300_000)
    with Store(db, read_only=True) as store:
        performance = read_performance(store)
    section = PerformanceSection()
    section.show(performance)
    assert 500 < len(section.equity.x) <= MAX_POINTS
    assert len(section.drawdown.x) <= MAX_POINTS
    assert [r.label for r in performance.rows] == ["AAA/USD", "BBB/USD", "CCC/USD", "Total"]
    assert performance.rows[-1].metrics.n_trades == 3000
    assert performance.rows[-1].fees == pytest.approx(3000.0)
