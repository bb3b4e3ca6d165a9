"""The live arena's shadows: the live cycle's exact context, their own books and logs, never a
hand on the live cycle (a broken shadow, an unknown name), every Nth cycle, the shared budget.

The tick's own runner (`CycleRunner`, as `botlib tick --in-process` and the cycle notebook use
it) drives everything; a model shadow is a loopback fake OpenAI reached by the real SDK.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from ipywidgets import HTML

from botlib.app.config import load_settings
from botlib.app.cycles import CycleRunner
from botlib.arena.shadows import shadow_folder
from botlib.clock import ManualClock
from botlib.ops.control import set_analyst
from botlib.ops.operator_log import ControlError
from botlib.reporting.arena_board import arena_board
from botlib.storage.store import Store
from botlib.ui.arena.tab import ArenaTab, agreement_html, board_html
from botlib.ui.control_panel import ControlPanel
from botlib.ui.dashboard import Dashboard
from tests.fakes.openai_server import FakeOpenAI

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
STEP = timedelta(minutes=15)
DECISIONS = (
    "SELECT cycle_id, last_bar_time, analyst, cost_usd, error FROM ai_decision_logs ORDER BY id"
)
BASELINES = """
[analysts.buy_and_hold]
kind = "buy_and_hold"

[analysts.flat]
kind = "flat"

[analysts.sma]
kind = "sma_cross"
fast = 3
slow = 8
"""


def pricey(fake: FakeOpenAI) -> str:
    """A model analyst at gpt-4o's price, answered by `fake`, its key in SHADOW_TEST_KEY."""
    return f"""
[analysts.pricey]
kind = "llm"
model = "gpt-4o"
base_url = "{fake.base_url}"
key_env = "SHADOW_TEST_KEY"
"""


def tick(db: Path, cycles: int, **settings: object) -> list[str]:
    """Run `cycles` live BTC/USD cycles 15 minutes apart; return their ids."""
    config = load_settings(None, db_path=db, mode="sim", analyst="rules", **settings)
    clock = ManualClock(T0)
    ids = []
    with Store(db) as store:
        store.ensure_asset("BTC/USD", timeframe="15Min", interval_minutes=15)
        runner = CycleRunner(config, store, clock)
        for _ in range(cycles):
            ids.append(runner.run("BTC/USD", force=True).cycle_id)
            clock.advance(STEP)
    return ids


def rows(db: Path, sql: str) -> list[dict]:
    with Store(db, read_only=True) as store:
        return store.rows(sql)


def test_shadows_decide_on_the_live_context_in_their_own_books(tmp_path: Path) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(BASELINES)
    db = tmp_path / "bot.db"
    ids = tick(db, 4, arena_file=arena, shadows=("buy_and_hold", "flat", "sma"))
    live = rows(db, DECISIONS)
    assert [r["cycle_id"] for r in live] == ids and {r["analyst"] for r in live} == {"rules"}
    folder = shadow_folder(db)
    assert sorted(p.name for p in folder.glob("*.db")) == ["buy_and_hold.db", "flat.db", "sma.db"]
    for name in ("buy_and_hold", "flat", "sma"):
        logged = rows(folder / f"{name}.db", DECISIONS)
        assert [r["cycle_id"] for r in logged] == [f"{i}-{name}" for i in ids]
        assert [r["last_bar_time"] for r in logged] == [r["last_bar_time"] for r in live]
        assert {r["analyst"] for r in logged} == {name}
    held = rows(folder / "buy_and_hold.db", "SELECT side, cycle_id FROM trades")
    assert held == [{"side": "buy", "cycle_id": f"{ids[0]}-buy_and_hold"}]
    assert rows(folder / "flat.db", "SELECT count(*) AS n FROM trades") == [{"n": 0}]
    live_trades = rows(db, "SELECT cycle_id FROM trades")
    assert all(t["cycle_id"] in ids for t in live_trades)  # no shadow trade in the live books
    control = tmp_path / "control.db"
    tick(control, 4)  # the same live run without shadows decides exactly the same
    same = "SELECT action, confidence, stop_loss, take_profit FROM ai_decision_logs ORDER BY id"
    assert rows(control, same) == rows(db, same)


