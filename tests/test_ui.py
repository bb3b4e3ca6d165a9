"""The dashboard's data shaping (pure functions) and its widgets, without a browser."""

from __future__ import annotations

import doctest
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

from botlib.clock import ManualClock, iso
from botlib.reporting.queries import dashboard_data, list_assets
from botlib.storage.store import Store
from botlib.ui import activity, charts
from botlib.ui.dashboard import Dashboard  # charts: bqplot, imported warning-free
from botlib.ui.shaping.text import money
from tests.conftest import T0
from tests.ui_helpers import copy_db, run_next_cycle

NOW = T0 + timedelta(minutes=5)  # the demo's last cycle ran at T0
PARTS = (
    "botlib-status", "botlib-chart-BTCUSD", "botlib-chart-SOLUSD", "botlib-banner",
    "botlib-light-BTCUSD", "botlib-light-SOLUSD", "botlib-heartbeat", "botlib-day-pnl",
    "botlib-performance", "botlib-activity",
)  # fmt: skip


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    return copy_db(demo_db, tmp_path / "demo.db")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def dashboard(demo_copy: Path, clock: ManualClock) -> Iterator[Dashboard]:
    board = Dashboard.from_path(demo_copy, clock=clock)
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
    assert dashboard.header.values["mode"].value == "SIM"
    assert "live" in dashboard.status.value


def _classes(widget: widgets.Widget) -> set[str]:
    return {c for w in _tree(widget) for c in getattr(w, "_dom_classes", ())}


def _newest(db: Path, sql: str) -> dict:  # type: ignore[type-arg]
    with Store(db, read_only=True) as store:
        return store.rows(sql)[0]


def test_dashboard_shows_every_part_with_values_from_the_db(
    dashboard: Dashboard, demo_copy: Path
) -> None:
    assert set(PARTS) <= _classes(dashboard.widget)
    last = _newest(demo_copy, "SELECT equity, cash FROM equity_snapshots ORDER BY id DESC LIMIT 1")
    values = dashboard.header.values
    assert values["equity"].value == money(last["equity"])
    assert values["cash"].value == money(last["cash"])
    assert values["heartbeat"].value == "no scheduler yet"
    assert dashboard.header.banner.layout.display == "none"
    for symbol in ("BTC/USD", "SOL/USD"):
        assert "botlib-state-ok" in dashboard.header.lights[symbol]._dom_classes
    assert "<td>Total</td>" in dashboard.performance.table.value
    assert len(dashboard.performance.equity.x) > 50
    newest = _newest(demo_copy, "SELECT started_at FROM cycles ORDER BY rowid DESC LIMIT 1")
    first_row = dashboard.activity.table.value.split("<tbody>")[1].split("</tr>")[0]
    assert f"{pd.Timestamp(newest['started_at']):%Y-%m-%d %H:%M:%S}" in first_row


def _widgets_that_take_input(root: widgets.Widget) -> set[str]:
    allowed = (widgets.Box, widgets.HTML, widgets.Play, charts.Figure)
    return {type(w).__name__ for w in _tree(root) if not isinstance(w, allowed)}


def test_dashboard_has_no_widget_that_can_write(dashboard: Dashboard) -> None:
    assert not _widgets_that_take_input(dashboard.widget)


def test_ai_log_tab_is_built_on_first_use_and_writes_nothing(demo_copy: Path) -> None:
    board = Dashboard.from_path(demo_copy, clock=ManualClock(NOW), with_ai_logs=True)
    try:
        tabs = board.widget
        assert isinstance(tabs, widgets.Tab)
        assert tabs.titles == ("Dashboard", "AI log")
        assert board.ai_explorer is None  # nothing queried for a tab nobody opened
        assert not _widgets_that_take_input(tabs)
        before = hashlib.sha256(demo_copy.read_bytes()).hexdigest()
        tabs.selected_index = 1
        explorer = board.ai_explorer
        assert explorer is not None and tabs.children[1].children == (explorer.widget,)
        assert "calls shown" in explorer.status.value
        # Filters and buttons live only in the AI-log tab; the dashboard itself has none.
        assert not _widgets_that_take_input(tabs.children[0])
        assert _widgets_that_take_input(tabs.children[1]) <= {
            "Dropdown", "Checkbox", "BoundedIntText", "Text", "Button",
        }  # fmt: skip
        for button in (w for w in _tree(tabs) if isinstance(w, widgets.Button)):
            button.click()
        tabs.selected_index = 0
        tabs.selected_index = 1
        assert board.ai_explorer is explorer  # built once
        assert hashlib.sha256(demo_copy.read_bytes()).hexdigest() == before
    finally:
        board.close()


def test_refresh_updates_labels_and_marks_in_place(dashboard: Dashboard, demo_copy: Path) -> None:
    panel = dashboard.panels["BTC/USD"]
    label, line, children = panel.values["cycles"], panel.chart.close, dashboard.widget.children
    equity, feed = dashboard.header.values["equity"], dashboard.activity.table
    curve, table = dashboard.performance.equity, dashboard.performance.table
    before, points = int(label.value), len(curve.x)
    report = run_next_cycle(demo_copy, "BTC/USD")
    assert report.status.value == "ok"
    assert dashboard.refresh() is True
    assert panel.values["cycles"] is label and panel.chart.close is line
    assert dashboard.widget.children == children
    assert dashboard.header.values["equity"] is equity and dashboard.activity.table is feed
    assert dashboard.performance.equity is curve and dashboard.performance.table is table
    assert int(label.value) == before + 1
    assert equity.value == money(report.equity)
    assert len(curve.x) == points + 1
    first_row = feed.value.split("<tbody>")[1].split("</tr>")[0]
    assert f"{T0 + timedelta(minutes=15):%Y-%m-%d %H:%M:%S}" in first_row  # the new cycle
    assert report.bar_time is not None
    bar_end = report.bar_time.replace(tzinfo=None) + pd.Timedelta("15min")
    assert line.x[-1] == np.datetime64(bar_end, "ms")  # the new close is on the chart


