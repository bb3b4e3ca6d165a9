"""What a model analyst may ask for in its prompt: the 4h and 1d structure (completed higher
bars only, no look-ahead) and a prompt variant; either only in its own prompt, and rebuilt byte
for byte later."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from botlib.arena.config import load_arena
from botlib.arena.replay import rebuild
from botlib.arena.research import run_arena
from botlib.errors import ConfigError
from botlib.features.smc.higher import MIN_BARS, higher_timeframes
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket
from tests.fakes.openai_server import FakeOpenAI

END = datetime(2026, 11, 20, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_a_higher_bar_counts_only_once_it_has_closed() -> None:
    bars = SimMarket().bars("BTC/USD", "1Min", END, 6000)
    on_4h = (bars.index.hour % 4 == 0) & (bars.index.minute == 0)
    boundaries = bars.index[on_4h & (bars.index <= bars.index[-1] - 240 * MINUTE)]
    boundary = boundaries[-1]  # a 4h boundary with a whole 4h bar after it in the window
    at_boundary = int(bars.index.get_loc(boundary))  # bars[:k] end just before `boundary`
    before = higher_timeframes(bars.iloc[:at_boundary], MINUTE)
    for extra in (1, 59, 239):  # minutes into the next 4h bar: it is not complete yet
        inside = higher_timeframes(bars.iloc[: at_boundary + extra], MINUTE)
        assert inside["4h"] == before["4h"], extra
    after = higher_timeframes(bars.iloc[: at_boundary + 240], MINUTE)
    assert after["4h"]["bars"] == before["4h"]["bars"] + 1  # closed: now it counts
    assert set(before) == {"4h"} and before["4h"]["bars"] >= MIN_BARS  # 2-4 days: no 1d chart


def test_only_the_analyst_that_opted_in_sees_them_and_replays_rebuild_them(
    tmp_path: Path,
) -> None:
    with FakeOpenAI() as wide, FakeOpenAI() as narrow:
        arena = tmp_path / "arena.toml"
        arena.write_text(f"""
[analysts.wide]
kind = "llm"
model = "gpt-4o-mini"
base_url = "{wide.base_url}"
key_env = "MTF_TEST_KEY"
multi_timeframe = true

[analysts.narrow]
kind = "llm"
model = "gpt-4o-mini"
base_url = "{narrow.base_url}"
key_env = "MTF_TEST_KEY"
""")
        analysts, keys = dict(load_arena(arena).analysts), {"MTF_TEST_KEY": "sk-x"}
        result = run_arena(analysts, "BTC/USD", END - timedelta(hours=3), END,
                           directory=tmp_path / "runs", cache="record",
                           cache_db=tmp_path / "cache.db", environ=keys)  # fmt: skip
        seen = [json.loads(r["messages"][1]["content"].split("smc: ", 1)[1].split("\n")[0])
                for r in wide.requests]  # fmt: skip
        assert all({"4h", "1d"} <= set(s["higher_timeframes"]) for s in seen)
        assert all("higher_timeframes" not in r["messages"][1]["content"] for r in narrow.requests)
    assert len(result.finished) == 2
    db = tmp_path / "runs" / "wide.db"
    with Store(db, read_only=True) as store:
        (first,) = store.rows("SELECT min(id) AS id FROM ai_decision_logs")
    assert rebuild(db, first["id"]).same_prompt


def test_a_brief_prompt_variant_is_shorter_and_replays_byte_for_byte(tmp_path: Path) -> None:
    with FakeOpenAI() as brief, FakeOpenAI() as full:
        arena = tmp_path / "arena.toml"
        arena.write_text(f"""
[analysts.brief]
kind = "llm"
model = "gpt-4o-mini"
base_url = "{brief.base_url}"
key_env = "MTF_TEST_KEY"
prompt_variant = "brief"

[analysts.full]
kind = "llm"
model = "gpt-4o-mini"
base_url = "{full.base_url}"
key_env = "MTF_TEST_KEY"
""")
        analysts, keys = dict(load_arena(arena).analysts), {"MTF_TEST_KEY": "sk-x"}
        run_arena(analysts, "BTC/USD", END - timedelta(hours=1), END, directory=tmp_path / "runs",
                  cache="record", cache_db=tmp_path / "cache.db", environ=keys)  # fmt: skip
        short, long = brief.requests[0]["messages"], full.requests[0]["messages"]
    assert len(short[0]["content"]) < len(long[0]["content"]) / 2  # the system prompt
    assert short[1]["content"].count("\n") == long[1]["content"].count("\n") - 20  # 10 bars, not 30
    with Store(tmp_path / "runs" / "brief.db", read_only=True) as store:
        (first,) = store.rows("SELECT min(id) AS id FROM ai_decision_logs")
    assert rebuild(tmp_path / "runs" / "brief.db", first["id"]).same_prompt
    bad = tmp_path / "bad.toml"
    bad.write_text(arena.read_text().replace('"brief"', '"poetic"'))
    with pytest.raises(ConfigError, match="unknown prompt variant: use one of default, brief"):
        load_arena(bad)