def test_a_broken_or_unknown_shadow_never_touches_the_live_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(
        BASELINES
        + """
[analysts.remote]
kind = "llm"
model = "gpt-4o"
base_url = "https://api.example.invalid/v1"
key_env = "SHADOW_TEST_UNSET_KEY"
"""
    )
    caplog.set_level(logging.INFO)
    db = tmp_path / "bot.db"
    ids = tick(db, 3, arena_file=arena, shadows=("remote", "flat"))
    assert [r["status"] for r in rows(db, "SELECT status FROM cycles")] == ["ok"] * 3
    assert "shadow remote failed: ConfigError" in caplog.text and "SHADOW_TEST_UNSET_KEY" in (
        caplog.text
    )
    flat = rows(shadow_folder(db) / "flat.db", "SELECT id FROM cycles ORDER BY started_at")
    assert [r["id"] for r in flat] == [f"{i}-flat" for i in ids]  # the other shadow ran
    caplog.clear()
    other = tmp_path / "other.db"
    assert len(tick(other, 2, arena_file=arena, shadows=("nobody",))) == 2
    assert "shadows disabled:" in caplog.text and "nobody" in caplog.text
    assert rows(other, "SELECT count(*) AS n FROM cycles WHERE status = 'ok'") == [{"n": 2}]


def test_shadows_run_every_nth_cycle(tmp_path: Path) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(BASELINES)
    db = tmp_path / "bot.db"
    ids = tick(db, 5, arena_file=arena, shadows=("flat",), shadow_every=2)
    flat = rows(shadow_folder(db) / "flat.db", "SELECT id FROM cycles ORDER BY started_at")
    assert [r["id"] for r in flat] == [f"{ids[1]}-flat", f"{ids[3]}-flat"]


