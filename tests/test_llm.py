"""The LLM call layer: answers parsed at the border, prices, cache keys, strict schemas, prompt."""

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botlib.analysts.llm import LlmOutputError, cache_key, parse_json_object, parse_reply
from botlib.analysts.openai import DECISION_FORMAT, REFLECTION_FORMAT
from botlib.analysts.pricing import DEFAULT_PRICES, Price, PriceTable, load_prices
from botlib.analysts.prompt import PROMPT_BARS, build_messages
from botlib.analysts.schema import DecisionOutput, smc_reading
from botlib.errors import ConfigError
from botlib.features.indicators import add_indicators
from botlib.features.smc.summary import smc_features, summary
from botlib.models import Account, AssetSettings, Position
from botlib.ports import MarketContext
from botlib.storage.llm_cache import LlmCache
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket
from tests.conftest import T0
from tests.fakes.openai_server import chat_tokens, completion


def reply_for(content: str | None, **kw: Any) -> Any:
    body = completion(content, **kw)({"messages": [{"role": "user", "content": "hi"}]}).body
    return parse_reply(json.dumps(body), "gpt-4o", "json_schema", "off")


@pytest.mark.parametrize(
    "content",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Here is my answer: {"a": 1} -- good luck',
        '  {"a": 1}\n',
    ],
)
def test_the_json_object_is_found_in_fences_and_prose(content: str) -> None:
    assert parse_json_object(reply_for(content)) == {"a": 1}


