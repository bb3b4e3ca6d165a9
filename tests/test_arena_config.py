"""The arena file: the example loads, every mistake is named, and a key never shows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from botlib.analysts.pricing import DEFAULT_PRICES, Price, PriceTable
from botlib.arena.config import (
    KINDS,
    ArenaConfig,
    BuyAndHoldSpec,
    FlatSpec,
    LlmSpec,
    RulesSpec,
    SmaCrossSpec,
    default_arena,
    load_arena,
)
from botlib.errors import ConfigError

ROOT = Path(__file__).parent.parent
FAKE_KEY = "sk-test-not-a-real-key-123"
GPT = """
[analysts.gpt4o]
kind = "llm"
model = "gpt-4o"
base_url = "https://api.openai.com/v1"
key_env = "OPENAI_API_KEY"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arena.toml"
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_arena(write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'arena.toml'}: "), message
    return message


def llm(**fields: object) -> LlmSpec:
    return LlmSpec.model_validate({"model": "gpt-4o", "key_env": "OPENAI_API_KEY", **fields})


def test_the_example_file_loads_with_every_kind() -> None:
    arena = load_arena(ROOT / "arena.example.toml")
    assert {spec.kind for spec in arena.analysts.values()} == set(KINDS)
    gpt = arena.analysts["gpt4o"]
    assert isinstance(gpt, LlmSpec)
    assert (gpt.temperature, gpt.training_cutoff) == (0.2, date(2023, 10, 1))
    assert gpt.describe() == "llm gpt-4o at https://api.openai.com/v1 (key from OPENAI_API_KEY)"
    assert arena.analysts["sma"] == SmaCrossSpec(fast=10, slow=30)


def test_the_analysts_keep_the_order_of_the_file(tmp_path: Path) -> None:
    text = '[analysts.zeta]\nkind = "flat"\n[analysts.alpha]\nkind = "rules"\n'
    assert list(load_arena(write(tmp_path, text)).analysts) == ["zeta", "alpha"]


def test_a_missing_field_names_the_file_the_analyst_and_the_field(tmp_path: Path) -> None:
    message = refusal(tmp_path, GPT.replace('model = "gpt-4o"\n', ""))
    assert message == f"{tmp_path / 'arena.toml'}: analyst 'gpt4o': model: field required"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere.toml: no such arena file"):
        load_arena(tmp_path / "nowhere.toml")


def test_invalid_toml_says_which_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[analysts.flat]\nkind = "flat"\nfast = \n')
    assert "invalid TOML" in message and "line 3" in message


def test_an_unknown_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[analysts.mine]\nkind = "oracle"\n')
    assert "analyst 'mine': kind: unknown kind 'oracle'" in message
    assert "rules, buy_and_hold, flat, sma_cross, llm" in message


def test_a_missing_kind_is_named(tmp_path: Path) -> None:
    assert "analyst 'mine': kind: field required" in refusal(
        tmp_path, "[analysts.mine]\nfast = 3\n"
    )


def test_a_misspelt_field_is_an_error_naming_it(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[analysts.sma]\nkind = "sma_cross"\nfsat = 5\n')
    assert "analyst 'sma': fsat: extra inputs are not permitted" in message


def test_a_key_env_that_is_no_variable_name_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, GPT.replace('"OPENAI_API_KEY"', '"OPENAI API KEY"'))
    assert "analyst 'gpt4o': key_env: not an environment variable name" in message
    assert "OPENAI API KEY" not in message


def test_a_key_pasted_as_key_env_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = refusal(tmp_path, GPT.replace('"OPENAI_API_KEY"', f'"{FAKE_KEY}"'))
    assert "analyst 'gpt4o': key_env: this looks like an API key" in message
    assert "environment" in message
    assert FAKE_KEY not in message and "not-a-real" not in message


def test_a_long_mixed_case_token_as_key_env_is_taken_for_a_key(tmp_path: Path) -> None:
    token = "AbCdEf0123456789GhIjKlMn"  # a valid variable name by syntax, a key by its looks
    message = refusal(tmp_path, GPT.replace('"OPENAI_API_KEY"', f'"{token}"'))
    assert "looks like an API key" in message and token not in message


def test_a_key_pasted_in_an_api_key_field_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = refusal(tmp_path, GPT + f'api_key = "{FAKE_KEY}"\n')
    assert "analyst 'gpt4o': api_key: extra inputs are not permitted" in message
    assert "key_env" in message and FAKE_KEY not in message


def test_a_negative_price_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, GPT + "price = { input_per_1m = -1, output_per_1m = 10 }\n")
    assert "analyst 'gpt4o': price.input_per_1m: input should be greater than or equal to 0" in (
        message
    )


@pytest.mark.parametrize("temperature", ["-0.1", "2.5", "nan"])
def test_a_temperature_outside_zero_to_two_is_refused(tmp_path: Path, temperature: str) -> None:
    message = refusal(tmp_path, GPT + f"temperature = {temperature}\n")
    assert "analyst 'gpt4o': temperature: " in message