def test_heartbeat_and_lights_age_on_ticks_without_a_db_change(
    dashboard: Dashboard, demo_copy: Path, clock: ManualClock
) -> None:
    with Store(demo_copy) as store:  # the scheduler's heartbeat
        store.db.table("ticks").insert({"started_at": iso(NOW - timedelta(seconds=20)), "ran": 2})
    assert dashboard.refresh() is True
    beat, light = dashboard.header.values["heartbeat"], dashboard.header.lights["BTC/USD"]
    assert "botlib-state-ok" in beat._dom_classes
    version, feed = dashboard._version, dashboard.activity.table.value
    clock.advance(timedelta(minutes=30))  # nothing is written: the scheduler died
    assert dashboard.refresh() is True
    assert dashboard._version == version and dashboard.activity.table.value == feed
    assert "botlib-state-late" in beat._dom_classes and beat.value.startswith("⚠ late")
    assert "botlib-state-stale" in light._dom_classes  # 15-minute asset, 35 minutes quiet


def test_a_new_utc_day_rereads_the_day_pnl(dashboard: Dashboard, clock: ManualClock) -> None:
    day_pnl = dashboard.header.values["day-pnl"]
    assert day_pnl.value != "$0.00"  # the demo lost money since midnight
    clock.advance(timedelta(days=1))  # no new snapshot: the new day starts where it ended
    assert dashboard.refresh() is True
    assert day_pnl.value == "$0.00"


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


# orders resting at the venue, and why fills happened -----------------------------------------
def _at(minutes: int) -> str | None:
    return iso(T0 + timedelta(minutes=minutes))


def _fill(
    store: Store, cid: str, reason: str, price: float, minutes: int, **intent: object
) -> None:
    """Write a sell's intent, then its fill (as the executor books one), `minutes` after T0."""
    base = {"client_order_id": cid, "symbol": "BTC/USD", "side": "sell", "qty": 0.1}
    store.add_intent(base | {"reason": reason, "created_at": _at(minutes - 1), **intent})
    store.record_trade(
        base | {"reason": reason, "price": price, "status": "filled", "realized_pnl": -12.5,
                "created_at": _at(minutes - 1), "filled_at": _at(minutes)}
    )  # fmt: skip
    store.resolve_intent(cid, "filled", T0 + timedelta(minutes=minutes), "filled")


def test_refresh_shows_resting_orders_and_why_fills_happened(
    dashboard: Dashboard, demo_copy: Path
) -> None:
    panel = dashboard.panels["BTC/USD"]
    marks = panel.chart.resting
    listed = panel.values["resting"].value  # the demo's own protective stop, or "none"
    with Store(demo_copy) as store:
        stop = {"order_type": "stop_limit", "stop_price": 92_000.0, "limit_price": 91_540.0}
        _fill(store, "BTC-a-p1", "venue_stop", 91_990.0, 1, revision=1, **stop)
        _fill(store, "BTC-b", "gap_exit", 91_200.0, 2, order_type="market")
        _fill(store, "BTC-c", "take_profit", 95_000.0, 3)
        store.add_intent(
            {"client_order_id": "BTC-d-p1", "symbol": "BTC/USD", "side": "sell", "qty": 0.05,
             "reason": "venue_stop", "order_type": "stop_limit", "stop_price": 90_000.0,
             "limit_price": 89_550.0, "revision": 1, "created_at": _at(4)}
        )  # fmt: skip
    assert dashboard.refresh() is True
    assert panel.chart.resting is marks  # updated in place
    assert np.atleast_2d(marks["resting_stop"].y)[0].tolist() == [90_000.0, 90_000.0]
    label = panel.chart.resting_labels["resting_stop"]
    assert label.text[0] == "stop 90,000 (open, rev 1)"  # the newest first
    assert np.atleast_2d(marks["resting_stop_limit"].y)[0].tolist() == [89_550.0, 89_550.0]
    mine = (
        "stop_limit sell 0.05 stop 90,000 limit 89,550 (open, rev 1) · placed 2026-11-20 12:04 UTC"
    )
    assert panel.values["resting"].value == (mine if listed == "none" else f"{mine}<br>{listed}")
    feed = dashboard.activity.table.value
    assert "SELL 0.1 @ $91,990.00 · stopped out at the venue at $92,000.00 · P&amp;L" in feed
    assert "SELL 0.1 @ $91,200.00 · gap exit at market (the price gapped below the" in feed
    assert "SELL 0.1 @ $95,000.00 · take-profit · P&amp;L" in feed
    assert feed.index("take-profit") < feed.index("gap exit") < feed.index("at the venue")


def test_activity_words_a_limit_entry_and_unknown_causes() -> None:
    limit = {"reason": "signal", "order_type": "limit", "limit_price": 90_000.0}
    assert activity.trade_cause(limit) == "signal, limit order at $90,000.00"
    assert activity.trade_cause({"reason": "signal", "order_type": "market"}) == "signal"
    assert activity.trade_cause({"reason": "venue_stop"}) == "stopped out at the venue"
    assert activity.trade_cause({"reason": "stop_loss"}) == "stop-loss (the bot's own stop)"
    assert activity.trade_cause({"reason": "guard_exit"}) == "guard exit at market"
    assert activity.trade_cause({"reason": None}) == "—"
    assert doctest.testmod(activity).attempted > 0 and doctest.testmod(activity).failed == 0
