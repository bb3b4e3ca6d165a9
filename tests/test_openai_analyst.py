"""The OpenAI analyst end to end: real wiring, real SDK, a loopback fake OpenAI.

Each case runs a full engine cycle and asserts the stored `ai_decision_logs` row and whether
an order reached the simulated venue.
"""

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from botlib.analysts.pricing import DEFAULT_PRICES
from botlib.clock import ManualClock
from botlib.storage.store import Store
from tests.conftest import CANARY_KEY, openai_engine
from tests.fakes.openai_server import (
    FakeOpenAI,
    buy,
    chat_tokens,
    completion,
    error,
    html_page,
    prompt_price,
    refusal,
    rejects_json_schema,
    slow,
)


def last_log(store: Store) -> dict[str, Any]:
    return store.rows("SELECT * FROM ai_decision_logs ORDER BY id DESC LIMIT 1")[0]


def orders(store: Store) -> int:
    """Entries sent (a filled entry's protective stop at the venue is not counted)."""
    return len(store.rows("SELECT id FROM sim_orders WHERE side = 'buy'"))


def test_a_valid_buy_is_logged_priced_and_linked_to_its_order(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(buy())
    report = openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    assert report.action == "BUY" and len(report.orders) == 1 and orders(store) == 1
    row = last_log(store)
    request = fake_openai.requests[0]
    assert (row["analyst"], row["model"], row["action"]) == ("openai", "gpt-4o", "BUY")
    assert row["error"] is None and row["output_mode"] == "json_schema" and row["cache"] == "off"
    assert row["prompt_tokens"] == chat_tokens(request["messages"]) > 0
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert row["cost_usd"] == pytest.approx(
        DEFAULT_PRICES["gpt-4o"].cost(row["prompt_tokens"], row["completion_tokens"])
    )
    assert json.loads(row["raw_response"])["model"] == "gpt-4o-2024-08-06"
    assert json.loads(row["prompt"]) == request["messages"]
    assert json.loads(row["response"])["smc"]["killzone"] == "london"
    assert json.loads(row["request"])["symbol"] == "BTC/USD"
    # point in time: the prompt's last bar closed before the decision was made
    assert row["last_bar_time"] < row["created_at"] and row["called_at"]
    trade = store.rows("SELECT * FROM trades")[0]
    assert trade["decision_id"] == row["id"]
    # what the SDK sent: strict schema output, our model and output cap, our key
    assert request["model"] == "gpt-4o" and request["max_completion_tokens"] == 700
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    assert fake_openai.headers[0]["authorization"] == f"Bearer {CANARY_KEY}"


BAD_ANSWERS = [
    (completion('{"action": "BUY",}'), "LlmOutputError: malformed JSON"),
    (completion("I think you should buy."), "LlmOutputError: no JSON object in the answer"),
    (refusal("I can't give trading advice."), "LlmOutputError: refusal: I can't give"),
    (completion('{"symbol": "BTC/USD", "act', finish_reason="length"),
     "LlmOutputError: truncated: finish_reason=length"),
    (buy(confidence=1.7), "InvalidDecision: confidence: Input should be less than or equal to 1"),
    (buy(action="SHORT"), "InvalidDecision: action: Input should be 'BUY', 'SELL' or 'HOLD'"),
    (buy(symbol="ETH/USD"), "InvalidDecision: decision for 'ETH/USD', expected 'BTC/USD'"),
    (buy(stop_loss=lambda r: prompt_price(r) * 1.01), "InvalidDecision: stop_loss"),
    (buy(take_profit=lambda r: prompt_price(r) * 0.99), "InvalidDecision: take_profit"),
    (buy(position_size_pct=0.0), "InvalidDecision: BUY with position_size_pct 0"),
    (error(401, f"Incorrect API key provided: {CANARY_KEY}", code="invalid_api_key"),
     "AuthenticationError: Error code: 401"),
    (error(429, "Rate limit reached for gpt-4o", code="rate_limit_exceeded"),
     "RateLimitError: Error code: 429"),
    (error(500, "The server had an error while processing your request."),
     "InternalServerError: Error code: 500"),
    (html_page(200), "AnalystError: malformed chat completion (JSONDecodeError)"),
    (html_page(502), "InternalServerError: Error code: 502"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("responder", "expected"), BAD_ANSWERS, ids=[e.split(": ", 1)[-1][:32] for _, e in BAD_ANSWERS]
)
def test_unusable_answers_hold_with_the_reason_and_place_no_order(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock, responder: Any, expected: str
) -> None:
    fake_openai.push(responder)
    report = openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    assert report.status.value == "ok" and report.action == "HOLD" and orders(store) == 0
    row = last_log(store)
    assert row["action"] == "HOLD" and row["error"].startswith(expected), row["error"]
    assert row["reasoning"].startswith(("no trade: ", "rejected: "))
    assert CANARY_KEY not in row["error"] and "sk-test" not in row["error"]
    cycle = store.rows("SELECT * FROM cycles")[0]
    assert cycle["status"] == "ok" and cycle["decision_id"] == row["id"]


def test_a_rejected_answer_still_records_its_tokens_and_cost(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(completion('{"symbol": "BTC/USD", "act', finish_reason="length"))
    openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    row = last_log(store)
    assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0 and row["raw_response"]


def test_rate_limit_is_retried_after_retry_after_then_succeeds(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(error(429, "slow down", headers={"retry-after": "0.2"}), buy())
    engine = openai_engine(fake_openai, store, clock, openai_max_retries=1)
    started = time.perf_counter()
    report = engine.run_cycle("BTC/USD")
    assert time.perf_counter() - started >= 0.2  # the SDK honoured retry-after
    assert len(fake_openai.requests) == 2 and report.action == "BUY" and orders(store) == 1
    assert last_log(store)["error"] is None


def test_a_slow_endpoint_times_out_into_a_hold(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(slow(10.0, buy()))
    engine = openai_engine(fake_openai, store, clock, openai_timeout_s=0.5)
    started = time.perf_counter()
    report = engine.run_cycle("BTC/USD")
    assert time.perf_counter() - started < 5  # bounded by our timeout, not the SDK's 600 s
    row = last_log(store)
    assert report.action == "HOLD" and orders(store) == 0
    assert row["error"].startswith("APITimeoutError") and row["latency_ms"] >= 500
    assert row["prompt_tokens"] is None and row["cost_usd"] is None


def test_json_mode_fallback_when_the_endpoint_rejects_json_schema(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.default = rejects_json_schema(
        lambda r: completion("```json\n" + json.dumps(_buy_answer(r)) + "\n```")(r)
    )
    engine = openai_engine(fake_openai, store, clock, openai_model="llama3.1:8b")
    with caplog.at_level(logging.WARNING, logger="botlib"):
        first = engine.run_cycle("BTC/USD")
        engine.run_cycle("SOL/USD")
    kinds = [r["response_format"]["type"] for r in fake_openai.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]  # asked once, then remembered
    row = store.rows("SELECT * FROM ai_decision_logs ORDER BY id")[0]
    assert row["output_mode"] == "json_object" and row["error"] is None
    assert first.action == "BUY" and orders(store) >= 1
    assert "rejected json_schema" in caplog.text
    assert "no price for model 'llama3.1:8b'" in caplog.text and row["cost_usd"] is None


def _buy_answer(request: dict[str, Any]) -> dict[str, Any]:
    reply = buy()(request)
    return json.loads(reply.body["choices"][0]["message"]["content"])


def test_the_budget_guard_stops_calling_the_model(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    engine = openai_engine(fake_openai, store, clock, max_llm_usd_per_day=0.004)
    engine.run_cycle("BTC/USD")  # one call: ~1,300 prompt tokens of gpt-4o cost ~0.004-0.005 USD
    spent = store.rows("SELECT sum(cost_usd) AS usd FROM ai_decision_logs")[0]["usd"]
    assert spent >= 0.004
    report = engine.run_cycle("SOL/USD")
    assert len(fake_openai.requests) == 1  # the second cycle did not call the model
    row = last_log(store)
    assert report.action == "HOLD" and row["reasoning"] == "LLM budget reached"
    assert row["error"].startswith("LLM budget reached: ") and row["cost_usd"] is None


def test_record_then_replay_costs_nothing_and_needs_no_key(
    fake_openai: FakeOpenAI, tmp_path: Path, clock: ManualClock
) -> None:
    fake_openai.push(buy())
    with Store(tmp_path / "rec.db") as recorded:
        report = openai_engine(fake_openai, recorded, clock, llm_cache="record").run_cycle(
            "BTC/USD"
        )
        assert last_log(recorded)["cache"] == "recorded" and report.action == "BUY"
        cached = recorded.rows("SELECT key, response FROM llm_cache")
    with Store(tmp_path / "replay.db") as replay:
        replay.db["llm_cache"].insert_all(
            [{"key": c["key"], "model": "gpt-4o", "output_mode": "json_schema",
              "response": c["response"], "created_at": "x"} for c in cached]
        )  # fmt: skip
        engine = openai_engine(fake_openai, replay, clock, llm_cache="replay", openai_api_key=None)
        again = engine.run_cycle("BTC/USD")
        row = last_log(replay)
        assert again.action == "BUY" and row["cache"] == "hit" and row["cost_usd"] == 0.0
        assert row["prompt_tokens"] > 0  # the recorded usage is kept, the spend is not
        miss = engine.run_cycle("SOL/USD")
        assert miss.action == "HOLD"
        assert last_log(replay)["error"].startswith("CacheMissError: no cached response for hash ")
    assert len(fake_openai.requests) == 1  # replay never called the endpoint


def test_no_stored_field_contains_the_key(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(buy(reasoning=f"echo {CANARY_KEY}"), error(401, f"bad key {CANARY_KEY}"))
    engine = openai_engine(fake_openai, store, clock)
    engine.run_cycle("BTC/USD")
    engine.run_cycle("SOL/USD")
    dump = "\n".join(store.db.conn.iterdump())
    assert "BUY" in dump and "AuthenticationError" in dump
    assert CANARY_KEY not in dump and "sk-***" in dump


# limit entries at the zone ------------------------------------------------------------------


def prompt_zone(request: dict[str, Any], key: str = "fvg_below") -> dict[str, float]:
    """Read a zone from the prompt's `smc:` line, rounded as the model sees it."""
    lines = request["messages"][1]["content"].splitlines()
    smc = next(line for line in lines if line.startswith("smc: "))
    return json.loads(smc.removeprefix("smc: "))[key]


def zone_top(request: dict[str, Any]) -> float:
    return prompt_zone(request)["top"]


def test_a_limit_buy_at_the_fvg_top_rests_at_the_venue(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    under_zone = lambda r: round(prompt_zone(r)["bottom"] * 0.995, 2)  # noqa: E731
    fake_openai.push(buy(order_type="limit", limit_price=zone_top, stop_loss=under_zone))
    report = openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    row = last_log(store)
    assert report.action == "BUY" and row["error"] is None, row["error"]
    assert json.loads(row["response"])["order_type"] == "limit"
    top = zone_top(fake_openai.requests[0])
    assert top < prompt_price(fake_openai.requests[0])  # the zone is under the price
    [order] = store.rows("SELECT * FROM sim_orders WHERE side = 'buy'")
    assert (order["type"], order["limit_price"]) == ("limit", top)
    assert order["status"] == "new" and store.get_position("BTC/USD") is None  # it rests
    # the schema sent asks for the entry fields like every other (strict mode)
    schema = fake_openai.requests[0]["response_format"]["json_schema"]["schema"]
    assert {"order_type", "limit_price"} <= set(schema["required"])


def test_an_answer_without_the_entry_fields_buys_at_the_market(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock
) -> None:
    fake_openai.push(buy())  # the fake's answer predates order_type / limit_price
    report = openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    [order] = store.rows("SELECT * FROM sim_orders WHERE side = 'buy'")
    assert report.action == "BUY" and (order["type"], order["limit_price"]) == ("market", None)
    assert order["status"] == "filled" and store.get_position("BTC/USD") is not None


BAD_LIMITS = [
    (buy(order_type="limit", limit_price=lambda r: round(prompt_price(r) * 0.9, 2)),
     "is outside the bullish zones: use a price in bullish FVG "),
    (buy(order_type="limit", limit_price=lambda r: round(prompt_price(r) * 1.01, 2)),
     "a BUY limit must be at or below it"),
    (buy(order_type="limit", limit_price=zone_top, stop_loss=lambda r: zone_top(r) + 1),
     "InvalidDecision: stop_loss"),
    (buy(order_type="limit", limit_price=zone_top,
         take_profit=lambda r: prompt_zone(r)["bottom"]), "InvalidDecision: take_profit"),
    (buy(order_type="limit"), "order_type 'limit' needs a limit_price"),
    (buy(limit_price=zone_top), "a market order takes no limit_price"),
    (buy(action="SELL", position_size_pct=0, order_type="limit", limit_price=zone_top),
     "InvalidDecision: SELL with order_type limit: only a BUY may rest as a limit"),
    (buy(order_type="stop_limit", limit_price=zone_top), "Input should be 'market' or 'limit'"),
]  # fmt: skip


@pytest.mark.parametrize(("responder", "expected"), BAD_LIMITS, ids=[e[:40] for _, e in BAD_LIMITS])
def test_an_unusable_limit_entry_holds_saying_what_passes(
    fake_openai: FakeOpenAI, store: Store, clock: ManualClock, responder: Any, expected: str
) -> None:
    fake_openai.push(responder)
    report = openai_engine(fake_openai, store, clock).run_cycle("BTC/USD")
    row = last_log(store)
    assert report.action == "HOLD" and orders(store) == 0
    assert row["error"].startswith("InvalidDecision: ") and expected in row["error"], row["error"]
