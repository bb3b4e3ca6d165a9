"""Operator actions and reconciliation in the simulator: settings, close, flatten, kill switch,
adopt, clear, stale."""

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from botlib.app.config import Settings, load_settings
from botlib.app.scheduler import tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.models import OrderRequest
from botlib.ops.control import (
    KILL_PHRASE,
    ControlError,
    close_now,
    close_position,
    flatten_all,
    kill_switch,
    recent_actions,
    set_analyst,
    set_interval,
    set_limits,
    set_paused,
    set_position_size,
    set_stops,
)
from botlib.ops.limits import load_limits
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket
from tests.conftest import T0
from tests.test_engine import ScriptedAnalyst, buy, make


def open_both(engine: Engine) -> None:
    for symbol in ("BTC/USD", "SOL/USD"):
        engine.run_cycle(symbol, force=True)


def test_the_kill_switch_flattens_and_books_every_position(
    store: Store, clock: ManualClock
) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    open_both(engine)
    assert {p.symbol for p in engine.broker.positions()} == {"BTC/USD", "SOL/USD"}
    clock.advance(timedelta(minutes=5))
    notes = flatten_all(engine)
    assert len(notes) == 2 and all("closed by manual" in n for n in notes)
    assert engine.broker.positions() == [] and store.rows("SELECT * FROM positions") == []
    sells = store.rows("SELECT * FROM trades WHERE side = 'sell'")
    assert len(sells) == 2 and all(t["reason"] == "manual" for t in sells)
    assert all(t["realized_pnl"] is not None for t in sells)
    assert flatten_all(engine) == []  # nothing left: a second press does nothing


