import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from botlib.clock import iso
from botlib.errors import UnknownSymbolError
from botlib.features.indicators import WARM_UP
from botlib.reporting.analytics import max_drawdown_pct, sharpe_ratio, trade_stats
from botlib.reporting.queries import (
    CHART_WARM_UP,
    account_overview,
    dashboard_data,
    list_assets,
    recent_cycles,
    resting_orders,
)
from botlib.storage.store import Store
from botlib.ui.asset_panel import AssetPanel
from botlib.ui.shaping.charts import MAX_CANDLES, OVERLAYS
from tests.conftest import T0
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
    assert any("FROM order_intents" in sql for sql in plans)  # the resting orders' seek
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


# resting orders ------------------------------------------------------------------------------
def _stop(cid: str, symbol: str, minutes: int, stop: float, revision: int) -> dict[str, Any]:
    """A protective stop_limit sell's intent, written `minutes` after T0."""
    return {
        "client_order_id": cid, "symbol": symbol, "side": "sell", "qty": 0.1,
        "reason": "venue_stop", "order_type": "stop_limit", "stop_price": stop,
        "limit_price": stop * 0.995, "revision": revision,
        "created_at": iso(T0 + timedelta(minutes=minutes)),
    }  # fmt: skip


def _add_resting(store: Store) -> None:
    """After the demo's last cycle (T0): for BTC a replaced stop (canceled), its next revision,
    a limit entry and a market order; for SOL a stop. The limit entry is written before the
    stop's revision but created after it."""
    store.add_intent(_stop("BTC-e1-p1", "BTC/USD", 1, 91_000.0, 1))
    store.resolve_intent("BTC-e1-p1", "canceled", T0, "replaced: the stop changed")
    store.add_intent(
        {"client_order_id": "BTC-l1", "symbol": "BTC/USD", "side": "buy", "notional": 500.0,
         "reason": "signal", "order_type": "limit", "limit_price": 90_000.0,
         "expires_at": iso(T0 + timedelta(hours=2)), "created_at": iso(T0 + timedelta(minutes=10))}
    )  # fmt: skip
    store.add_intent(_stop("BTC-e1-p2", "BTC/USD", 5, 91_500.0, 2))
    store.add_intent(
        {"client_order_id": "BTC-m1", "symbol": "BTC/USD", "side": "buy", "qty": 0.01,
         "reason": "signal", "order_type": "market", "created_at": iso(T0 + timedelta(minutes=10))}
    )  # fmt: skip
    store.add_intent(_stop("SOL-e1-p1", "SOL/USD", 7, 120.0, 1))


def _ids(orders: list[dict[str, Any]]) -> list[str]:
    return [o["client_order_id"] for o in orders]


def test_resting_orders_are_the_pending_limits_and_stops_newest_first(demo_copy: Path) -> None:
    with Store(demo_copy, read_only=True) as ro:  # the demo's own protective stops, if any
        before = {symbol: _ids(resting_orders(ro, symbol)) for symbol in ("BTC/USD", "SOL/USD")}
    with Store(demo_copy) as store:
        _add_resting(store)
    with Store(demo_copy, read_only=True) as ro:
        data = dashboard_data(ro, "BTC/USD", bars=50)
        everywhere = _ids(resting_orders(ro))
        assert _ids(resting_orders(ro, "SOL/USD")) == ["SOL-e1-p1", *before["SOL/USD"]]
        assert len(resting_orders(ro, "BTC/USD", limit=1)) == 1
    assert _ids(data.resting) == ["BTC-l1", "BTC-e1-p2", *before["BTC/USD"]]
    assert everywhere[:3] == ["BTC-l1", "SOL-e1-p1", "BTC-e1-p2"]
    assert sorted(everywhere[3:]) == sorted(before["BTC/USD"] + before["SOL/USD"])
    entry, stop = data.resting[:2]
    assert {k: stop[k] for k in ("order_type", "side", "stop_price", "qty", "reason")} == {
        "order_type": "stop_limit", "side": "sell", "stop_price": 91_500.0, "qty": 0.1,
        "reason": "venue_stop",
    }  # fmt: skip
    assert (stop["status"], stop["revision"], stop["expires_at"]) == ("pending", 2, None)
    assert stop["limit_price"] == pytest.approx(91_042.5)
    assert stop["created_at"] == iso(T0 + timedelta(minutes=5))
    assert (entry["notional"], entry["qty"], entry["limit_price"]) == (500.0, None, 90_000.0)
    assert entry["expires_at"] == iso(T0 + timedelta(hours=2))


def test_resting_orders_are_drawn_and_listed_until_they_end(demo_copy: Path) -> None:
    with Store(demo_copy) as store:
        _add_resting(store)
    panel = AssetPanel("BTC/USD")
    with Store(demo_copy, read_only=True) as ro:
        panel.show(dashboard_data(ro, "BTC/USD", bars=50))
    chart = panel.chart
    stop, band, limit = (chart.resting[k] for k in ("resting_stop", "resting_stop_limit",
                                                     "resting_limit"))  # fmt: skip
    texts = {kind: list(label.text) for kind, label in chart.resting_labels.items()}
    newest = slice(0, 2)  # a line per order, newest first (the demo's own stops follow)
    assert np.atleast_2d(stop.y)[0].tolist() == [91_500.0, 91_500.0]
    assert texts["resting_stop"][0] == "stop 91,500 (open, rev 2)"
    assert chart.resting_labels["resting_stop"].y[0] == 91_500.0
    assert np.atleast_2d(band.y)[0].tolist() == pytest.approx([91_042.5, 91_042.5])
    assert texts["resting_stop_limit"][0] == "stop limit 91,042.5 (open, rev 2)"
    assert limit.y.tolist() == [90_000.0, 90_000.0]
    assert texts["resting_limit"] == ["buy limit 90,000 (open)"]
    assert stop.x.tolist() == chart.candles.x[[0, -1]].tolist()  # across the candles
    assert panel.values["resting"].value.split("<br>")[newest] == [
        "limit buy $500.00 limit 90,000 (open, expires 2026-11-20 14:00 UTC)"
        " · placed 2026-11-20 12:10 UTC",
        "stop_limit sell 0.1 stop 91,500 limit 91,042.5 (open, rev 2)"
        " · placed 2026-11-20 12:05 UTC",
    ]
    with Store(demo_copy) as store:  # every order ends: expired, filled, canceled
        for order in resting_orders(store, "BTC/USD"):
            store.resolve_intent(order["client_order_id"], "expired", T0, "ended")
    with Store(demo_copy, read_only=True) as ro:
        panel.show(dashboard_data(ro, "BTC/USD", bars=50))
    assert panel.values["resting"].value == "none"
    assert all(len(mark.y) == 0 for mark in chart.resting.values())
    assert all(len(label.text) == 0 for label in chart.resting_labels.values())
