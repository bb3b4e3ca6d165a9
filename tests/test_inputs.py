"""Out-of-range settings and control inputs are refused with a message naming the field and
what is allowed, and change nothing; unknown symbols are refused with the known ones (issue #8).

Table-driven over every entry point an operator or a deployment uses: the control functions
(what the control notebook calls), risk limits, the asset row itself (`store.update_asset`,
`ensure_assets`), environment settings, and an unknown symbol at the controls, the dashboard
query, the engine and the `botlib` command.
"""

from __future__ import annotations

import contextlib
import doctest
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import botlib.app.config
from botlib.analysts.rules import RulesAnalyst
from botlib.app.config import Settings, load_settings
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError, UnknownSymbolError
from botlib.ops.control import (
    KILL_PHRASE,
    ControlError,
    close_now,
    kill_switch,
    set_analyst,
    set_interval,
    set_limits,
    set_paused,
    set_position_size,
    set_stops,
)
from botlib.ops.limits import load_limits
from botlib.reporting.queries import dashboard_data
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import T0

KNOWN = "known: BTC/USD, SOL/USD"
NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with BTC/USD and SOL/USD, made once and copied per test (fast)."""
    path = tmp_path_factory.mktemp("inputs") / "template.db"
    with Store(path) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return path


@pytest.fixture
def assets(template: Path, tmp_path: Path) -> Any:
    shutil.copy(template, tmp_path / "bot.db")
    with Store(tmp_path / "bot.db") as store:
        yield store


def snapshot(store: Store) -> dict[str, Any]:
    """What a refused change must leave as it was: the asset rows and the risk limits."""
    return {
        "assets": store.rows("SELECT * FROM trading_assets ORDER BY symbol"),
        "limits": store.rows("SELECT * FROM bot_settings ORDER BY key"),
    }


# operator controls ----------------------------------------------------------------------------
INTERVAL = ["interval_minutes", "1, 5, 15, 30, 60"]
SIZE = ["position_size_pct", "> 0 and <= 100"]
STOP = ["stop_loss_pct", "> 0 and < 100"]
TAKE = ["take_profit_pct", "> 0 and <= 1000"]
ANALYST = ["analyst", "'rules'", "'openai'"]
PAUSED = ["paused", "True or False"]


def _control_cases() -> list[Any]:
    cases: list[Any] = []

    def add(name: str, call: Callable[[Store], str], words: list[str]) -> None:
        cases.append(pytest.param(call, words, id=name))

    for v in (0, -5, 7, 61, 10**9, 15.5, "15", True, NAN, INF, None):
        add(f"interval={v!r}", lambda s, v=v: set_interval(s, "BTC/USD", v), INTERVAL)
    for v in (0, -1, 100.0001, 1e308, NAN, INF, -INF, "5", True, None, Decimal("5"), [5]):
        add(f"size={v!r}", lambda s, v=v: set_position_size(s, "BTC/USD", v), SIZE)
    for v in (0, -1, 100, 1e9, NAN, INF, "2", True):
        add(f"stop={v!r}", lambda s, v=v: set_stops(s, "BTC/USD", stop_loss_pct=v), STOP)
    for v in (0, -1, 1000.1, NAN, INF, "4", False):
        add(f"take={v!r}", lambda s, v=v: set_stops(s, "BTC/USD", take_profit_pct=v), TAKE)
    add("stops=none", lambda s: set_stops(s, "BTC/USD"), ["stop_loss_pct", "take_profit_pct"])
    for v in ("gpt", "gpt-4o", "", "Rules", "openai ", 5):
        add(f"analyst={v!r}", lambda s, v=v: set_analyst(s, "BTC/USD", v), ANALYST)
    for v in ("yes", "False", 1, 0, None):
        add(f"paused={v!r}", lambda s, v=v: set_paused(s, "BTC/USD", v), PAUSED)
    return cases


@pytest.mark.parametrize(("call", "words"), _control_cases())
def test_an_out_of_range_control_is_refused_recorded_and_changes_nothing(
    assets: Store, call: Callable[[Store], str], words: list[str]
) -> None:
    before = snapshot(assets)
    with pytest.raises(ControlError) as refused:
        call(assets)
    message = str(refused.value)
    assert all(word in message for word in words), message
    assert snapshot(assets) == before
    [row] = assets.rows("SELECT * FROM operator_actions")
    assert (row["result"], row["message"]) == ("rejected", message)


def _limit_cases() -> list[Any]:
    ranges = {
        "max_position_pct": "> 0 and <= 100",
        "max_daily_loss_pct": "> 0 and <= 100",
        "max_drawdown_pct": "> 0 and <= 100",
        "llm_budget_usd": ">= 0 and <= 10000",
    }
    cases = []
    for name, allowed in ranges.items():
        for v in (-1, 101 if name != "llm_budget_usd" else 10_001, NAN, INF, "5", True, None):
            words = [name, allowed, f"(got {v!r})"]
            cases.append(pytest.param({name: v}, words, id=f"{name}={v!r}"))
    known = "known: max_position_pct, max_daily_loss_pct, max_drawdown_pct, llm_budget_usd"
    cases.append(pytest.param({"max_leverage": 2}, ["max_leverage", known], id="unknown"))
    cases.append(pytest.param({}, ["set_limits needs one of", "max_position_pct"], id="empty"))
    # zero: allowed for the LLM budget (no model calls), not for a percentage
    cases.append(pytest.param({"max_drawdown_pct": 0}, ["max_drawdown_pct", "> 0"], id="dd=0"))
    return cases


@pytest.mark.parametrize(("changes", "words"), _limit_cases())
def test_an_out_of_range_risk_limit_is_refused_and_the_limits_stay(
    assets: Store, settings: Settings, changes: dict[str, Any], words: list[str]
) -> None:
    set_limits(assets, settings.limits, max_daily_loss_pct=3, now=T0)  # an override to survive
    before, limits = snapshot(assets), load_limits(assets, settings.limits)
    with pytest.raises(ControlError) as refused:
        set_limits(assets, settings.limits, now=T0, **changes)
    message = str(refused.value)
    assert all(word in message for word in words), message
    assert snapshot(assets) == before and load_limits(assets, settings.limits) == limits
    last = assets.rows("SELECT * FROM operator_actions ORDER BY id DESC LIMIT 1")[0]
    assert (last["result"], last["message"]) == ("rejected", message)


def test_the_kill_switch_without_its_phrase_pauses_and_sells_nothing(assets: Store) -> None:
    engine = sim_engine(assets)
    before = snapshot(assets)
    for phrase in ("flatten all", "FLATTEN", "", None, 1):
        with pytest.raises(ControlError, match=f"type {KILL_PHRASE} exactly"):
            kill_switch(engine, phrase, now=T0)  # type: ignore[arg-type]
    assert snapshot(assets) == before and assets.db["sim_orders"].count == 0
    results = [r["result"] for r in assets.rows("SELECT result FROM operator_actions")]
    assert results == ["rejected"] * 5


# the asset row itself: the layer under the controls -------------------------------------------
@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"paused": "yes"}, "paused"),  # lax parsing took this as True (a silent pause)
        ({"paused": 1}, "paused"),
        ({"position_size_pct": "5"}, "position_size_pct"),
        ({"position_size_pct": 0}, "position_size_pct"),
        ({"stop_loss_pct": NAN}, "stop_loss_pct"),
        ({"take_profit_pct": INF}, "take_profit_pct"),
        ({"interval_minutes": 0}, "interval_minutes"),
        ({"interval_minutes": 61}, "interval_minutes"),
        ({"interval_minutes": "15"}, "interval_minutes"),
        ({"interval_minutes": 15.5}, "interval_minutes"),
        ({"timeframe": "1Day"}, "'1Day' unknown; use one of 1Min, 5Min, 15Min, 30Min, 1Hour"),
        ({"timeframe": "1hour"}, "timeframe '1hour' unknown; use one of"),
        ({"analyst": "GPT 4o"}, "analyst"),  # an arena name is lowercase, no spaces
        ({"leverage": 3}, "unknown asset setting(s): leverage"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_a_bad_asset_field_is_refused_by_the_store_and_the_row_stays(
    assets: Store, fields: dict[str, Any], word: str
) -> None:
    before = snapshot(assets)
    with pytest.raises(ValueError, match=re.escape(word)):
        assets.update_asset("BTC/USD", **fields)
    assert snapshot(assets) == before


def test_an_unknown_timeframe_creates_no_asset(assets: Store) -> None:
    with pytest.raises(ValueError, match="unknown; use one of"):
        ensure_assets(assets, ["ETH/USD"], timeframe="2Hour")
    assert [a.symbol for a in assets.list_assets()] == ["BTC/USD", "SOL/USD"]


# unknown symbols ------------------------------------------------------------------------------
def sim_engine(store: Store) -> Engine:
    clock = ManualClock(T0)
    market = SimMarket()
    return Engine(market, SimBroker(store, market, clock), RulesAnalyst(), store, clock=clock)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda e: set_paused(e.store, "NOPE/USD", True), id="set_paused"),
        pytest.param(lambda e: set_interval(e.store, "NOPE/USD", 15), id="set_interval"),
        pytest.param(lambda e: set_position_size(e.store, "NOPE/USD", 5), id="set_position_size"),
        pytest.param(lambda e: set_stops(e.store, "NOPE/USD", 3, 6), id="set_stops"),
        pytest.param(lambda e: set_analyst(e.store, "NOPE/USD", "rules"), id="set_analyst"),
        pytest.param(lambda e: close_now(e, "NOPE/USD"), id="close_now"),
        pytest.param(lambda e: set_paused(e.store, "btc/usd", True), id="lowercase"),
    ],
)
def test_an_unknown_symbol_is_refused_by_every_control_with_the_known_ones(
    assets: Store, call: Callable[[Engine], str]
) -> None:
    engine = sim_engine(assets)
    before = snapshot(assets)
    with pytest.raises(ControlError, match="unknown symbol") as refused:
        call(engine)
    assert KNOWN in str(refused.value), str(refused.value)
    assert snapshot(assets) == before and assets.db["sim_orders"].count == 0
    [row] = assets.rows("SELECT result FROM operator_actions")
    assert row["result"] == "rejected"


def test_an_unknown_symbol_is_refused_by_the_dashboard_and_the_engine(assets: Store) -> None:
    with pytest.raises(UnknownSymbolError, match=f"unknown symbol 'NOPE/USD'; {KNOWN}"):
        dashboard_data(assets, "NOPE/USD")
    with pytest.raises(UnknownSymbolError, match=f"unknown symbol 'NOPE/USD'; {KNOWN}"):
        sim_engine(assets).run_cycle("NOPE/USD", force=True)
    assert assets.db["cycles"].count == 0 and assets.db["sim_orders"].count == 0
    assert [a.symbol for a in assets.list_assets()] == ["BTC/USD", "SOL/USD"]


def botlib_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "botlib", *args],
        cwd=cwd,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "first_line"),
    [
        (
            ["cycle", "--symbol", "nope/usd"],
            {},
            f"error: unknown symbol 'NOPE/USD'; {KNOWN}",
        ),
        (  # was a pydantic traceback: the setting allowed more than the risk limit does
            ["cycle", "--symbol", "BTC/USD"],
            {"BOTLIB_MAX_LLM_USD_PER_DAY": "20000"},
            "error: invalid settings: BOTLIB_MAX_LLM_USD_PER_DAY: Input should be less than or"
            " equal to 10000 (allowed: >= 0 and <= 10000)",
        ),
    ],
    ids=["unknown-symbol", "llm-budget-above-the-limit-cap"],
)
@pytest.mark.slow  # a subprocess
def test_the_command_refuses_in_one_line_and_runs_no_cycle(
    tmp_path: Path, args: list[str], env: dict[str, str], first_line: str
) -> None:
    db = tmp_path / "bot.db"
    result = botlib_cli("--db", str(db), *args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == first_line, result.stderr
    assert "Traceback" not in result.stderr
    if db.exists():
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT count(*) FROM cycles").fetchone()[0] == 0


# environment settings -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("BOTLIB_SIM_CASH", "inf", ["finite", "> 0"]),  # was accepted: a simulator worth inf
        ("BOTLIB_SIM_CASH", "nan", ["finite", "> 0"]),
        ("BOTLIB_SIM_CASH", "-1", ["> 0"]),
        ("BOTLIB_SIM_CASH", "lots", ["valid number"]),
        ("BOTLIB_SIM_FEE", "0.5", [">= 0 and < 0.1"]),
        ("BOTLIB_SIM_FEE", "-0.001", [">= 0 and < 0.1"]),
        ("BOTLIB_SIM_SLIPPAGE_BPS", "1000", [">= 0 and < 1000"]),
        ("BOTLIB_MAX_DRAWDOWN_PCT", "0", ["> 0 and <= 100"]),
        ("BOTLIB_MAX_DRAWDOWN_PCT", "150", ["> 0 and <= 100"]),
        ("BOTLIB_MAX_DAILY_LOSS_PCT", "-5", ["> 0 and <= 100"]),
        ("BOTLIB_MAX_POSITION_PCT", "101", ["> 0 and <= 100"]),
        ("BOTLIB_MAX_POSITION_PCT", "inf", ["finite"]),
        ("BOTLIB_MAX_LLM_USD_PER_DAY", "-1", [">= 0 and <= 10000"]),
        ("BOTLIB_MAX_LLM_USD_PER_DAY", "20000", [">= 0 and <= 10000"]),
        ("BOTLIB_MAX_LLM_USD_PER_DAY", "inf", ["finite"]),
        ("BOTLIB_FAILURE_ALERT_AFTER", "0", [">= 1 and <= 100"]),
        ("BOTLIB_FAILURE_ALERT_AFTER", "1.5", ["valid integer"]),
        ("ALPACA_TIMEOUT", "0", ["> 0 and <= 120"]),
        ("BOTLIB_FILL_WAIT", "-1", [">= 0 and <= 300"]),
        ("OPENAI_TIMEOUT", "601", ["> 0 and <= 600"]),
        ("OPENAI_MAX_RETRIES", "-1", [">= 0 and <= 10"]),
        ("BOTLIB_LLM_MAX_OUTPUT_TOKENS", "10", [">= 50 and <= 32000"]),
        ("BOTLIB_RUNS_KEEP_DAYS", "0", [">= 1 and <= 3650"]),
        ("BOTLIB_RUNS_KEEP_HOURS", "-1", [">= 0 and <= 87600"]),
        ("BOTLIB_MODE", "demo", ["'sim', 'paper' or 'live'"]),
        ("BOTLIB_ANALYST", "gpt", ["'rules' or 'openai'"]),
        ("BOTLIB_LLM_CACHE", "always", ["'off', 'record' or 'replay'"]),
        ("BOTLIB_LOG_JSON", "maybe", ["valid boolean"]),
        ("BOTLIB_SYMBOLS", "BTC/USD;SOL/USD", ["'BTC/USD;SOL/USD'", "BASE/QUOTE pair"]),
        ("BOTLIB_SYMBOLS", "BTCUSD", ["'BTCUSD'", "BASE/QUOTE pair"]),
        ("BOTLIB_SYMBOLS", "BTC/USD,DOGE", ["'DOGE'", "BASE/QUOTE pair"]),
        ("BOTLIB_SYMBOLS", " , ", ["at least one pair"]),
        ("BOTLIB_SYMBOLS", "", ["at least one pair"]),
    ],
)
def test_a_bad_environment_value_names_the_variable_and_the_allowed_range(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: list[str]
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings(None)
    message = str(refused.value)
    assert message.startswith(f"invalid settings: {name}: "), message
    assert all(word in message for word in words), message


def test_settings_at_the_edges_of_their_ranges_still_make_valid_limits() -> None:
    """Every limit the environment accepts is one `RiskLimits` accepts (20000 USD was not)."""
    for edge in (
        {"max_llm_usd_per_day": 10_000, "max_position_pct": 100, "max_drawdown_pct": 100},
        {"max_llm_usd_per_day": 0, "max_position_pct": 0.001, "max_daily_loss_pct": 0.001},
    ):
        limits = load_settings(None, **edge).limits
        assert isinstance(limits, RiskLimits)
        assert json.loads(limits.model_dump_json())["llm_budget_usd"] == edge["max_llm_usd_per_day"]


def test_good_symbols_are_normalised_and_kept() -> None:
    settings = load_settings(None, symbols="btc/usd, eth/usdt ,SOL/USD")
    assert settings.symbols == ("BTC/USD", "ETH/USDT", "SOL/USD")


def test_allowed_range_example_runs() -> None:
    assert doctest.testmod(botlib.app.config).failed == 0
