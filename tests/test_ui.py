"""The dashboard's data shaping (pure functions) and its widgets, without a browser."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

from botlib.analytics import metrics
from botlib.models import AssetSettings
from botlib.queries import DashboardData, dashboard_data, list_assets
from botlib.store import Store
from botlib.ui import Dashboard, charts  # charts: bqplot, imported warning-free
from botlib.ui.shaping import (
    asset_texts,
    chart_data,
    header_texts,
    money,
    percent,
    signed_money,
    slug,
)
from tests.ui_helpers import copy_db, run_next_cycle

T = pd.Timestamp("2026-11-20T10:00:00Z")


def _data(**changes: Any) -> DashboardData:
    """Build a small hand-made DashboardData: three 15-minute bars, a buy, an open position."""
    index = pd.DatetimeIndex([T + pd.Timedelta(minutes=15 * i) for i in range(3)], name="ts")
    bars = pd.DataFrame(
        {"open": 100.0, "high": 103.0, "low": 99.0, "close": [100.0, 102.0, 101.0]}, index=index
    )
    trades = pd.DataFrame(
        [
            {"side": "buy", "price": 102.1, "filled_at": "2026-11-20T10:30:00+00:00"},
            {"side": "sell", "price": 90.0, "filled_at": "2026-11-19T10:30:00+00:00"},  # too old
        ]
    )
    fields: dict[str, Any] = {
        "asset": AssetSettings(symbol="BTC/USD", timeframe="15Min", interval_minutes=15),
        "bars": bars,
        "trades": trades,
        "position": {"qty": 2.0, "avg_entry_price": 100.0, "stop_loss": 98.0, "take_profit": 104.0},
        "metrics": metrics(pd.Series(dtype=float), pd.Series([5.0, -2.0]), -12.5),
        "last_decision": {
            "action": "BUY",
            "confidence": 0.75,
            "created_at": "2026-11-20T10:45:00+00:00",
            "reasoning": "<img src=x onerror=alert(1)> trend up",
        },
        "last_cycle": {"started_at": "2026-11-20T10:45:00+00:00", "status": "ok", "reason": None},
        "last_reflection": None,
        "cycles": 7,
    }
    return DashboardData(**(fields | changes))


# pure shaping --------------------------------------------------------------------------------
def test_formatters_show_signs_units_and_missing_values() -> None:
    assert slug("BTC/USD") == "BTCUSD"
    assert money(1234.5) == "$1,234.50"
    assert money(float("nan")) == money(None) == "—"
    assert signed_money(12.345) == "+$12.35"
    assert signed_money(-0.001) == "$0.00"
    assert percent(0.25) == "25.0 %"


def test_chart_data_plots_closes_at_bar_end_and_keeps_only_fills_in_view() -> None:
    chart = chart_data(_data())
    assert chart.x.dtype == np.dtype("datetime64[ms]")
    assert str(chart.x[0]) == "2026-11-20T10:15:00.000"  # first bar's close time
    assert chart.close.tolist() == [100.0, 102.0, 101.0]
    assert chart.buys_y.tolist() == [102.1]
    assert len(chart.sells_x) == 0  # the sell predates the window: it would stretch the axis
    x, y = chart.level_line("stop_loss")
    assert [str(v) for v in x] == ["2026-11-20T10:15:00.000", "2026-11-20T10:45:00.000"]
    assert y.tolist() == [98.0, 98.0]


def test_chart_data_without_position_or_bars_has_empty_marks() -> None:
    empty = pd.DataFrame(columns=["open", "high", "low", "close"], dtype=float)
    empty.index = pd.DatetimeIndex([], tz="UTC")
    chart = chart_data(_data(position=None, bars=empty, trades=pd.DataFrame()))
    assert len(chart.x) == len(chart.close) == len(chart.buys_x) == 0
    assert [len(a) for a in chart.level_line("take_profit")] == [0, 0]


def test_asset_texts_format_position_metrics_and_escape_reasoning() -> None:
    texts = asset_texts(_data())
    assert texts["price"] == "$101.00"
    assert texts["position"] == "2"
    assert texts["unrealized"] == '<span class="botlib-gain">+$2.00</span>'
    assert texts["levels"] == "$98.00 / $104.00"
    assert texts["pnl"] == '<span class="botlib-loss">−$12.50</span>'
    assert (texts["win-rate"], texts["trades"], texts["cycles"]) == ("50.0 %", "2", "7")
    assert "BUY</span> · confidence 75 %" in texts["decision"]
    assert "<img" not in texts["reasoning"] and "&lt;img" in texts["reasoning"]
    assert texts["cycle"] == "2026-11-20 10:45 UTC · ok"


def test_asset_texts_when_flat_and_never_decided() -> None:
    texts = asset_texts(_data(position=None, last_decision=None, last_cycle=None))
    assert texts["position"] == "flat"
    assert texts["entry"] == texts["decision"] == texts["cycle"] == "—"


def test_header_texts_from_account_overview() -> None:
    overview = {"equity": 100_500.0, "cash": 90_000.0, "mode": "sim"}
    overview["metrics"] = metrics(pd.Series(dtype=float), pd.Series(dtype=float), 500.0)
    texts = header_texts(overview, {"started_at": "2026-11-20T12:00:00+00:00"})
    assert texts["mode"] == "SIM"
    assert texts["equity"] == "$100,500.00"
    assert texts["pnl"] == '<span class="botlib-gain">+$500.00</span>'
    assert texts["last-cycle"] == "2026-11-20 12:00 UTC"
    assert header_texts({}, None)["mode"] == "—"
    assert texts["llm"] == "—"  # no spend figure in the overview
    spent = header_texts(overview | {"llm_today": 5.5}, None, llm_budget=5.0)["llm"]
    assert spent == '<span class="botlib-loss">$5.50 / $5.00 · budget reached</span>'
    assert header_texts(overview | {"llm_today": 0.01}, None, 2.0)["llm"] == "$0.01 / $2.00"


# widgets ------------------------------------------------------------------------------------
@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    return copy_db(demo_db, tmp_path / "demo.db")


@pytest.fixture
def dashboard(demo_copy: Path) -> Iterator[Dashboard]:
    board = Dashboard.from_path(demo_copy)
    yield board
    board.close()


def _tree(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def test_dashboard_has_a_panel_with_classed_labels_per_asset(
    dashboard: Dashboard, demo_copy: Path
) -> None:
    store = Store(demo_copy, read_only=True)
    try:
        assets = [a.symbol for a in list_assets(store)]
        expected = dashboard_data(store, "BTC/USD")
    finally:
        store.close()
    assert list(dashboard.panels) == assets == ["BTC/USD", "SOL/USD"]
    panel = dashboard.panels["BTC/USD"]
    assert "botlib-cycles-BTCUSD" in panel.values["cycles"]._dom_classes
    assert panel.values["cycles"].value == str(expected.cycles)
    assert isinstance(panel.chart.close, charts.Lines)
    assert len(panel.chart.close.x) == len(expected.bars)
    assert dashboard.header["mode"].value == "SIM"
    assert "live" in dashboard.status.value


def test_dashboard_has_no_widget_that_can_write(dashboard: Dashboard) -> None:
    allowed = (widgets.Box, widgets.HTML, widgets.Play, charts.Figure)
    found = {type(w).__name__ for w in _tree(dashboard.widget) if not isinstance(w, allowed)}
    assert not found


def test_refresh_updates_labels_and_marks_in_place(dashboard: Dashboard, demo_copy: Path) -> None:
    panel = dashboard.panels["BTC/USD"]
    label, line, children = panel.values["cycles"], panel.chart.close, dashboard.widget.children
    before = int(label.value)
    report = run_next_cycle(demo_copy, "BTC/USD")
    assert report.status.value == "ok"
    assert dashboard.refresh() is True
    assert panel.values["cycles"] is label and panel.chart.close is line
    assert dashboard.widget.children == children
    assert int(label.value) == before + 1
    assert report.bar_time is not None
    bar_end = report.bar_time.replace(tzinfo=None) + pd.Timedelta("15min")
    assert line.x[-1] == np.datetime64(bar_end, "ms")  # the new close is on the chart


def test_play_ticks_start_with_a_view_and_drive_refresh(
    dashboard: Dashboard, demo_copy: Path
) -> None:
    ticker = dashboard.ticker
    assert ticker.playing is False and ticker.interval == 3000
    ticker._view_count = 1  # what the browser reports once it shows the widget
    assert ticker.playing is True
    label = dashboard.panels["SOL/USD"].values["cycles"]
    before = int(label.value)
    run_next_cycle(demo_copy, "SOL/USD")
    ticker.value += 1  # one browser tick
    assert int(label.value) == before + 1


def test_missing_database_shows_a_status_then_recovers(tmp_path: Path, demo_db: Path) -> None:
    path = tmp_path / "later.db"
    board = Dashboard.from_path(path)
    try:
        assert board.panels == {}
        assert "does not exist" in board.status.value
        assert "botlib-status-error" in board.status._dom_classes
        assert board.refresh() is False
        copy_db(demo_db, path)
        assert board.refresh() is True
        assert list(board.panels) == ["BTC/USD", "SOL/USD"]
        assert "botlib-status-error" not in board.status._dom_classes
    finally:
        board.close()


def test_unreadable_database_shows_a_status(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    board = Dashboard.from_path(path)
    try:
        assert board.refresh() is False
        assert "cannot read garbage.db" in board.status.value
    finally:
        board.close()


def test_locked_database_shows_a_status_then_recovers(demo_copy: Path) -> None:
    writer = sqlite3.connect(demo_copy, isolation_level=None)
    writer.execute("PRAGMA journal_mode = DELETE")  # rollback journal: a writer can lock readers
    board = Dashboard.from_path(demo_copy)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        assert board.refresh() is False
        assert time.monotonic() - started < 5  # the kernel is not held for the store's 10 s
        assert "locked" in board.status.value
        writer.execute("ROLLBACK")
        assert board.refresh() is True
    finally:
        writer.close()
        board.close()


def test_replaced_database_file_is_reopened(dashboard: Dashboard, demo_copy: Path) -> None:
    label = dashboard.panels["BTC/USD"].values["cycles"]
    before = int(label.value)
    fresh = copy_db(demo_copy, demo_copy.with_name("fresh.db"))
    run_next_cycle(fresh, "BTC/USD")
    fresh.replace(demo_copy)  # what re-creating the demo DB does to a running dashboard
    assert dashboard.refresh() is True
    assert int(label.value) == before + 1


def test_dashboard_displays_with_a_constant_text_repr(dashboard: Dashboard) -> None:
    bundle = dashboard._repr_mimebundle_()
    assert bundle["text/plain"] == "botlib dashboard"
    assert "application/vnd.jupyter.widget-view+json" in bundle
