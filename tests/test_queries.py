import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from botlib.errors import UnknownSymbolError
from botlib.features.indicators import WARM_UP
from botlib.reporting.analytics import max_drawdown_pct, sharpe_ratio, trade_stats
from botlib.reporting.queries import (
    CHART_WARM_UP,
    account_overview,
    dashboard_data,
    list_assets,
    recent_cycles,
)
from botlib.storage.store import Store
from botlib.ui.asset_panel import AssetPanel
from botlib.ui.shaping.charts import MAX_CANDLES, OVERLAYS
from tests.ui_helpers import copy_db

BIG_TABLES = ("market_data", "trades", "equity_snapshots", "cycles", "ai_decision_logs")


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    return copy_db(demo_db, tmp_path / "demo.db")


@pytest.fixture
def ro(demo_copy: Path) -> Iterator[Store]:
    with Store(demo_copy, read_only=True) as store:
        yield store


def _sql(db: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(query, params).fetchall()


def test_dashboard_data_window_and_fills_agree_with_the_tables(ro: Store, demo_copy: Path) -> None:
    data = dashboard_data(ro, "BTC/USD", bars=40)  # the last 10 hours of the demo's day
    newest = "SELECT ts FROM market_data WHERE symbol = 'BTC/USD' ORDER BY ts DESC LIMIT ?"
    ts = [r[0] for r in _sql(demo_copy, newest, (40 + CHART_WARM_UP,))]
    assert [t.isoformat() for t in data.bars.index] == ts[:40][::-1]
    assert [t.isoformat() for t in data.history.index] == ts[40:][::-1]
    start = (data.bars.index[0] + pd.Timedelta(minutes=15)).isoformat()
    since = "SELECT id FROM trades WHERE symbol = 'BTC/USD' AND filled_at >= ? ORDER BY id"
    before = "SELECT count(*) FROM trades WHERE symbol = 'BTC/USD' AND filled_at < ?"
    fills = [r[0] for r in _sql(demo_copy, since, (start,))]
    assert data.trades["id"].tolist() == fills and len(fills) > 0
    assert _sql(demo_copy, before, (start,))[0][0] > 0  # older fills exist and were left out
    position = _sql(demo_copy, "SELECT qty FROM positions WHERE symbol = 'BTC/USD'")
    assert (data.position or {}).get("qty") == (position[0][0] if position else None)
    if data.position:
        expected = data.position["qty"] * (data.last_price - data.position["avg_entry_price"])
        assert data.unrealized_pnl == pytest.approx(expected)


def test_dashboard_data_latest_records_agree_with_the_tables(ro: Store, demo_copy: Path) -> None:
    data = dashboard_data(ro, "BTC/USD", bars=100)
    decision = _sql(demo_copy, "SELECT id FROM ai_decision_logs WHERE symbol = 'BTC/USD'"
                               " ORDER BY created_at DESC, id DESC LIMIT 1")  # fmt: skip
    reflection = _sql(demo_copy, "SELECT max(id) FROM ai_reflections WHERE symbol = 'BTC/USD'")
    cycles = _sql(demo_copy, "SELECT count(*) FROM cycles WHERE symbol = 'BTC/USD'")[0][0]
    assert data.last_decision is not None and data.last_decision["id"] == decision[0][0]
    assert data.last_reflection is not None and data.last_reflection["id"] == reflection[0][0]
    assert data.last_cycle is not None and data.last_cycle["status"] == "ok"
    assert data.cycles == cycles


def test_metrics_equal_the_sql_totals(ro: Store, demo_copy: Path) -> None:
    data = dashboard_data(ro, "BTC/USD", bars=100)
    pnls = [r[0] for r in _sql(demo_copy, "SELECT realized_pnl FROM trades WHERE symbol ="
                                          " 'BTC/USD' AND realized_pnl IS NOT NULL")]  # fmt: skip
    last = _sql(demo_copy, "SELECT asset_pnl FROM equity_snapshots WHERE symbol = 'BTC/USD'"
                           " ORDER BY ts DESC LIMIT 1")[0][0]  # fmt: skip
    m = data.metrics
    assert (m.total_pnl, m.n_trades) == (pytest.approx(last), len(pnls)) and len(pnls) > 0
    stats = trade_stats(pd.Series(pnls, dtype=float))  # the pandas definition
    for name in ("win_rate", "avg_win", "avg_loss", "profit_factor"):
        assert getattr(m, name) == pytest.approx(stats[name]), name
    base = _sql(demo_copy, "SELECT equity FROM equity_snapshots ORDER BY id LIMIT 1")[0][0]
    window = "SELECT ts, asset_pnl FROM equity_snapshots WHERE symbol = 'BTC/USD' AND ts >= ?"
    rows = _sql(demo_copy, window + " ORDER BY ts", (data.bars.index[0].isoformat(),))
    curve = pd.Series([p + base for _, p in rows], index=pd.to_datetime([t for t, _ in rows]))
    assert m.max_drawdown_pct == pytest.approx(max_drawdown_pct(curve))
    assert m.sharpe == pytest.approx(sharpe_ratio(curve))


def test_dashboard_queries_seek_indexes(ro: Store) -> None:
    statements: list[str] = []
    ro.db.conn.set_trace_callback(statements.append)
    try:
        dashboard_data(ro, "SOL/USD", bars=100)
    finally:
        ro.db.conn.set_trace_callback(None)
    plans = {
        sql: " | ".join(r[3] for r in ro.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
    }
    assert any("market_data" in sql for sql in plans) and len(plans) >= 8
    for sql, plan in plans.items():
        assert "TEMP B-TREE" not in plan, (sql, plan)
        if sql.rstrip().endswith("ORDER BY id LIMIT 1"):
            continue  # a rowid walk that stops at the first row it reads
        for table in BIG_TABLES:
            assert f"SCAN {table}" not in plan, (sql, plan)


def test_chart_warm_up_covers_the_longest_overlay() -> None:
    assert max(WARM_UP[name] for name in OVERLAYS) <= CHART_WARM_UP


def test_asset_panel_marks_have_the_expected_lengths(ro: Store) -> None:
    panel = AssetPanel("BTC/USD")
    data = dashboard_data(ro, "BTC/USD", bars=150)
    panel.show(data)
    chart = panel.chart
    assert len(chart.candles.x) == len(chart.candles.y) == len(chart.volume.y) == 150
    assert chart.candles.y.shape == (150, 4) and len(chart.close.x) == 150
    assert all(len(chart.overlays[name].x) == 150 for name in OVERLAYS)  # warm-up loaded
    drawn = data.trades[data.trades["price"].notna()]
    assert len(chart.buys.x) + len(chart.sells.x) == len(drawn) > 0
    assert len(chart.levels["entry"].x) == (2 if data.position else 0)
    long = dashboard_data(ro, "BTC/USD", bars=300)
    panel.show(long)
    assert len(chart.candles.x) <= MAX_CANDLES < len(long.bars)
    assert chart.candles.y[:, 1].max() == long.bars["high"].max()
    assert np.isfinite(chart.overlays["sma_50"].y).all()


def test_account_overview_has_one_point_per_tick(ro: Store) -> None:
    overview = account_overview(ro)
    curve = overview["curve"]
    assert overview["mode"] == "sim"
    assert not curve.index.has_duplicates
    assert overview["equity"] == curve.iloc[-1]
    assert 0 <= overview["metrics"].max_drawdown_pct < 100


def test_listing_and_recent_cycles(ro: Store) -> None:
    assert [a.symbol for a in list_assets(ro)] == ["BTC/USD", "SOL/USD"]
    recent = recent_cycles(ro, limit=5, symbol="SOL/USD")
    assert len(recent) == 5 and {r["symbol"] for r in recent} == {"SOL/USD"}
    assert [r["started_at"] for r in recent] == sorted(
        (r["started_at"] for r in recent), reverse=True
    )
    with pytest.raises(UnknownSymbolError):
        dashboard_data(ro, "XRP/USD")
    with pytest.raises(ValueError, match="bars >= 1"):
        dashboard_data(ro, "BTC/USD", bars=0)