def test_sma_fast_must_be_below_slow(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[analysts.sma]\nkind = "sma_cross"\nfast = 30\nslow = 30\n')
    assert "analyst 'sma': fast (30) must be below slow (30)" in message


def test_credentials_in_the_base_url_are_refused(tmp_path: Path) -> None:
    text = GPT.replace("https://api.", f"https://user:{FAKE_KEY}@api.")
    message = refusal(tmp_path, text)
    assert "analyst 'gpt4o': base_url: no credentials in the URL" in message
    assert FAKE_KEY not in message


@pytest.mark.parametrize("name", ["GPT", "has space", "a" * 41, "dot.ted"])
def test_an_analyst_name_outside_the_alphabet_is_refused(tmp_path: Path, name: str) -> None:
    message = refusal(tmp_path, f'[analysts."{name}"]\nkind = "flat"\n')
    assert f"analyst name {name!r}: use 1-40 lowercase letters, digits, _ or -" in message


def test_a_file_without_analysts_is_refused(tmp_path: Path) -> None:
    assert "no analysts" in refusal(tmp_path, "# nothing yet\n")
    assert "at least one analyst" in refusal(tmp_path, "analysts = {}\n")


def test_the_key_is_read_from_the_named_variable_and_stays_secret() -> None:
    spec = llm(base_url="https://gateway.example/v1")
    config = spec.llm_config({"OPENAI_API_KEY": FAKE_KEY}, cache="record", budget_usd=2.0)
    assert config.api_key is not None and config.api_key.get_secret_value() == FAKE_KEY
    assert (config.model, config.base_url, config.cache, config.budget_usd) == (
        "gpt-4o",
        "https://gateway.example/v1",
        "record",
        2.0,
    )
    assert config.prices is None
    assert FAKE_KEY not in repr(config)
    for shown in (spec.describe(), repr(spec), str(spec.model_dump())):
        assert FAKE_KEY not in shown


def test_a_missing_key_names_the_variable_outside_replay_mode() -> None:
    spec = llm(key_env="MY_GATEWAY_KEY")
    with pytest.raises(ConfigError, match="MY_GATEWAY_KEY is not set") as caught:
        spec.llm_config({"OTHER": FAKE_KEY}, cache="off", budget_usd=5.0)
    assert FAKE_KEY not in str(caught.value)


def test_replay_mode_needs_no_key() -> None:
    config = llm().llm_config({}, cache="replay", budget_usd=1.0)
    assert (config.api_key, config.cache) == (None, "replay")


def test_a_loopback_endpoint_needs_no_key() -> None:
    spec = llm(model="llama3.1:8b", base_url="http://127.0.0.1:11434/v1", key_env="OLLAMA_API_KEY")
    config = spec.llm_config({}, cache="off", budget_usd=1.0)
    assert config.api_key is not None and config.api_key.get_secret_value() == "unused-local"
    remote = llm(base_url="http://127.0.0.1.example.com/v1", key_env="OLLAMA_API_KEY")
    with pytest.raises(ConfigError, match="OLLAMA_API_KEY"):
        remote.llm_config({}, cache="off", budget_usd=1.0)


def test_an_unknown_cache_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="off, record, replay"):
        llm().llm_config({"OPENAI_API_KEY": FAKE_KEY}, cache="rerun", budget_usd=1.0)


def test_the_spec_price_replaces_the_built_in_one_for_its_model_only() -> None:
    spec = llm(model="gpt-4o", price={"input_per_1m": 1.0, "output_per_1m": 4.0})
    table = spec.price_table()
    assert table.lookup("gpt-4o") == Price(1.0, 1.0, 4.0, "arena file")
    assert table.lookup("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    assert DEFAULT_PRICES["gpt-4o"].input == 2.50  # the defaults themselves are untouched


def test_the_spec_price_merges_over_a_given_table() -> None:
    base = PriceTable({"house-model": Price(9, 9, 9, "user")})
    table = llm(model="local", price={"input_per_1m": 0, "output_per_1m": 0}).price_table(base)
    assert set(table.prices) == {"house-model", "local"}
    assert table.cost("local", 1000, 1000) == 0.0


def test_without_a_spec_price_the_built_in_table_is_used() -> None:
    assert (
        llm(model="gpt-4o-mini").price_table().lookup("gpt-4o-mini")
        == (DEFAULT_PRICES["gpt-4o-mini"])
    )


def test_select_keeps_the_given_order() -> None:
    arena = load_arena(ROOT / "arena.example.toml")
    chosen = arena.select(["sma", "flat", "gpt4o"])
    assert list(chosen) == ["sma", "flat", "gpt4o"]
    assert chosen["flat"] == FlatSpec()


def test_select_rejects_an_unknown_name_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        default_arena().select(["rules", "gpt5"])
    assert str(caught.value) == "unknown analyst 'gpt5'; known: rules, buy_and_hold, flat"


def test_select_rejects_a_name_given_twice() -> None:
    with pytest.raises(ConfigError, match="'flat' selected twice"):
        default_arena().select(["flat", "flat"])


def test_the_default_arena_is_the_rules_analyst_beside_two_baselines() -> None:
    arena = default_arena()
    assert arena == ArenaConfig(
        analysts={"rules": RulesSpec(), "buy_and_hold": BuyAndHoldSpec(), "flat": FlatSpec()}
    )
    assert list(arena.analysts) == ["rules", "buy_and_hold", "flat"]


def test_every_spec_describes_itself_in_one_line() -> None:
    arena = load_arena(ROOT / "arena.example.toml")
    lines = [spec.describe() for spec in arena.analysts.values()]
    assert all(line and "\n" not in line for line in lines)
    assert "SMA(10) crossing SMA(30)" in lines[list(arena.analysts).index("sma")]


def test_specs_are_frozen() -> None:
    spec = SmaCrossSpec()
    with pytest.raises(ValueError, match="frozen"):
        spec.fast = 3  # type: ignore[misc]
