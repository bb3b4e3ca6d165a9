"""The AI-log read API and its exports: filters, totals, JSON/CSV round trips, the CLI."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from botlib.analysts.rules import RulesAnalyst
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.reporting.ai_logs import (
    FIELDS,
    LogFilter,
    decoded,
    query_logs,
    read_csv,
    read_json,
    spend_today,
    to_csv,
    to_json,
    totals,
)
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import CANARY_KEY, T0, openai_engine
from tests.fakes.openai_server import FakeOpenAI, decision, error


@pytest.fixture
def mixed(tmp_path: Path, fake_openai: FakeOpenAI) -> Path:
    """A DB with rules decisions (BTC and SOL over 3 hours) and openai calls, one failed."""
    path = tmp_path / "mixed.db"
    clock = ManualClock(T0)
    with Store(path) as store:
        market = SimMarket()
        rules = Engine(market, SimBroker(store, market, clock), RulesAnalyst(), store, clock=clock)
        llm = openai_engine(fake_openai, store, clock)
        for _ in range(3):
            for symbol in ("BTC/USD", "SOL/USD"):
                rules.run_cycle(symbol, force=True)
            clock.advance(timedelta(hours=1))
        fake_openai.push(decision(reasoning='Sweep <b>"below"</b>, HOLD'), error(500, "boom"))
        llm.run_cycle("BTC/USD", force=True)
        llm.run_cycle("SOL/USD", force=True)
    return path


def all_rows(path: Path) -> list[dict[str, Any]]:
    with Store(path, read_only=True) as store:
        return store.rows(f"SELECT {', '.join(FIELDS)} FROM ai_decision_logs ORDER BY id DESC")


def test_filters_select_what_they_say(mixed: Path) -> None:
    with Store(mixed, read_only=True) as store:
        every = query_logs(store)
        assert [r["id"] for r in every] == sorted((r["id"] for r in every), reverse=True)
        assert len(every) == 8
        assert {r["symbol"] for r in query_logs(store, LogFilter(symbol="SOL/USD"))} == {"SOL/USD"}
        llm = query_logs(store, LogFilter(analyst="openai"))
        assert len(llm) == 2 and all(r["model"] == "gpt-4o" for r in llm)
        assert len(query_logs(store, LogFilter(model="rules-v1"))) == 6
        failed = query_logs(store, LogFilter(errors_only=True))
        assert [r["error"].split(":")[0] for r in failed] == ["InternalServerError"]
        assert len(query_logs(store, LogFilter(text="SWEEP <B>"))) == 1  # case-insensitive
        assert query_logs(store, LogFilter(text="100%_")) == []  # LIKE wildcards are literal
        late = query_logs(store, LogFilter(since=T0 + timedelta(hours=1)))
        assert len(late) == 6 and all(r["created_at"] >= "2026-11-20T13" for r in late)
        early = query_logs(store, LogFilter(until=T0 + timedelta(hours=1)))
        assert len(early) == 2
        assert len(query_logs(store, LogFilter(limit=3))) == 3
        holds = query_logs(store, LogFilter(action="hold"))
        assert holds and all(r["action"] == "HOLD" for r in holds)


def test_totals_add_up_per_model_and_day(mixed: Path) -> None:
    rows = all_rows(mixed)
    with Store(mixed, read_only=True) as store:
        by_model = totals(store, "model")
        by_day = totals(store, "day")
        assert spend_today(store, T0) == pytest.approx(
            sum(r["cost_usd"] or 0 for r in rows if r["created_at"] < "2026-11-21")
        )
    gpt = by_model.loc["gpt-4o"]
    llm_rows = [r for r in rows if r["model"] == "gpt-4o"]
    assert gpt["calls"] == 2 and gpt["errors"] == 1
    assert gpt["prompt_tokens"] == sum(r["prompt_tokens"] or 0 for r in llm_rows)
    assert gpt["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in llm_rows))
    assert by_model.loc["rules-v1"]["calls"] == 6
    assert by_model.loc["rules-v1"]["latency_p95_ms"] >= by_model.loc["rules-v1"]["latency_p50_ms"]
    assert list(by_day.index) == ["2026-11-20"] and by_day["calls"].sum() == 8


def test_json_export_reads_back_equal_to_the_rows(mixed: Path) -> None:
    rows = all_rows(mixed)
    text = to_json(rows)
    back = read_json(text)
    assert back == [decoded(r) for r in rows]
    llm = next(r for r in back if r["analyst"] == "openai" and r["error"] is None)
    assert isinstance(llm["prompt"], list) and llm["prompt"][0]["role"] == "system"
    assert isinstance(llm["raw_response"], dict) and llm["raw_response"]["usage"]["total_tokens"]


def test_csv_export_reads_back_equal_to_the_rows(mixed: Path) -> None:
    rows = all_rows(mixed)
    text = to_csv(rows)
    assert text.splitlines()[0].split(",") == list(FIELDS)
    assert read_csv(text) == rows  # nested JSON stays the JSON string the DB holds
    assert '<b>""below""</b>' in text  # quotes in model text are CSV-escaped, not lost


def test_exports_of_nothing_are_valid() -> None:
    assert read_json(to_json([])) == [] and read_csv(to_csv([])) == []


def botlib(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "botlib", "--db", str(db), *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.slow  # a subprocess
def test_cli_exports_json_and_csv_with_filters(mixed: Path, tmp_path: Path) -> None:
    rows = all_rows(mixed)
    shown = botlib("export-logs", "--format", "json", "--symbol", "btc/usd", db=mixed)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [decoded(r) for r in rows if r["symbol"] == "BTC/USD"]
    out = tmp_path / "logs.csv"
    written = botlib("export-logs", "--format", "csv", "--since", "2026-11-20T13:00Z",
                     "--analyst", "rules", "-o", str(out), db=mixed)  # fmt: skip
    assert written.returncode == 0, written.stderr
    expected = [r for r in rows if r["analyst"] == "rules" and r["created_at"] >= "2026-11-20T13"]
    assert read_csv(out.read_text()) == expected and len(expected) == 4
    dump = out.read_text() + shown.stdout
    assert CANARY_KEY not in dump


@pytest.mark.slow  # a subprocess
def test_cli_usage_and_bad_input(mixed: Path, tmp_path: Path) -> None:
    usage = botlib("ai-usage", "--by", "analyst", db=mixed)
    assert usage.returncode == 0 and "openai" in usage.stdout and "rules" in usage.stdout
    bad = botlib("export-logs", "--since", "yesterday", db=mixed)
    assert bad.returncode == 2 and "not a date or time: 'yesterday'" in bad.stderr
    missing = botlib("export-logs", db=tmp_path / "none.db")
    assert missing.returncode == 2 and missing.stderr.startswith("error: database")
