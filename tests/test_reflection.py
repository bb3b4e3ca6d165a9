"""Reflections on closed trades: written once per closing trade, by the rules or the LLM."""

import json
from datetime import timedelta

from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.core.reflection import pending_trades, trade_review
from botlib.storage.store import Store
from tests.conftest import CANARY_KEY, openai_engine
from tests.fakes.openai_server import FakeOpenAI, completion, decision, error
from tests.test_openai_analyst import buy

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
    assert "Closed" in facts["trade"] and "by signal" in facts["trade"]
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
