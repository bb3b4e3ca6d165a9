from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from botlib.analysts.rules import RulesAnalyst
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine, client_order_id
from botlib.core.risk import RiskLimits
from botlib.features.window import WINDOW_BLOCK, window_length
from botlib.models import TIMEFRAMES, Action, Decision, OrderRequest
from botlib.ports import AnalystResult, CallRecord, MarketContext, ReflectionResult, TradeReview
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket


class ScriptedAnalyst:
    """Returns whatever `script(context)` says; records the contexts it saw."""

    name = "scripted"

    def __init__(self, script: Callable[[MarketContext], Decision]) -> None:
        self.script = script
        self.seen: list[MarketContext] = []

    def decide(self, context: MarketContext) -> AnalystResult:
        self.seen.append(context)
        decision = self.script(context)
        return AnalystResult(
            decision, self.name, call=CallRecord(response=decision.model_dump(mode="json"))
        )

    def reflect(self, review: TradeReview) -> ReflectionResult:
        return RulesAnalyst().reflect(review)


class RaisingAnalyst:
    name = "raising"

    def decide(self, context: MarketContext) -> AnalystResult:
        raise TimeoutError("analyst did not answer in 30 s")


class NaNMarket(SimMarket):
    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        frame = super().bars(symbol, timeframe, end, limit)
        frame.loc[frame.index[-3], "close"] = np.nan
        return frame


class ExplodingBroker(SimBroker):
    def submit_order(self, request: OrderRequest):  # type: ignore[no-untyped-def]
        raise ConnectionResetError("connection reset by peer")


def buy(ctx: MarketContext, **kw: object) -> Decision:
    fields = {
        "symbol": ctx.symbol,
        "action": "BUY",
        "confidence": 0.9,
        "position_size_pct": 5.0,
        "reasoning": "scripted buy",
    }
    return Decision.model_validate(fields | kw)


def make(store: Store, clock: ManualClock, analyst, market=None, broker_cls=SimBroker) -> Engine:  # type: ignore[no-untyped-def]
    market = market or SimMarket()
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return Engine(market, broker_cls(store, market, clock), analyst, store, clock=clock)


def counts(store: Store) -> dict[str, int]:
    tables = ["cycles", "ai_decision_logs", "trades", "sim_orders", "equity_snapshots"]
    return {t: store.db[t].count for t in tables}


def test_one_cycle_records_everything(engine: Engine, store: Store) -> None:
    report = engine.run_cycle("BTC/USD")
    assert report.status.value == "ok", report.reason
    assert counts(store) | {"trades": 0, "sim_orders": 0} == {
        "cycles": 1,
        "ai_decision_logs": 1,
        "trades": 0,
        "sim_orders": 0,
        "equity_snapshots": 1,
    }
    cycle = store.rows("SELECT * FROM cycles")[0]
    assert cycle["status"] == "ok" and cycle["decision_id"] == report.decision_id
    saved = store.db["market_data"].count  # the cycle's whole window (botlib.features.window)
    minutes = TIMEFRAMES[store.get_asset("BTC/USD").timeframe]
    assert saved == window_length(engine.clock.now(), minutes)
    assert WINDOW_BLOCK < saved <= 2 * WINDOW_BLOCK
    log = store.rows("SELECT * FROM ai_decision_logs")[0]
    assert log["analyst"] == "rules" and log["reasoning"] and log["latency_ms"] >= 0


def test_only_new_bars_are_saved_next_cycle(
    engine: Engine, store: Store, clock: ManualClock
) -> None:
    engine.run_cycle("BTC/USD")
    first = store.db["market_data"].count
    clock.advance(timedelta(hours=3))
    engine.run_cycle("BTC/USD", force=True)
    assert store.db["market_data"].count == first + 3


def test_paused_and_not_due_assets_are_skipped(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(lambda ctx: Decision.hold(ctx.symbol, "flat")))
    engine.run_cycle("BTC/USD")
    clock.advance(timedelta(minutes=30))
    assert engine.run_cycle("BTC/USD").reason.startswith("not due until")
    clock.advance(timedelta(minutes=30))
    store.update_asset("BTC/USD", paused=True)
    assert engine.run_cycle("BTC/USD").reason == "paused"  # flat: nothing to watch
    assert engine.run_cycle("BTC/USD", force=True).action == "PAUSED"  # forced: exits only
    assert store.db["cycles"].count == 2


