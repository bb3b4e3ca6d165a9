"""What each notebook opens (`botlib.app.jupyter.pages`): built from the settings it reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ipywidgets as widgets
import pytest

from botlib.app.config import load_settings
from botlib.app.jupyter.pages import ai_log_explorer, control_panel, dashboard
from botlib.clock import ManualClock
from botlib.ops.limits import save_limits
from botlib.storage.store import Store
from tests.ui_helpers import copy_db

NOW = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)


def test_the_dashboard_reads_the_ai_logs_flag_and_the_limits(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_db(demo_db, tmp_path / "demo.db")
    with Store(db) as store:  # an operator lowered the LLM budget from the control page
        save_limits(store, load_settings(None).limits, NOW, llm_budget_usd=1.5)
    monkeypatch.setenv("BOTLIB_DB", str(db))
    monkeypatch.setenv("BOTLIB_MAX_LLM_USD_PER_DAY", "9")
    monkeypatch.setenv("BOTLIB_DASHBOARD_AI_LOGS", "1")
    monkeypatch.setenv("BOTLIB_ANALYST", "rules")
    board = dashboard(clock=ManualClock(NOW))
    try:
        assert isinstance(board.widget, widgets.Tab)
        assert board.header.values["llm"].value.endswith("/ $1.50")
        assert board._default_analyst == "rules"
    finally:
        board.close()
    monkeypatch.delenv("BOTLIB_DASHBOARD_AI_LOGS")
    board = dashboard(clock=ManualClock(NOW))
    try:
        assert board.widget is board.main and not isinstance(board.widget, widgets.Tab)
    finally:
        board.close()


def test_the_explorer_reads_botlib_db_unless_given_one(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTLIB_DB", str(demo_db))
    explorer = ai_log_explorer()
    with Store(demo_db, read_only=True) as store:
        logged = store.rows("SELECT count(*) AS n FROM ai_decision_logs")[0]["n"]
    assert explorer.path == demo_db and len(explorer.rows) == min(logged, 200)
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == "botlib AI log explorer"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    other = copy_db(demo_db, tmp_path / "other.db")
    assert ai_log_explorer(other).path == other


def test_the_control_panel_opens_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    with Store(db) as seeded:
        seeded.ensure_assets(["BTC/USD"])
    monkeypatch.setenv("BOTLIB_DB", str(db))
    monkeypatch.setenv("BOTLIB_MAX_DRAWDOWN_PCT", "12")
    monkeypatch.chdir(tmp_path)  # no .env here
    panel = control_panel()
    try:
        assert set(panel.rows) == {"BTC/USD"} and Path(panel.store.path) == db
        assert panel.limits.fields["max_drawdown_pct"].value == 12.0
        assert panel.engine().broker.mode == "sim"
    finally:
        panel.close()
