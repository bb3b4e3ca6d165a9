"""The live arena's shadows: the live cycle's exact context, their own books and logs, never a
hand on the live cycle (a broken shadow, an unknown name), every Nth cycle, the shared budget.

The tick's own runner (`CycleRunner`, as `botlib tick --in-process` and the cycle notebook use
it) drives everything; a model shadow is a loopback fake OpenAI reached by the real SDK.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from botlib.app.config import load_settings
from botlib.app.cycles import CycleRunner
from botlib.arena.shadows import shadow_folder
from botlib.clock import ManualClock
from botlib.storage.store import Store
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
        arena.write_text(f"""
[analysts.pricey]
kind = "llm"
model = "gpt-4o"
base_url = "{fake.base_url}"
key_env = "SHADOW_TEST_KEY"
""")
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