def test_rerun_of_the_same_bar_never_orders_twice(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    first = engine.run_cycle("BTC/USD")
    assert first.orders and store.db["sim_orders"].count == 1
    held = engine.broker.position("BTC/USD")
    assert held is not None  # close it by hand, so only the client_order_id can stop a rerun
    engine.broker.submit_order(OrderRequest("BTC/USD", "sell", "manual-close", qty=held.qty))
    again = engine.run_cycle("BTC/USD", force=True)
    assert "already submitted" in again.reason
    cid = client_order_id("BTC/USD", first.bar_time, "BUY")  # type: ignore[arg-type]
    assert (
        store.rows("SELECT count(*) AS n FROM sim_orders WHERE client_order_id = ?", [cid])[0]["n"]
        == 1
    )
    assert store.db["trades"].count == 1


def test_analyst_failure_is_a_logged_hold(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, RaisingAnalyst())
    report = engine.run_cycle("BTC/USD")
    assert report.status.value == "ok" and report.action == "HOLD" and not report.orders
    log = store.rows("SELECT action, error FROM ai_decision_logs")[0]
    assert log == {"action": "HOLD", "error": "TimeoutError: analyst did not answer in 30 s"}


def test_decision_for_another_symbol_is_refused(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(lambda c: buy(c, symbol="SOL/USD")))
    report = engine.run_cycle("BTC/USD")
    assert report.action == "HOLD" and store.db["sim_orders"].count == 0
    assert "expected 'BTC/USD'" in store.rows("SELECT error FROM ai_decision_logs")[0]["error"]


def test_nan_bars_fail_the_cycle_safely(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy), market=NaNMarket())
    report = engine.run_cycle("BTC/USD")
    assert report.status.value == "failed" and "NaN" in report.reason
    cycle = store.rows("SELECT status, error, reason FROM cycles")[0]
    assert cycle["status"] == "failed" and cycle["error"] == "DataError"
    assert counts(store)["sim_orders"] == 0 and counts(store)["ai_decision_logs"] == 0


def test_broker_crash_is_recorded_and_the_next_cycle_runs(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy), broker_cls=ExplodingBroker)
    report = engine.run_cycle("BTC/USD")
    assert report.status.value == "failed" and "ConnectionResetError" in report.reason
    assert store.rows("SELECT error FROM cycles")[0]["error"] == "crash"
    assert store.db["trades"].count == 0
    clock.advance(timedelta(hours=1))
    assert engine.run_cycle("BTC/USD").status.value == "failed"  # still fails, but runs


def test_stop_loss_is_enforced_before_the_analyst(store: Store, clock: ManualClock) -> None:
    analyst = ScriptedAnalyst(buy)
    engine = make(store, clock, analyst)
    engine.run_cycle("BTC/USD")
    store.db.execute("UPDATE positions SET stop_loss = 1e9")  # any bar's low is below it
    clock.advance(timedelta(hours=1))
    report = engine.run_cycle("BTC/USD")
    assert (report.action, report.exit_reason) == ("EXIT", "stop_loss")
    assert engine.broker.position("BTC/USD") is None and store.get_position("BTC/USD") is None
    assert len(analyst.seen) == 1  # the exit cycle did not ask the analyst
    sell = store.rows("SELECT * FROM trades WHERE side = 'sell'")[0]
    assert sell["reason"] == "stop_loss" and sell["realized_pnl"] is not None
    assert store.db["ai_reflections"].count == 1


def test_a_killed_cycle_is_marked_failed_next_time(engine: Engine, store: Store) -> None:
    store.start_cycle("orphan", "BTC/USD", engine.clock.now())
    engine.run_cycle("BTC/USD")
    assert store.rows("SELECT status FROM cycles WHERE id = 'orphan'")[0]["status"] == "failed"


