"""Reflections on closed trades: written once per closing trade, by the rules or the LLM."""

import doctest
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

import botlib.core.reflection
from botlib.analysts.prompt import REFLECTION_PROMPT
from botlib.analysts.rules import RulesAnalyst
from botlib.app.wiring import build_analyst
from botlib.clock import ManualClock, iso
from botlib.core.engine import Engine
from botlib.core.reflection import generate_reflection, pending_trades, price_text, trade_review
from botlib.storage.store import Store
from tests.conftest import CANARY_KEY, T0, openai_engine, openai_settings
from tests.fakes.openai_server import FakeOpenAI, completion, decision, error
from tests.test_engine import buy as scripted_buy
from tests.test_openai_analyst import buy
from tests.test_protection import SYMBOL, Rig, hold

REVIEW = {
    "summary": "Bought the discount FVG, sold on a bearish CHoCH.",
    "what_worked": "Entry from the FVG after a sell-side sweep.",
    "what_failed": "Held through premium; fees ate the gain.",
    "suggestions": ["take profit at the buy-side liquidity", "skip Asia-session entries"],
}


def round_trip(engine: Engine, clock: ManualClock) -> None:
    engine.run_cycle("BTC/USD", force=True)
    clock.advance(timedelta(hours=1))
    engine.run_cycle("BTC/USD", force=True)