def test_model_shadows_stop_at_the_shared_daily_budget(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        arena = tmp_path / "arena.toml"
        arena.write_text(pricey(fake))
        db = tmp_path / "bot.db"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHADOW_TEST_KEY", "sk-test-shadow-not-real")
            ids = tick(db, 3, arena_file=arena, shadows=("pricey",), max_llm_usd_per_day=0.001)
        assert len(fake.requests) == 1  # one call (~$0.004 at gpt-4o's price) spent the budget
    logged = rows(shadow_folder(db) / "pricey.db", DECISIONS)
    assert [r["cycle_id"] for r in logged] == [f"{i}-pricey" for i in ids]
    assert {r["analyst"] for r in logged} == {"pricey"}
    assert logged[0]["cost_usd"] > 0.001 and logged[0]["error"] is None
    assert all("budget" in (r["error"] or "") for r in logged[1:])
    assert [r["status"] for r in rows(db, "SELECT status FROM cycles")] == ["ok"] * 3


def test_the_arena_board_ranks_live_and_shadows_and_counts_their_agreement(
    tmp_path: Path,
) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(BASELINES)
    db = tmp_path / "bot.db"
    assert arena_board(db).rows.empty  # no shadows yet: an empty board
    tick(db, 4, arena_file=arena, shadows=("buy_and_hold", "flat"))
    board = arena_board(db)
    assert set(board.rows["analyst"]) == {"live", "buy_and_hold", "flat"}
    overall = board.ranked()
    assert list(overall["symbol"].unique()) == ["all"] and len(overall) == 3
    assert overall["pnl_after_llm"].is_monotonic_decreasing
    table = board.rows.set_index(["analyst", "symbol"])
    assert table.loc[("flat", "BTC/USD"), "pnl"] == 0 and table.loc[("flat", "all"), "cycles"] == 4
    assert table.loc[("flat", "all"), "return_pct"] == 0
    assert table.loc[("buy_and_hold", "all"), "return_pct"] != 0
    last = "SELECT asset_pnl FROM equity_snapshots ORDER BY id DESC LIMIT 1"
    held = rows(shadow_folder(db) / "buy_and_hold.db", last)[0]["asset_pnl"]
    assert held != 0 and table.loc[("buy_and_hold", "BTC/USD"), "pnl"] == pytest.approx(held)
    agree = board.agreement
    assert all(agree.loc[name, name] == 1.0 for name in agree.index)
    assert agree.loc["flat", "buy_and_hold"] == agree.loc["buy_and_hold", "flat"] == 0.75
    assert set(board.curves) == {"live", "buy_and_hold", "flat"}
    assert all(len(curve) == 4 for curve in board.curves.values())


def test_the_dashboards_arena_tab_shows_the_board_when_opened(tmp_path: Path) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(BASELINES)
    db = tmp_path / "bot.db"
    empty = ArenaTab(tmp_path / "nothing.db")
    assert "No shadows yet" in empty.widget.children[0].value
    tick(db, 3, arena_file=arena, shadows=("buy_and_hold", "flat"))
    page = Dashboard.from_path(db, with_arena=True)
    try:
        assert page.widget.titles == ("Dashboard", "Arena") and page.arena is None
        page.widget.selected_index = 1  # what a click on the tab does
        assert page.arena is not None
        texts = [w.value for w in page.arena.widget.children if isinstance(w, HTML)]
        overall = texts[1]
        assert overall.startswith("<h4>All assets</h4>") and overall.count("<tr>") == 4
        assert any(t.startswith("<h4>BTC/USD</h4>") for t in texts)
        agreement = texts[-2]
        assert "<th>buy_and_hold</th>" in agreement and "75%" not in agreement  # 3 cycles
        assert "67%" in agreement  # flat and buy_and_hold agree on 2 of 3 cycles
        (figure,) = [w for w in page.arena.widget.children if not isinstance(w, HTML)]
        assert sorted(m.labels[0] for m in figure.marks) == ["buy_and_hold", "flat", "live"]
    finally:
        page.close()
    assert (
        agreement_html(pd.DataFrame([[float("nan")]], index=["a"], columns=["a"])).count("—") == 1
    )
    assert "<td>1</td><td>x</td>" in board_html(
        pd.DataFrame(
            [
                {
                    "analyst": "x",
                    "pnl": 1.0,
                    "llm_spend": 0.0,
                    "pnl_after_llm": 1.0,
                    "trades": 0,
                    "win_rate_pct": None,
                    "max_drawdown_pct": None,
                    "cycles": 1,
                }
            ]
        )  # fmt: skip
    )


def test_promoting_a_shadow_makes_it_the_live_analyst_audited(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        arena = tmp_path / "arena.toml"
        arena.write_text(BASELINES + pricey(fake))
        db = tmp_path / "bot.db"
        tick(db, 1, arena_file=arena, shadows=("sma",))
        settings = load_settings(None, db_path=db, mode="sim", arena_file=arena)
        with Store(db) as store:
            panel = ControlPanel(store, settings.limits, lambda: None, actor="ann",  # type: ignore[arg-type,return-value]
                                 arena=["sma", "pricey"])  # fmt: skip
            row = panel.rows["BTC/USD"]
            assert [value for _, value in row.analyst.options][-2:] == ["sma", "pricey"]
            row.analyst.value = "sma"
            row.apply.click()
            assert store.get_asset("BTC/USD").analyst == "sma"
            with pytest.raises(ControlError, match="arena analyst \\(sma, pricey\\)"):
                set_analyst(store, "BTC/USD", "nobody", known=("sma", "pricey"))
        actions = rows(db, "SELECT actor, action, result, message FROM operator_actions")
        assert {"actor": "ann", "action": "analyst", "result": "ok",
                "message": "BTC/USD: analyst sma (was default)"} in actions  # fmt: skip
        ids = tick(db, 2, arena_file=arena)  # the next cycles decide with the promoted one
        live = rows(db, DECISIONS)
        assert [r["analyst"] for r in live if r["cycle_id"] in ids] == ["sma", "sma"]
        with Store(db) as store, pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHADOW_TEST_KEY", "sk-test-promoted-not-real")
            set_analyst(store, "BTC/USD", "pricey", known=("pricey",), actor="ann")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHADOW_TEST_KEY", "sk-test-promoted-not-real")
            later = tick(db, 1, arena_file=arena)
        assert len(fake.requests) == 1
    (decided,) = [r for r in rows(db, DECISIONS) if r["cycle_id"] in later]
    assert decided["analyst"] == "pricey" and decided["cost_usd"] > 0


def test_the_arena_tab_adds_the_bootstrap_once_there_are_enough_cycles(tmp_path: Path) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(BASELINES)
    early_db, db = tmp_path / "early.db", tmp_path / "bot.db"
    tick(early_db, 12, arena_file=arena, shadows=("buy_and_hold", "flat"))
    early = ArenaTab(early_db).widget.children[-1].value
    assert "Shown once every analyst has 30 cycles in common (12 so far)" in early
    tick(db, 31, arena_file=arena, shadows=("buy_and_hold", "flat"))
    late = ArenaTab(db).widget.children[-1].value
    assert late.startswith("<h4>Is a lead more than luck?</h4>")
    assert "moving-block bootstrap" in late and "P(beats buy_and_hold)" in late


def test_a_shadow_is_charged_its_arena_files_price(tmp_path: Path) -> None:
    """The file's price reaches every path that builds the model (it once reached research
    runs only, through a prices file): a free local model costs nothing as a shadow too."""
    with FakeOpenAI() as fake:
        arena = tmp_path / "arena.toml"
        arena.write_text(pricey(fake) + "price = { input_per_1m = 0, output_per_1m = 0 }\n")
        db = tmp_path / "bot.db"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHADOW_TEST_KEY", "sk-test-shadow-not-real")
            tick(db, 2, arena_file=arena, shadows=("pricey",))
        assert len(fake.requests) == 2
    logged = rows(shadow_folder(db) / "pricey.db", DECISIONS)
    assert [r["cost_usd"] for r in logged] == [0.0, 0.0]
