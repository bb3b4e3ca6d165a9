"""Operator actions and reconciliation in the simulator: close, flatten, adopt, clear, stale."""

from datetime import timedelta

import pandas as pd

from botlib.clock import ManualClock
from botlib.control import close_position, flatten_all
from botlib.engine import Engine
from botlib.models import OrderRequest
from botlib.sim import SimMarket
from botlib.store import Store
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