def test_the_analyst_sees_no_bar_after_now(store: Store, clock: ManualClock) -> None:
    analyst = ScriptedAnalyst(lambda c: Decision.hold(c.symbol, "watching"))
    engine = make(store, clock, analyst)
    for _ in range(5):
        engine.run_cycle("BTC/USD", force=True)
        clock.advance(timedelta(minutes=37))
    for ctx in analyst.seen:
        assert ctx.bars.index[-1] + timedelta(hours=1) <= ctx.now
    logged = store.rows("SELECT last_bar_time, created_at FROM ai_decision_logs")
    assert all(r["last_bar_time"] < r["created_at"] for r in logged)


def test_decision_is_the_same_whatever_comes_later(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Decide at T; then, in a second world that has run to T+2 days, decide again at T."""
    t = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    first = make(store, ManualClock(t), RulesAnalyst()).run_cycle("BTC/USD")
    other = Store(tmp_path / "other.db")
    later_clock = ManualClock(t + timedelta(days=2))
    watcher = ScriptedAnalyst(lambda c: Decision.hold(c.symbol, "watch"))  # stays flat
    make(other, later_clock, watcher).run_cycle("BTC/USD")
    later_clock.set(t)
    again = make(other, later_clock, RulesAnalyst()).run_cycle("BTC/USD", force=True)
    a = store.rows("SELECT action, reasoning, stop_loss FROM ai_decision_logs")[0]
    b = other.rows("SELECT action, reasoning, stop_loss FROM ai_decision_logs ORDER BY id")[-1]
    assert (first.bar_time, a) == (again.bar_time, b)
    other.close()


@pytest.mark.parametrize("symbol", ["DOGE/USD", ""])
def test_unknown_symbol_raises_before_any_record(engine: Engine, store: Store, symbol: str) -> None:
    from botlib.errors import UnknownSymbolError

    with pytest.raises(UnknownSymbolError):
        engine.run_cycle(symbol)
    assert store.db["cycles"].count == 0


def test_the_smc_summary_reaches_the_analyst_and_the_log(store: Store, clock: ManualClock) -> None:
    import json

    analyst = ScriptedAnalyst(lambda c: Decision.hold(c.symbol, "watch"))
    make(store, clock, analyst).run_cycle("BTC/USD")
    smc = analyst.seen[0].smc
    assert smc["bar_time"] == analyst.seen[0].bars.index[-1].isoformat()
    assert smc["trend"] in ("bullish", "bearish", "none")
    engine = make(store, clock, RulesAnalyst())
    engine.run_cycle("BTC/USD", force=True)
    logged = json.loads(
        store.rows("SELECT request FROM ai_decision_logs ORDER BY id")[-1]["request"]
    )
    assert logged["smc"] == smc  # stored with the decision's inputs, same bar, same state


def plan_analyst(plan: dict[str, str]) -> ScriptedAnalyst:
    """Decide whatever `plan[symbol]` says now (BUY asks for 50 %, capped at 25 %)."""

    def script(ctx: MarketContext) -> Decision:
        action = plan.get(ctx.symbol, "HOLD")
        if action == "BUY":
            return buy(ctx, position_size_pct=50.0)
        return Decision.hold(ctx.symbol, "wait").model_copy(
            update={"action": Action(action), "reasoning": f"scripted {action}"}
        )

    return ScriptedAnalyst(script)


def limited(store: Store, clock: ManualClock, analyst, risk: RiskLimits) -> Engine:  # type: ignore[no-untyped-def]
    market = SimMarket()
    ensure_assets(store, ["BTC/USD", "SOL/USD"], position_size_pct=50)
    return Engine(market, SimBroker(store, market, clock), analyst, store, risk=risk, clock=clock)


def test_daily_loss_halts_entries_until_a_new_day(store: Store) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    clock = ManualClock(day - timedelta(hours=1))
    plan = {"SOL/USD": "HOLD"}
    engine = limited(store, clock, plan_analyst(plan), RiskLimits(max_daily_loss_pct=0.05))
    assert engine.run_cycle("SOL/USD").equity == 100_000  # yesterday's close: the day's start
    clock.set(day + timedelta(minutes=30))
    plan["BTC/USD"] = "BUY"  # fees and slippage on 25 % of equity cost more than 0.05 %
    bought = engine.run_cycle("BTC/USD", force=True)
    assert bought.orders and bought.equity is not None and bought.equity <= 99_950
    plan["SOL/USD"] = "BUY"
    denied = engine.run_cycle("SOL/USD", force=True)
    assert denied.reason == "denied: trading halted (daily loss limit 0.05%), exits only"
    assert not denied.orders and engine.broker.position("SOL/USD") is None
    plan["BTC/USD"] = "SELL"
    sold = engine.run_cycle("BTC/USD", force=True)
    assert sold.orders and engine.broker.position("BTC/USD") is None  # exits stay allowed
    clock.set(day + timedelta(days=1, minutes=30))  # the new day starts from today's close
    again = engine.run_cycle("SOL/USD", force=True)
    assert again.orders and again.reason.startswith("approved: buy"), again.reason


def test_stop_loss_still_exits_when_halted(store: Store, clock: ManualClock) -> None:
    plan = {"BTC/USD": "BUY"}
    engine = limited(store, clock, plan_analyst(plan), RiskLimits(max_daily_loss_pct=0.05))
    engine.run_cycle("SOL/USD")  # the day's first snapshot: 100,000
    engine.run_cycle("BTC/USD")
    plan["SOL/USD"] = "BUY"
    assert "daily loss limit" in engine.run_cycle("SOL/USD", force=True).reason
    store.db.execute("UPDATE positions SET stop_loss = 1e9")
    report = engine.run_cycle("BTC/USD", force=True)
    assert (report.action, report.exit_reason) == ("EXIT", "stop_loss") and report.orders


def test_position_cap_bounds_the_order(store: Store, clock: ManualClock) -> None:
    analyst = ScriptedAnalyst(lambda c: buy(c, position_size_pct=80.0))
    engine = limited(store, clock, analyst, RiskLimits(max_position_pct=10))
    report = engine.run_cycle("BTC/USD")  # decision 80 %, asset 50 %, account cap 10 %
    assert report.reason.startswith("approved: buy 10,000.00 USD (10.00% of equity)")
    order = store.rows("SELECT notional FROM sim_orders")[0]
    assert order["notional"] == pytest.approx(10_000, rel=1e-6)


def test_a_paused_asset_keeps_its_stops_but_decides_nothing(
    store: Store, clock: ManualClock
) -> None:
    analyst = ScriptedAnalyst(buy)
    engine = make(store, clock, analyst)
    engine.run_cycle("BTC/USD")  # buys
    store.update_asset("BTC/USD", paused=True)
    clock.advance(timedelta(hours=1))
    watched = engine.run_cycle("BTC/USD")  # due, holding: exits only
    assert (watched.status.value, watched.action, watched.orders) == ("ok", "PAUSED", ())
    assert "stop-loss and take-profit still watched" in watched.reason
    assert len(analyst.seen) == 1 and store.db["ai_decision_logs"].count == 1
    store.db.execute("UPDATE positions SET stop_loss = 1e9")  # the next bar is below it
    clock.advance(timedelta(hours=1))
    report = engine.run_cycle("BTC/USD")
    assert (report.action, report.exit_reason) == ("EXIT", "stop_loss") and report.orders
    clock.advance(timedelta(hours=1))
    assert engine.run_cycle("BTC/USD").reason == "paused"  # flat now: nothing to watch
    assert len(analyst.seen) == 1


# Exits count only prices seen after the entry. Regression (2026-12-03, 08:35 UTC): a restart
# in the entry's hour "stopped out" on the low of the hour BEFORE the entry and sold.
ENTRY = datetime(2026, 12, 3, 8, 35, tzinfo=UTC)  # mid-bar: the last closed bar is 07:00


class WickMarket(SimMarket):
    """The simulator, with the last closed bar's low or high pulled to `wick` when set."""

    def __init__(self) -> None:
        super().__init__()
        self.wick: dict[str, float] = {}

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        frame = super().bars(symbol, timeframe, end, limit)
        for column, price in self.wick.items():
            frame.loc[frame.index[-1], column] = price
        return frame


def bought_once(store: Store, clock: ManualClock, market: WickMarket) -> Engine:
    """An engine whose analyst buys on its first cycle (at `clock`) and holds after it."""
    analyst = ScriptedAnalyst(
        lambda c: buy(c) if not store.db["trades"].count else Decision.hold(c.symbol, "hold")
    )
    engine = make(store, clock, analyst, market=market)
    assert engine.run_cycle("BTC/USD").orders
    return engine


@pytest.mark.parametrize(("column", "wick"), [("low", 1.0), ("high", 1e9)])
def test_a_bar_before_the_entry_beyond_the_stop_or_target_does_not_exit(
    store: Store, column: str, wick: float
) -> None:
    clock, market = ManualClock(ENTRY), WickMarket()
    engine = bought_once(store, clock, market)
    market.wick = {column: wick}  # the 07:00 bar: it closed before the entry at 08:35
    for later in (timedelta(minutes=1), timedelta(minutes=30)):  # a restart, the next cycle
        clock.set(ENTRY + later)
        report = engine.run_cycle("BTC/USD", force=True)
        assert (report.status.value, report.exit_reason, report.orders) == ("ok", None, ())
    assert store.rows("SELECT count(*) AS n FROM sim_orders") == [{"n": 1}]


def test_the_bar_the_entry_was_made_in_does_not_exit_either(store: Store) -> None:
    clock, market = ManualClock(ENTRY), WickMarket()
    engine = bought_once(store, clock, market)
    market.wick = {"low": 1.0}
    clock.set(ENTRY.replace(hour=9, minute=1))  # last closed bar 08:00: half of it predates 08:35
    assert engine.run_cycle("BTC/USD", force=True).exit_reason is None


@pytest.mark.parametrize(("column", "wick", "why"), [("low", 1.0, "stop_loss"),
                                                     ("high", 1e9, "take_profit")])  # fmt: skip
def test_a_bar_after_the_entry_beyond_the_stop_or_target_exits(
    store: Store, column: str, wick: float, why: str
) -> None:
    clock, market = ManualClock(ENTRY), WickMarket()
    engine = bought_once(store, clock, market)
    market.wick = {column: wick}
    clock.set(ENTRY.replace(hour=10, minute=1))  # last closed bar 09:00, all after the entry
    report = engine.run_cycle("BTC/USD", force=True)
    assert (report.action, report.exit_reason) == ("EXIT", why) and report.orders


def test_the_latest_price_under_the_stop_exits_within_the_entry_bar(store: Store) -> None:
    clock = ManualClock(ENTRY)
    engine = bought_once(store, clock, WickMarket())
    price = engine.market.latest_price("BTC/USD", ENTRY + timedelta(minutes=1))
    store.db.execute("UPDATE positions SET stop_loss = ?", [price * 1.001])
    clock.set(ENTRY + timedelta(minutes=1))
    report = engine.run_cycle("BTC/USD", force=True)
    assert (report.action, report.exit_reason) == ("EXIT", "stop_loss") and report.orders


def test_a_recovered_order_is_opened_at_its_fill_not_at_its_booking(store: Store) -> None:
    """Killed after the fill, booked a cycle later: its exits count prices from the fill on."""
    clock = ManualClock(ENTRY)
    engine = make(store, clock, ScriptedAnalyst(lambda c: Decision.hold(c.symbol, "hold")))
    request = OrderRequest("BTC/USD", "buy", "BTCUSD-20261203T0700-buy", notional=1_000.0)
    store.add_intent(
        {"client_order_id": request.client_order_id, "symbol": "BTC/USD", "side": "buy",
         "notional": 1_000.0, "reason": "signal", "created_at": ENTRY.isoformat(),
         "stop_loss": 1.0, "take_profit": 1e9}
    )  # fmt: skip
    engine.broker.submit_order(request)  # filled at 08:35; the process dies before the booking
    clock.set(ENTRY + timedelta(minutes=3))
    engine.run_cycle("BTC/USD", force=True)
    position = store.get_position("BTC/USD")
    assert position is not None and position["opened_at"] == ENTRY.isoformat()