def test_the_llm_reviews_a_closed_trade_priced_like_a_decision(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(buy(), decision(action="SELL"), completion(json.dumps(REVIEW)))
    round_trip(openai_engine(fake_openai, store, clock), clock)
    trades = store.rows("SELECT * FROM trades ORDER BY id")
    assert [t["side"] for t in trades] == ["buy", "sell"]
    rows = store.rows("SELECT * FROM ai_reflections")
    assert len(rows) == 1
    row = rows[0]
    assert row["trade_id"] == trades[1]["id"] and row["analyst"] == "openai"
    assert row["what_worked"] == REVIEW["what_worked"]
    assert json.loads(row["suggestions"]) == REVIEW["suggestions"]
    assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0 and row["error"] is None
    assert row["content"].startswith(REVIEW["summary"]) and "Next: take profit" in row["content"]
    facts = json.loads(fake_openai.requests[2]["messages"][1]["content"])
    assert facts["entry"]["action"] == "BUY" and facts["exit"]["action"] == "SELL"
    assert facts["exit_reason"] == "signal"
    assert f"sold on the analyst's SELL at {price_text(trades[1]['price'])};" in facts["trade"]
    assert fake_openai.requests[2]["response_format"]["json_schema"]["name"] == "trade_reflection"


def test_a_failed_reflection_is_stored_with_its_error_and_not_retried(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(buy(), decision(action="SELL"), error(500, f"down {CANARY_KEY}"))
    engine = openai_engine(fake_openai, store, clock)
    round_trip(engine, clock)
    row = store.rows("SELECT * FROM ai_reflections")[0]
    assert row["error"].startswith("InternalServerError") and CANARY_KEY not in row["error"]
    assert row["content"].startswith("Closed ") and "(reflection error:" in row["content"]
    calls = len(fake_openai.requests)
    clock.advance(timedelta(hours=1))
    engine.run_cycle("BTC/USD", force=True)
    assert len(fake_openai.requests) == calls + 1  # the decision only, no second reflection
    assert store.db["ai_reflections"].count == 1


def test_rules_reflections_are_deterministic_and_recovered_after_a_crash(
    engine: Engine, store: Store, clock: ManualClock
) -> None:
    for _ in range(48 * 4):  # two days of 15-minute cycles: the rules strategy opens and closes
        engine.run_cycle("BTC/USD", force=True)
        clock.advance(timedelta(minutes=15))
        if store.rows("SELECT count(*) AS n FROM ai_reflections")[0]["n"] >= 1:
            break
    row = store.rows("SELECT * FROM ai_reflections")[0]
    review = trade_review(store, row["trade_id"])
    assert row["analyst"] == "rules" and row["content"].startswith(review.describe())
    assert row["cost_usd"] is None and row["output_mode"] == "rules"
    trade = store.rows("SELECT * FROM trades WHERE id = ?", [row["trade_id"]])[0]
    assert review.exit_price == trade["price"] and review.qty == trade["qty"]
    # a process killed between the close and its reflection: the next cycle writes it
    store.db.execute("DELETE FROM ai_reflections")
    assert pending_trades(store, "BTC/USD") == [row["trade_id"]]
    engine.run_cycle("BTC/USD", force=True)
    again = store.rows("SELECT * FROM ai_reflections")
    assert len(again) == 1 and again[0]["content"] == row["content"]
    assert pending_trades(store, "BTC/USD") == []


# how a trade ended, in words ------------------------------------------------------------------


def book_round_trip(
    store: Store, reason: str, exit_price: float, stop: tuple[float, float] | None = None,
    opened: datetime = T0,
) -> int:  # fmt: skip
    """Book a 0.1 BTC buy at 60,000, its protective stop (`stop`: stop, limit), and a sell.

    A `venue_stop` sell is the stop's own fill; any other sell is a market order of its own.
    """
    closed = opened + timedelta(hours=5)
    store.record_trade(_trade(f"{reason}-buy", "buy", "signal", 60_000.0, opened, None))
    if stop is not None:
        store.add_intent(_stop_intent(f"{reason}-buy-p1", stop, opened))
    cid = f"{reason}-buy-p1" if reason == "venue_stop" else f"{reason}-sell"
    if reason != "venue_stop":
        store.add_intent(
            {"client_order_id": cid, "symbol": SYMBOL, "side": "sell", "qty": 0.1,
             "reason": reason, "order_type": "market", "created_at": iso(closed)}
        )  # fmt: skip
    pnl = (exit_price - 60_000.0) * 0.1
    return store.record_trade(_trade(cid, "sell", reason, exit_price, closed, pnl))


def _trade(
    cid: str, side: str, reason: str, price: float, when: datetime, pnl: float | None
) -> dict[str, Any]:
    return {
        "symbol": SYMBOL, "side": side, "reason": reason, "client_order_id": cid,
        "status": "filled", "qty": 0.1, "notional": 0.1 * price, "price": price, "fee": 0.0,
        "realized_pnl": pnl, "created_at": iso(when), "filled_at": iso(when),
    }  # fmt: skip


def _stop_intent(cid: str, stop: tuple[float, float], when: datetime) -> dict[str, Any]:
    return {
        "client_order_id": cid, "symbol": SYMBOL, "side": "sell", "qty": 0.1,
        "reason": "venue_stop", "order_type": "stop_limit", "stop_price": stop[0],
        "limit_price": stop[1], "created_at": iso(when), "revision": 1,
    }  # fmt: skip


def test_a_venue_stop_fill_names_the_resting_stop_and_its_fill_price(store: Store) -> None:
    trade_id = book_round_trip(store, "venue_stop", 59_000.0, stop=(59_100.0, 58_805.0))
    review = trade_review(store, trade_id)
    note = "stopped out at the venue at 59,000 (resting stop_limit, stop 59,100, limit 58,805)"
    assert review.exit_note == note
    assert review.describe().startswith(f"Closed 0.1 BTC/USD: {note}; -1.67% from entry")
    result = RulesAnalyst().reflect(review)
    assert note in result.summary and result.what_failed == "venue_stop at a loss"
    assert result.suggestions[0].startswith("wait for a stronger setup")


def test_a_take_profit_and_a_gap_exit_are_said_in_their_own_words(store: Store) -> None:
    take = trade_review(store, book_round_trip(store, "take_profit", 62_400.0))
    assert take.exit_note == "take-profit at 62,400"
    assert "Closed 0.1 BTC/USD: take-profit at 62,400; +4.00% from entry" in take.describe()
    # the gap exit: its stop (placed with the entry) was cancelled, the bot sold at market
    later = T0 + timedelta(days=1)
    gap_id = book_round_trip(store, "gap_exit", 57_900.5, (59_100.0, 58_805.0), later)
    gap = trade_review(store, gap_id)
    assert gap.exit_note == (
        "gap exit at market at 57,900.5: the price fell through the resting stop's limit"
        " 58,805 (stop 59,100)"
    )
    result = RulesAnalyst().reflect(gap)
    assert gap.exit_note in result.summary and "gapped through" in result.suggestions[-1]


def test_a_gap_exit_names_the_stop_that_rested_not_a_later_or_a_refused_one(store: Store) -> None:
    trade_id = book_round_trip(store, "gap_exit", 57_900.0, (59_100.0, 58_805.0))
    late = T0 + timedelta(hours=9)  # the next position's stop: placed after the exit
    store.add_intent(_stop_intent("next-buy-p1", (70_000.0, 69_650.0), late))
    refused = _stop_intent("gap_exit-buy-p2", (59_500.0, 59_202.5), T0 + timedelta(hours=1))
    store.add_intent(refused)
    store.resolve_intent("gap_exit-buy-p2", "rejected", T0 + timedelta(hours=1), "no qty")
    assert trade_review(store, trade_id).exit_note.endswith("limit 58,805 (stop 59,100)")


def test_a_gap_exit_without_a_recorded_stop_still_says_it_gapped(store: Store) -> None:
    review = trade_review(store, book_round_trip(store, "gap_exit", 57_900.0))
    assert review.exit_note == (
        "gap exit at market at 57,900: the price fell through the resting stop's limit"
    )


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("signal", "sold on the analyst's SELL at 61,000"),
        ("manual", "closed by the operator at 61,000"),
        ("stop_loss", "stopped out by the bot's own stop-loss at market at 61,000"),
        ("guard_exit", "stopped out by the guard's stop-loss at market at 61,000 between cycles"),
        ("rebalance", "closed by rebalance at 61,000"),
    ],
)
def test_every_other_exit_says_who_sold(store: Store, reason: str, words: str) -> None:
    assert trade_review(store, book_round_trip(store, reason, 61_000.0)).exit_note.startswith(words)