def test_a_double_click_does_not_sell_twice(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    engine.run_cycle("BTC/USD", force=True)
    held = engine.broker.position("BTC/USD")
    assert held is not None
    first = close_position(engine, "BTC/USD")
    again = close_position(engine, "BTC/USD")
    assert "closed by manual" in first and again == "BTC/USD: no position to close"
    assert store.db["sim_orders"].count == 2  # the buy and one sell


def test_reconciliation_adopts_and_clears_and_records_why(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(lambda ctx: buy(ctx, action="HOLD")))
    # a manual trade at the venue the bot never saw
    engine.broker.submit_order(OrderRequest("SOL/USD", "buy", "manual-ui-1", notional=500.0))
    engine.run_cycle("SOL/USD", force=True)
    booked = store.get_position("SOL/USD")
    assert booked is not None and booked["qty"] == engine.broker.position("SOL/USD").qty
    # and the reverse: the bot thinks it holds BTC, the venue has nothing
    store.set_position("BTC/USD", {"qty": 1.0, "avg_entry_price": 90_000.0})
    engine.run_cycle("BTC/USD", force=True)
    assert store.get_position("BTC/USD") is None
    kinds = [(r["symbol"], r["kind"]) for r in store.rows("SELECT * FROM reconciliations")]
    assert kinds == [("SOL/USD", "adopted"), ("BTC/USD", "cleared")]


def test_a_quantity_difference_is_corrected(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    engine.run_cycle("BTC/USD", force=True)
    held = engine.broker.position("BTC/USD")
    store.set_position("BTC/USD", {"qty": held.qty * 2, "avg_entry_price": held.avg_entry_price})
    clock.advance(timedelta(minutes=1))
    engine.run_cycle("BTC/USD", force=True)
    assert store.get_position("BTC/USD")["qty"] == held.qty
    row = store.rows("SELECT * FROM reconciliations")[0]
    assert (row["kind"], row["db_qty"], row["broker_qty"]) == (
        "qty_corrected",
        held.qty * 2,
        held.qty,
    )


class FrozenMarket(SimMarket):
    """A feed that stopped 5 hours ago (hourly bars: stale after 3 missed intervals)."""

    def bars(self, symbol: str, timeframe: str, end: pd.Timestamp, limit: int) -> pd.DataFrame:
        return super().bars(symbol, timeframe, end - timedelta(hours=5), limit)


def test_stale_data_skips_the_cycle_with_the_reason(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy), market=FrozenMarket())
    report = engine.run_cycle("BTC/USD", force=True)
    assert report.status.value == "skipped" and report.reason.startswith("stale data: last bar")
    cycle = store.rows("SELECT * FROM cycles")[0]
    assert cycle["status"] == "skipped" and cycle["reason"].startswith("stale data")
    assert store.db["sim_orders"].count == 0


# operator settings: validated, written, audited -----------------------------------------------
def actions(store: Store) -> list[dict[str, Any]]:
    return store.rows("SELECT * FROM operator_actions ORDER BY id")


@pytest.fixture
def assets(store: Store) -> Store:
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return store


@pytest.mark.parametrize(
    ("call", "field", "expected"),
    [
        (lambda s: set_paused(s, "BTC/USD", True, actor="ann", now=T0), "paused", True),
        (lambda s: set_interval(s, "BTC/USD", 15, actor="ann", now=T0), "interval_minutes", 15),
        (lambda s: set_position_size(s, "BTC/USD", 2.5, actor="ann", now=T0),
         "position_size_pct", 2.5),
        (lambda s: set_stops(s, "BTC/USD", stop_loss_pct=1.5, actor="ann", now=T0),
         "stop_loss_pct", 1.5),
        (lambda s: set_stops(s, "BTC/USD", take_profit_pct=12, actor="ann", now=T0),
         "take_profit_pct", 12.0),
        (lambda s: set_analyst(s, "BTC/USD", "openai", actor="ann", now=T0), "analyst", "openai"),
    ],
)  # fmt: skip
def test_each_setter_writes_the_value_and_an_ok_action(
    assets: Store, call: Callable[[Store], str], field: str, expected: object
) -> None:
    before, other = assets.get_asset("BTC/USD"), assets.get_asset("SOL/USD")
    assert getattr(before, field) != expected
    message = call(assets)
    after = assets.get_asset("BTC/USD")
    assert getattr(after, field) == expected
    assert after.model_dump(exclude={field}) == before.model_dump(exclude={field})
    assert assets.get_asset("SOL/USD") == other
    assert message.startswith("BTC/USD: ")
    [row] = actions(assets)
    assert (row["ts"], row["actor"], row["symbol"], row["result"]) == (
        T0.isoformat(), "ann", "BTC/USD", "ok",
    )  # fmt: skip
    assert row["message"] == message
    assert recent_actions(assets)[0]["params"] == json.loads(row["params"])


def test_both_stops_at_once_and_the_message_says_what_changed(assets: Store) -> None:
    message = set_stops(assets, "SOL/USD", stop_loss_pct=3, take_profit_pct=9, now=T0)
    sol = assets.get_asset("SOL/USD")
    assert (sol.stop_loss_pct, sol.take_profit_pct) == (3.0, 9.0)
    assert message == "SOL/USD: stop_loss_pct 3% (was 2%), take_profit_pct 9% (was 4%)"
    assert actions(assets)[0]["actor"]  # the OS user (or "operator"), never empty


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda s: set_interval(s, "BTC/USD", 7), ["interval_minutes", "1, 5, 15, 30, 60"]),
        (lambda s: set_interval(s, "BTC/USD", True), ["interval_minutes"]),
        (lambda s: set_position_size(s, "BTC/USD", 0), ["position_size_pct", "> 0", "<= 100"]),
        (lambda s: set_position_size(s, "BTC/USD", 150), ["position_size_pct", "<= 100"]),
        (lambda s: set_position_size(s, "BTC/USD", float("nan")), ["position_size_pct"]),
        (lambda s: set_stops(s, "BTC/USD", stop_loss_pct=-1), ["stop_loss_pct", "< 100"]),
        (lambda s: set_stops(s, "BTC/USD", take_profit_pct=0), ["take_profit_pct", "<= 1000"]),
        (lambda s: set_stops(s, "BTC/USD"), ["stop_loss_pct", "take_profit_pct"]),
        (lambda s: set_analyst(s, "BTC/USD", "gpt"), ["analyst", "'rules'", "'openai'"]),
        (lambda s: set_interval(s, "DOGE/EUR", 15), ["DOGE/EUR", "BTC/USD, SOL/USD"]),
        (lambda s: set_paused(s, "DOGE/EUR", True), ["DOGE/EUR", "known: BTC/USD, SOL/USD"]),
    ],
)  # fmt: skip
def test_a_bad_setting_is_refused_recorded_and_changes_nothing(
    assets: Store, call: Callable[[Store], str], words: list[str]
) -> None:
    before = assets.list_assets()
    with pytest.raises(ControlError) as refused:
        call(assets)
    message = str(refused.value)
    assert all(word in message for word in words), message
    assert assets.list_assets() == before
    [row] = actions(assets)
    assert (row["result"], row["message"]) == ("rejected", message)


def test_limits_are_saved_for_the_next_tick_and_bad_ones_refused(assets: Store) -> None:
    settings = load_settings(None)
    message = set_limits(assets, settings.limits, max_daily_loss_pct=3, llm_budget_usd=0.5, now=T0)
    limits = load_limits(assets, settings.limits)
    assert (limits.max_daily_loss_pct, limits.llm_budget_usd) == (3.0, 0.5)
    assert "max_daily_loss_pct 3 (was 5)" in message
    refusals = [
        ({"max_daily_loss_pct": -1}, "max_daily_loss_pct"),
        ({"max_leverage": 2}, "max_leverage"),
        ({}, "max_position_pct"),
    ]
    for changes, word in refusals:
        with pytest.raises((ControlError, ValueError)) as refused:
            set_limits(assets, settings.limits, **changes)
        assert word in str(refused.value)
    assert load_limits(assets, settings.limits) == limits
    rows = actions(assets)
    assert [r["result"] for r in rows] == ["ok", "rejected", "rejected", "rejected"]
    assert "max_daily_loss_pct" in rows[1]["message"] and "max_leverage" in rows[2]["message"]
    assert json.loads(rows[0]["params"]) == {"max_daily_loss_pct": 3, "llm_budget_usd": 0.5}