@pytest.mark.parametrize(
    ("content", "kw", "message"),
    [
        ("[1, 2]", {}, "no JSON object"),
        ('{"a": }', {}, "malformed JSON"),
        (None, {}, "no JSON object"),
        ('{"a": 1}', {"finish_reason": "length"}, "truncated: finish_reason=length"),
        ('{"a": 1}', {"finish_reason": "content_filter"}, "blocked"),
        (None, {"refusal_text": "no"}, "refusal: no"),
    ],
)
def test_unusable_replies_say_why(content: str | None, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(LlmOutputError, match=message) as caught:
        parse_json_object(reply_for(content, **kw))
    assert caught.value.reply.prompt_tokens is not None  # the usage survives for the log row


def test_usage_is_read_including_cached_tokens() -> None:
    reply = reply_for('{"a": 1}', cached_tokens=1)
    assert reply.cached_tokens == 1 and reply.model == "gpt-4o-2024-08-06"
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens


def test_cost_arithmetic_with_cached_input() -> None:
    price = DEFAULT_PRICES["gpt-4o"]
    # 1,000 prompt tokens of which 400 cached, 200 completion tokens
    expected = (600 * 2.50 + 400 * 1.25 + 200 * 10.00) / 1_000_000
    assert price.cost(1000, 200, 400) == pytest.approx(expected)
    assert PriceTable().cost("gpt-4o-2024-08-06", 1000, 200, 400) == pytest.approx(expected)
    mini = PriceTable().cost("gpt-4o-mini", 1_000_000, 1_000_000)
    assert mini == pytest.approx(0.15 + 0.60)


def test_unknown_models_cost_null_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable()
    with caplog.at_level(logging.WARNING):
        assert table.cost("my-local-llama", 100, 10) is None
        assert table.cost("my-local-llama", 100, 10) is None
    assert caplog.text.count("no price for model 'my-local-llama'") == 1


def test_user_prices_add_and_replace_entries(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    entries = {"llama3.1:8b": {"input": 0, "output": 0}, "gpt-4o": {"input": 5, "output": 20}}
    path.write_text(json.dumps(entries))
    table = load_prices(path)
    assert table.cost("llama3.1:8b", 1000, 100) == 0.0
    assert table.lookup("gpt-4o") == Price(5.0, 5.0, 20.0, "user")
    assert table.lookup("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]


@pytest.mark.parametrize("text", ["not json", '{"m": {"input": -1, "output": 1}}', '{"m": 3}'])
def test_bad_price_files_are_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="BOTLIB_LLM_PRICES"):
        load_prices(path)


def test_cache_keys_depend_on_model_messages_and_schema_only() -> None:
    messages = [{"role": "user", "content": "x"}]
    key = cache_key("gpt-4o", messages, DECISION_FORMAT)
    assert key == cache_key(
        "gpt-4o", [dict(m) for m in messages], json.loads(json.dumps(DECISION_FORMAT))
    )
    assert key != cache_key("gpt-4o-mini", messages, DECISION_FORMAT)
    assert key != cache_key("gpt-4o", [{"role": "user", "content": "y"}], DECISION_FORMAT)
    assert key != cache_key("gpt-4o", messages, REFLECTION_FORMAT)


def test_cache_round_trip(store: Store) -> None:
    cache = LlmCache(store)
    assert cache.get("k") is None
    cache.put("k", "gpt-4o", '{"choices": []}', "json_schema")
    assert cache.get("k") == ('{"choices": []}', "json_schema")


def _strict_problems(node: Any, path: str = "$") -> list[str]:
    """Check OpenAI's strict structured-output rules on a JSON schema."""
    problems: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                problems.append(f"{path}: additionalProperties must be false")
            if set(node.get("required", [])) != set(node.get("properties", {})):
                problems.append(f"{path}: every property must be required")
        if "$ref" in node and len(node) > 1:
            problems.append(f"{path}: $ref with siblings")
        if "default" in node:
            problems.append(f"{path}: defaults are not allowed")
        for key, value in node.items():
            problems.extend(_strict_problems(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems.extend(_strict_problems(value, f"{path}[{i}]"))
    return problems


@pytest.mark.parametrize("fmt", [DECISION_FORMAT, REFLECTION_FORMAT])
def test_schemas_follow_the_strict_rules(fmt: dict[str, Any]) -> None:
    assert fmt["json_schema"]["strict"] is True
    assert _strict_problems(fmt["json_schema"]["schema"]) == []


def test_the_checker_catches_a_loose_schema() -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    assert len(_strict_problems(loose)) == 3


def test_decision_schema_carries_the_smc_reading() -> None:
    schema = DECISION_FORMAT["json_schema"]["schema"]
    smc = schema["$defs"]["SmcReading"]["properties"]
    assert set(smc) == {
        "market_structure",
        "liquidity",
        "zone_used",
        "premium_discount",
        "killzone",
    }
    props = list(schema["properties"])
    assert props.index("reasoning") < props.index("action")  # reason first, then act


def test_rules_reading_fits_the_same_schema() -> None:
    reading = smc_reading(
        {"trend": "bearish", "sweep": {"side": "buy-side", "level": 101.0},
         "killzone": "new_york", "premium_discount": {"zone": "premium"}}
    )  # fmt: skip
    assert reading.market_structure == "bearish" and reading.killzone == "new_york"
    answer = DecisionOutput(symbol="X", smc=reading, reasoning="r", action="HOLD", confidence=0,
                            position_size_pct=0, stop_loss=None, take_profit=None)  # fmt: skip
    assert answer.to_decision().signals["smc"]["liquidity"] == "buy-side sweep at 101.0"


# the prompt ---------------------------------------------------------------------------------


def context_at(bars: pd.DataFrame, position: Position | None = None) -> MarketContext:
    features = add_indicators(bars)
    price = float(bars["close"].iloc[-1])
    smc = summary(features, features=smc_features(features))
    account = Account(cash=50_000.0, equity=100_000.0, buying_power=50_000.0, mode="sim")
    asset = AssetSettings(symbol="BTC/USD", timeframe="15Min")
    return MarketContext("BTC/USD", T0, features, asset, account, position, price, smc)


@pytest.fixture(scope="module")
def btc_bars() -> pd.DataFrame:
    return SimMarket().bars("BTC/USD", "15Min", T0, 400)


@pytest.mark.parametrize("held", [None, Position("BTC/USD", 0.5, 90_000.0)])
def test_the_prompt_fits_1500_tokens_for_30_bars(btc_bars: pd.DataFrame, held: Any) -> None:
    messages, facts = build_messages(context_at(btc_bars.iloc[-250:], held))
    table = messages[1]["content"].split("bars (30):\n", 1)[1].splitlines()
    assert len(table) == PROMPT_BARS + 1 and facts["bars"] == PROMPT_BARS
    assert chat_tokens(messages) <= 1500, chat_tokens(messages)
    assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]


def test_the_static_part_comes_first_and_never_changes(btc_bars: pd.DataFrame) -> None:
    a, _ = build_messages(context_at(btc_bars.iloc[-250:]))
    b, _ = build_messages(context_at(btc_bars.iloc[-251:-1]))
    assert a[0] == b[0] and a[1] != b[1]


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(120, 399))
def test_the_prompt_at_bar_i_ignores_later_bars(btc_bars: pd.DataFrame, cut: int) -> None:
    """No look-ahead: bars after the cut change nothing in the messages for the cut."""
    window = btc_bars.iloc[cut - 119 : cut + 1]
    later = btc_bars.iloc[cut - 119 :]  # the same window followed by future bars
    full = add_indicators(later).iloc[:120]
    ctx = context_at(window)
    features = full
    smc = summary(features, features=smc_features(features))
    same = MarketContext(
        ctx.symbol, ctx.now, features, ctx.asset, ctx.account, None, ctx.price, smc
    )
    assert build_messages(same)[0] == build_messages(ctx)[0]
    last_time = f"{window.index[-1]:%Y-%m-%dT%H:%MZ}"
    assert last_time in build_messages(ctx)[0][1]["content"]