def test_price_text_examples() -> None:
    assert doctest.testmod(botlib.core.reflection).failed == 0


# the same, on the simulator: the venue's stop fills between cycles ------------------------------


def venue_stop_exit(rig: Rig) -> dict[str, Any]:
    """Buy with a stop just above the next six hours' low; the guard books its venue fill."""
    later = T0 + timedelta(hours=6)
    level = float(rig.minutes(T0, later)["low"].min()) * 1.0005
    rig.script = lambda ctx: scripted_buy(ctx, stop_loss=level, take_profit=ctx.price * 1.5)
    rig.cycle(T0)
    rig.watch(later)
    [trade] = rig.store.rows("SELECT * FROM trades WHERE side = 'sell'")
    assert trade["reason"] == "venue_stop"
    return trade


def stopped_out_words(store: Store, trade: dict[str, Any]) -> str:
    stop = store.intent(trade["client_order_id"])
    assert stop is not None and stop["order_type"] == "stop_limit"
    assert stop["limit_price"] <= trade["price"] <= stop["stop_price"]  # the venue's own fill
    levels = f"stop {price_text(stop['stop_price'])}, limit {price_text(stop['limit_price'])}"
    return (
        f"stopped out at the venue at {price_text(trade['price'])} (resting stop_limit, {levels})"
    )


def test_the_rules_reflection_on_a_simulated_venue_stop_says_it_stopped_out(
    store: Store, clock: ManualClock
) -> None:
    rig = Rig(store, clock)
    trade = venue_stop_exit(rig)
    rig.script = hold
    rig.cycle(T0 + timedelta(hours=6, minutes=1))  # the next cycle reflects on the closed trade
    [row] = store.rows("SELECT * FROM ai_reflections")
    assert row["trade_id"] == trade["id"] and row["analyst"] == "rules"
    assert stopped_out_words(store, trade) in row["content"]
    assert "by venue_stop" not in row["content"]


def test_the_llm_reflection_on_a_simulated_venue_stop_is_told_it_stopped_out(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    trade = venue_stop_exit(Rig(store, clock))
    analyst = build_analyst(openai_settings(fake_openai), store, clock)
    fake_openai.push(completion(json.dumps(REVIEW)))
    calls = len(fake_openai.requests)
    generate_reflection(store, analyst, trade["id"], clock.now())
    assert len(fake_openai.requests) == calls + 1
    system, user = fake_openai.requests[-1]["messages"]
    assert (
        system["content"] == REFLECTION_PROMPT and "venue_stop = the resting" in REFLECTION_PROMPT
    )
    facts = json.loads(user["content"])
    assert facts["exit_reason"] == "venue_stop" and facts["exit"] is None
    assert stopped_out_words(store, trade) in facts["trade"]
    [row] = store.rows("SELECT * FROM ai_reflections")
    assert row["analyst"] == "openai" and row["what_worked"] == REVIEW["what_worked"]


def test_a_simulated_gap_exit_names_the_stop_the_price_fell_through(
    store: Store, clock: ManualClock
) -> None:
    rig = Rig(store, clock)
    rig.script = lambda ctx: scripted_buy(
        ctx, stop_loss=ctx.price * 0.999, take_profit=ctx.price * 2
    )
    rig.cycle(T0)
    stop = rig.broker.open_orders(SYMBOL)[0]
    with store.transaction():  # the gap: a limit above every price to come (as in test_protection)
        store.update_sim_order(stop.id, {"limit_price": 10_000_000.0})
        store.db.execute(
            "UPDATE order_intents SET limit_price = 1e7 WHERE client_order_id = ?",
            [stop.client_order_id],
        )
    level = float(store.get_position(SYMBOL)["stop_loss"])  # type: ignore[index]
    closes = rig.minutes(T0, T0 + timedelta(days=3))["close"]
    when = next(t.to_pydatetime() + timedelta(minutes=1) for t, c in closes.items() if c < level)
    [result] = rig.watch(when)
    assert result.action == "gap_exit"
    [trade] = store.rows("SELECT * FROM trades WHERE side = 'sell'")
    note = trade_review(store, trade["id"]).exit_note
    assert note == (
        f"gap exit at market at {price_text(trade['price'])}: the price fell through the resting"
        f" stop's limit 10,000,000 (stop {price_text(level)})"
    )
