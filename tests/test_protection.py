"""Protection that rests at the venue, in the simulator: one stop per position, kept in line.

The simulated market is deterministic, so a test can read the minutes after an entry and put
the stop just above their low (it must fire) or far below it (it must not).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.core.orders.execution import PROTECT
from botlib.core.orders.guard import Guard
from botlib.core.orders.protection import Protection
from botlib.models import Decision, OrderRequest
from botlib.ops.alerts import Alerts
from botlib.ports import MarketContext
from botlib.storage.store import Store
from botlib.venues.resting import match_bar
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import T0
from tests.test_engine import ScriptedAnalyst, buy

SYMBOL = "BTC/USD"


def hold(ctx: MarketContext, **kw: object) -> Decision:
    fields = {"symbol": ctx.symbol, "action": "HOLD", "confidence": 0.0,
              "position_size_pct": 0.0, "reasoning": "scripted hold"}  # fmt: skip
    return Decision.model_validate(fields | kw)


class Rig:
    """An engine on the simulator with venue stops, a guard beside it, and a script to follow."""

    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.store, self.clock, self.market = store, clock, SimMarket()
        ensure_assets(store, [SYMBOL])
        self.broker = SimBroker(store, self.market, clock)
        self.alerts = Alerts(store)
        self.script = buy
        self.analyst = ScriptedAnalyst(lambda ctx: self.script(ctx))
        self.engine = Engine(self.market, self.broker, self.analyst, store, clock=clock,
                             alerts=self.alerts, protection=Protection(0.5))  # fmt: skip
        self.guard = Guard(self.market, self.broker, store, Protection(0.5), self.alerts)

    def cycle(self, at: datetime) -> str:
        self.clock.set(at)
        report = self.engine.run_cycle(SYMBOL, force=True)
        assert report.status.value == "ok", report.reason
        return report.reason

    def watch(self, at: datetime) -> list:  # type: ignore[type-arg]
        """One guard pass at `at` (the venue's clock moves with it)."""
        self.clock.set(at)
        return self.guard.check(at)

    def minutes(self, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
        count = int((end - start).total_seconds() // 60)
        frame = self.market.bars(SYMBOL, "1Min", end, count)
        return frame[frame.index >= start]

    def sells(self) -> list[dict]:
        return self.store.rows("SELECT * FROM sim_orders WHERE side = 'sell' ORDER BY created_at")


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_a_filled_entry_leaves_exactly_one_resting_stop(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.97, take_profit=ctx.price * 1.5)
    rig.cycle(T0)
    position = rig.store.get_position(SYMBOL)
    resting = rig.broker.open_orders(SYMBOL)
    assert position is not None and len(resting) == 1
    stop = resting[0]
    assert (stop.type, stop.side) == ("stop_limit", "sell")
    assert stop.stop_price == pytest.approx(position["stop_loss"])
    assert stop.limit_price == pytest.approx(position["stop_loss"] * 0.995)
    assert stop.qty == pytest.approx(rig.broker.position(SYMBOL).qty)  # type: ignore[union-attr]
    intent = rig.store.resting_intents(SYMBOL, PROTECT)
    assert [i["client_order_id"] for i in intent] == [stop.client_order_id]
    assert stop.client_order_id.endswith("-buy-p1")
    # a second cycle (and a guard pass) keep that one stop, place no other
    rig.script = hold
    rig.cycle(T0 + timedelta(minutes=5))
    rig.watch(T0 + timedelta(minutes=6))
    assert [o.client_order_id for o in rig.broker.open_orders(SYMBOL)] == [stop.client_order_id]


def test_the_venue_stop_fills_between_cycles_and_is_booked_with_its_cause(rig: Rig) -> None:
    later = T0 + timedelta(hours=6)
    path = rig.minutes(T0, later)
    floor = float(path["low"].min())
    level = floor * 1.0005  # just above the lowest low: it must trigger
    rig.script = lambda ctx: buy(ctx, stop_loss=level, take_profit=ctx.price * 1.5)
    rig.cycle(T0)
    entry = rig.store.get_position(SYMBOL)
    assert entry is not None and level < float(entry["avg_entry_price"])
    cash_before = rig.store.sim_cash()
    rig.watch(later)  # the guard books what the venue filled while nobody looked
    trades = rig.store.rows("SELECT * FROM trades WHERE side = 'sell'")
    assert len(trades) == 1 and trades[0]["reason"] == PROTECT
    expected = _first_fill(path, level, level * 0.995)
    assert trades[0]["price"] == pytest.approx(expected)
    proceeds = rig.store.sim_cash() - cash_before
    assert trades[0]["qty"] * trades[0]["price"] - trades[0]["fee"] == pytest.approx(proceeds)
    assert rig.store.get_position(SYMBOL) is None
    assert rig.broker.open_orders() == [] and rig.store.resting_intents(None, None) == []
    assert len(rig.sells()) == 1  # never a second sell


def _first_fill(path, stop: float, limit: float) -> float:  # type: ignore[no-untyped-def]
    triggered = False
    for _, bar in path.iterrows():
        m = match_bar("stop_limit", "sell", limit=limit, stop=stop, triggered=triggered,
                      open_=bar["open"], high=bar["high"], low=bar["low"])  # fmt: skip
        triggered = m.triggered
        if m.price is not None:
            return m.price
    raise AssertionError("the stop never filled")


def test_take_profit_cancels_the_stop_then_sells_once(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.91, take_profit=ctx.price * 1.0001)
    rig.cycle(T0)
    stop = rig.broker.open_orders(SYMBOL)[0]
    target = float(rig.store.get_position(SYMBOL)["take_profit"])  # type: ignore[index]
    when = next(
        t.to_pydatetime() + timedelta(minutes=1)
        for t, close in rig.minutes(T0, T0 + timedelta(days=2))["close"].items()
        if close >= target
    )
    [result] = rig.watch(when)
    assert result.action == "take_profit"
    assert rig.store.intent(stop.client_order_id)["status"] == "canceled"  # type: ignore[index]
    sells = rig.sells()
    assert [s["type"] for s in sells] == ["stop_limit", "market"]
    assert [s["status"] for s in sells] == ["canceled", "filled"]
    trade = rig.store.rows("SELECT reason FROM trades WHERE side = 'sell'")
    assert trade == [{"reason": "take_profit"}]
    assert rig.broker.position(SYMBOL) is None and rig.broker.open_orders() == []


def test_a_gapped_stop_is_exited_at_market_with_an_alert(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.999, take_profit=ctx.price * 2)
    rig.cycle(T0)
    stop = rig.broker.open_orders(SYMBOL)[0]
    # a gap: the stop's limit is above every price to come, so once triggered it cannot fill
    with rig.store.transaction():
        rig.store.update_sim_order(stop.id, {"limit_price": 10_000_000.0})
        rig.store.db.execute(
            "UPDATE order_intents SET limit_price = 1e7 WHERE client_order_id = ?",
            [stop.client_order_id],
        )
    level = float(rig.store.get_position(SYMBOL)["stop_loss"])  # type: ignore[index]
    when = next(
        t.to_pydatetime() + timedelta(minutes=1)
        for t, close in rig.minutes(T0, T0 + timedelta(days=3))["close"].items()
        if close < level
    )
    [result] = rig.watch(when)
    assert result.action == "gap_exit"
    assert rig.store.intent(stop.client_order_id)["status"] == "canceled"  # type: ignore[index]
    trades = rig.store.rows("SELECT reason FROM trades WHERE side = 'sell'")
    assert trades == [{"reason": "gap_exit"}]
    assert "gap_exit" in [a["kind"] for a in rig.store.recent_alerts()]
    assert rig.broker.open_orders() == [] and len(rig.sells()) == 2


def test_a_higher_stop_from_a_hold_replaces_the_resting_stop(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.9, take_profit=ctx.price * 2)
    rig.cycle(T0)
    first = rig.broker.open_orders(SYMBOL)[0]
    rig.script = lambda ctx: hold(ctx, stop_loss=ctx.price * 0.95)
    rig.cycle(T0 + timedelta(minutes=30))
    [second] = rig.broker.open_orders(SYMBOL)
    assert second.client_order_id == first.client_order_id.replace("-p1", "-p2")
    assert second.stop_price == pytest.approx(rig.store.get_position(SYMBOL)["stop_loss"])  # type: ignore[index]
    assert rig.store.intent(first.client_order_id)["status"] == "canceled"  # type: ignore[index]
    # a lower stop never loosens it
    rig.script = lambda ctx: hold(ctx, stop_loss=ctx.price * 0.5)
    rig.cycle(T0 + timedelta(minutes=60))
    assert [o.client_order_id for o in rig.broker.open_orders(SYMBOL)] == [second.client_order_id]


def test_reconciliation_restores_a_missing_stop_and_cancels_an_orphan(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.9, take_profit=ctx.price * 2)
    rig.cycle(T0)
    stop = rig.broker.open_orders(SYMBOL)[0]
    rig.broker.cancel_order(stop.id)  # lost at the venue (an operator, a venue purge)
    rig.watch(T0 + timedelta(minutes=2))
    [again] = rig.broker.open_orders(SYMBOL)
    assert again.client_order_id.endswith("-p2")
    # the position goes at the venue (sold outside the bot): its stop is cancelled, not left
    with rig.store.transaction():
        rig.store.set_sim_books(rig.store.sim_cash(), SYMBOL, 0.0, 0.0)
    rig.watch(T0 + timedelta(minutes=3))
    assert rig.broker.open_orders() == []
    assert rig.store.intent(again.client_order_id)["status"] in ("canceled", "unfilled")  # type: ignore[index]
    assert rig.store.get_position(SYMBOL) is None


def test_an_unknown_open_order_is_recorded_and_alerted_once_never_touched(rig: Rig) -> None:
    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.9, take_profit=ctx.price * 2)
    rig.cycle(T0)
    price = rig.market.latest_price(SYMBOL, T0)
    rig.broker.submit_order(OrderRequest(SYMBOL, "buy", "web-limit", notional=50.0,
                                         type="limit", limit_price=price * 0.5))  # fmt: skip
    rig.watch(T0 + timedelta(minutes=2))
    rig.watch(T0 + timedelta(minutes=3))
    found = rig.store.rows("SELECT * FROM reconciliations WHERE kind = 'unknown_order'")
    assert len(found) == 1 and "web-limit" in found[0]["detail"]
    assert [a["kind"] for a in rig.store.recent_alerts()].count("unknown_order") == 1
    assert "web-limit" in [o.client_order_id for o in rig.broker.open_orders(SYMBOL)]


def test_close_now_cancels_the_stop_first(rig: Rig) -> None:
    from botlib.ops.control import close_position

    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.9, take_profit=ctx.price * 2)
    rig.cycle(T0)
    note = close_position(rig.engine, SYMBOL)
    assert "closed by manual" in note
    assert [s["status"] for s in rig.sells()] == ["canceled", "filled"]
    assert rig.broker.open_orders() == [] and rig.broker.position(SYMBOL) is None


def test_the_kill_switch_cancels_resting_orders_through_the_books_first(rig: Rig) -> None:
    from botlib.ops.control import flatten_all

    rig.script = lambda ctx: buy(ctx, stop_loss=ctx.price * 0.9, take_profit=ctx.price * 2)
    rig.cycle(T0)
    stop = rig.broker.open_orders(SYMBOL)[0]
    notes = flatten_all(rig.engine)
    assert notes[0] == f"{SYMBOL}: cancelled resting order {stop.client_order_id}"
    assert rig.store.intent(stop.client_order_id)["status"] == "canceled"  # type: ignore[index]
    assert [s["status"] for s in rig.sells()] == ["canceled", "filled"]
    assert rig.broker.open_orders() == [] and rig.broker.position(SYMBOL) is None
    assert rig.store.resting_intents(None, None) == []
