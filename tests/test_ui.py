"""The dashboard's data shaping (pure functions) and its widgets, without a browser."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

from botlib.analytics import metrics
from botlib.queries import dashboard_data, list_assets
from botlib.store import Store
from botlib.ui import Dashboard, charts  # charts: bqplot, imported warning-free
from botlib.ui.shaping import (
    header_texts,
)
from tests.ui_helpers import copy_db, run_next_cycle


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
