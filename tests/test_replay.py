"""Every decision replayable: the logged prompt rebuilt byte for byte from the stored bars, and a
what-if rerun with another analyst on exactly those inputs, the bot's database untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from botlib.analysts.baselines import Flat
from botlib.arena.analysts import arena_analyst
from botlib.arena.config import load_arena
from botlib.arena.replay import call_estimate, rebuild, what_if
from botlib.clock import ManualClock
from botlib.errors import ConfigError
from botlib.storage.store import Store
from botlib.ui.ai_explorer import AiLogExplorer
from botlib.ui.arena.whatif import WhatIfPanel
from tests.conftest import T0, openai_engine
from tests.fakes.openai_server import FakeOpenAI, buy


def logged_cycles(db: Path, fake: FakeOpenAI, count: int) -> list[int]:
    """`count` model decisions 15 minutes apart (a buy first, so a position shows later)."""
    fake.push(buy())
    clock = ManualClock(T0)
    ids = []
    with Store(db) as store:
        engine = openai_engine(fake, store, clock)
        for _ in range(count):
            report = engine.run_cycle("BTC/USD", force=True)
            assert report.decision_id is not None, report.summary()
            ids.append(report.decision_id)
            clock.advance(timedelta(minutes=15))
    return ids


def test_the_logged_prompt_is_rebuilt_byte_for_byte_from_the_stored_bars(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    db = tmp_path / "bot.db"
    ids = logged_cycles(db, fake_openai, 3)
    for decision_id, request in zip(ids, fake_openai.requests, strict=True):
        rebuilt = rebuild(db, decision_id)
        assert rebuilt.same_prompt, decision_id
        assert rebuilt.messages == request["messages"]  # what the model was sent
    last = rebuild(db, ids[-1])
    assert last.context.position is not None  # the first cycle bought: a later one holds
    assert "position: long" in last.messages[1]["content"]
    with pytest.raises(ConfigError, match="has no decision 999"):
        rebuild(db, 999)


def test_a_what_if_asks_another_analyst_on_the_same_inputs(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    db = tmp_path / "bot.db"
    (decision_id,) = logged_cycles(db, fake_openai, 1)
    before = db.read_bytes()
    flat = what_if(db, decision_id, Flat())
    assert flat["same_prompt"] and flat["original"]["action"] == "BUY"
    assert flat["rerun"]["action"] == "HOLD" and flat["rerun"]["analyst"] == "flat"
    with FakeOpenAI(buy(confidence=0.55)) as other:
        arena = tmp_path / "arena.toml"
        arena.write_text(f"""
[analysts.other]
kind = "llm"
model = "gpt-4o-mini"
base_url = "{other.base_url}"
key_env = "REPLAY_TEST_KEY"
""")
        spec = load_arena(arena).analysts["other"]
        cost = call_estimate(spec, rebuild(db, decision_id))
        assert cost is not None and 0 < cost < 0.01  # gpt-4o-mini's price, shown first
        keys = {"REPLAY_TEST_KEY": "sk-test-replay"}
        with Store(":memory:") as scratch:  # the rerun's own log, never the bot's
            model = arena_analyst("other", spec, scratch, ManualClock(T0), environ=keys,
                                  budget_usd=1.0)  # fmt: skip
            rerun = what_if(db, decision_id, model)
        (sent,) = other.requests
    assert sent["messages"] == fake_openai.requests[0]["messages"]  # the same prompt, again
    assert rerun["rerun"]["confidence"] == 0.55 and rerun["rerun"]["analyst"] == "other"
    assert rerun["rerun"]["cost_usd"] > 0
    assert json.loads(json.dumps(rerun)) == rerun  # plain JSON, for the explorer and the CLI
    assert db.read_bytes() == before  # read-only


@pytest.mark.slow
def test_the_whatif_command_prints_both_answers(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    db = tmp_path / "bot.db"
    (decision_id,) = logged_cycles(db, fake_openai, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "OPENAI_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "botlib", "--db", str(db), "whatif", "--decision",
         str(decision_id), "--analyst", "flat"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    first, rest = ran.stdout.split("\n", 1)
    assert first.startswith(f"decision {decision_id}: prompt rebuilt byte for byte")
    shown = json.loads(rest)
    assert shown["original"]["action"] == "BUY" and shown["rerun"]["action"] == "HOLD"


def test_the_explorers_what_if_shows_the_cost_then_both_answers(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    db = tmp_path / "bot.db"
    (decision_id,) = logged_cycles(db, fake_openai, 1)
    with FakeOpenAI(buy(confidence=0.35)) as other:
        arena = tmp_path / "arena.toml"
        arena.write_text(f"""
[analysts.flat]
kind = "flat"

[analysts.other]
kind = "llm"
model = "gpt-4o"
base_url = "{other.base_url}"
key_env = "REPLAY_TEST_KEY"
""")
        analysts = load_arena(arena).analysts

        keys = {"REPLAY_TEST_KEY": "sk-test"}

        def build(name: str, spec: object, scratch: Store) -> object:
            return arena_analyst(name, spec, scratch, ManualClock(T0), environ=keys,
                                 budget_usd=1.0)  # fmt: skip

        panel = WhatIfPanel(db, analysts, build)  # type: ignore[arg-type]
        explorer = AiLogExplorer(db, what_if=panel)
        assert panel.widget in explorer.widget.children
        explorer.select(decision_id)
        assert panel.decision_id == decision_id
        assert panel.cost.value == "costs ~$0.0000" and not panel.run.disabled  # flat: free
        panel.analyst.value = "other"
        assert panel.cost.value.startswith("costs ~$0.00") and other.requests == []
        panel.run.click()
        assert len(other.requests) == 1
    shown = panel.result.value
    assert "rebuilt byte for byte" in shown
    assert "<tr><th>action</th><td>BUY</td><td>BUY</td></tr>" in shown
    assert "<tr><th>confidence</th><td>0.8</td><td>0.35</td></tr>" in shown
    panel.show(None)  # what the explorer does when no call is selected: nothing to run
    assert panel.run.disabled and panel.result.value == ""