def test_recent_actions_newest_first_and_limited(assets: Store) -> None:
    for minutes in (5, 15, 30):
        set_interval(assets, "SOL/USD", minutes)
    latest = recent_actions(assets, limit=2)
    assert [a["params"]["minutes"] for a in latest] == [30, 15]


# the next tick sees the change ----------------------------------------------------------------
def sim_settings(tmp_path: Path) -> Settings:
    return load_settings(
        env_file=None, db_path=tmp_path / "bot.db", mode="sim", analyst="rules",
        tick_notebooks=False,  # in-process cycles: the papermill ticks have their own tests
    )  # fmt: skip


def cycles_per_symbol(store: Store) -> dict[str, int]:
    rows = store.rows("SELECT symbol, count(*) AS n FROM cycles GROUP BY symbol")
    return {r["symbol"]: r["n"] for r in rows}


def test_pausing_stops_the_next_tick_for_that_asset_only(
    tmp_path: Path, assets: Store, clock: ManualClock
) -> None:
    """A paused, flat asset gets no cycle at all (one holding a position only has its exits
    watched: `test_engine.test_a_paused_asset_keeps_its_stops_but_decides_nothing`)."""
    settings = sim_settings(tmp_path)
    assert Path(assets.path) == settings.db_path
    set_paused(assets, "BTC/USD", True)
    reports = tick(settings, clock)
    assert reports is not None
    assert {r.symbol: r.reason for r in reports}["BTC/USD"] == "paused"
    assert cycles_per_symbol(assets) == {"SOL/USD": 1}
    clock.advance(timedelta(hours=1))
    tick(settings, clock)
    assert cycles_per_symbol(assets) == {"SOL/USD": 2}
    set_paused(assets, "BTC/USD", False)
    clock.advance(timedelta(hours=1))
    tick(settings, clock)
    assert cycles_per_symbol(assets) == {"BTC/USD": 1, "SOL/USD": 3}
    assert [a["action"] for a in actions(assets)] == ["pause", "resume"]


# close and kill switch in the simulator ------------------------------------------------------
def test_close_now_sells_one_asset_and_is_audited(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    open_both(engine)
    clock.advance(timedelta(minutes=5))
    message = close_now(engine, "SOL/USD", actor="ann")
    assert "closed by manual" in message
    assert [p.symbol for p in engine.broker.positions()] == ["BTC/USD"]
    with pytest.raises(ControlError, match="known: BTC/USD, SOL/USD"):
        close_now(engine, "DOGE/EUR")
    rows = actions(store)
    assert [(r["action"], r["result"], r["symbol"]) for r in rows] == [
        ("close", "ok", "SOL/USD"), ("close", "rejected", "DOGE/EUR"),
    ]  # fmt: skip
    assert rows[0]["ts"] == clock.now().isoformat()  # the engine's (simulated) time


def test_the_kill_switch_needs_the_phrase_then_pauses_and_flattens(
    store: Store, clock: ManualClock
) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    open_both(engine)
    held = {p.symbol: p.qty for p in engine.broker.positions()}
    assert set(held) == {"BTC/USD", "SOL/USD"}
    clock.advance(timedelta(minutes=5))
    for wrong in ("flatten all", "yes", ""):
        with pytest.raises(ControlError, match=KILL_PHRASE):
            kill_switch(engine, wrong, actor="ann")
    assert {p.symbol: p.qty for p in engine.broker.positions()} == held
    assert store.rows("SELECT * FROM trades WHERE side = 'sell'") == []
    assert not any(a.paused for a in store.list_assets())

    message = kill_switch(engine, KILL_PHRASE, actor="ann")
    assert "paused BTC/USD, SOL/USD" in message
    assert all(a.paused for a in store.list_assets())
    assert engine.broker.positions() == [] and store.rows("SELECT * FROM positions") == []
    sells = store.rows("SELECT * FROM trades WHERE side = 'sell'")
    assert sorted(t["symbol"] for t in sells) == ["BTC/USD", "SOL/USD"]
    assert all(t["reason"] == "manual" and t["realized_pnl"] is not None for t in sells)
    ok = [r for r in actions(store) if r["result"] == "ok"]
    assert [(r["action"], r["actor"]) for r in ok] == [("kill_switch", "ann")]
    assert len(actions(store)) == 4  # three refusals and the one that ran
