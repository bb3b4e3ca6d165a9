"""The research arena: identical bars and prompts for every analyst, a ranking after LLM spend,
replays at $0, a failing analyst as its own row, estimate-then-confirm, the training-cutoff flag.

Model analysts are two loopback fake OpenAI servers with different answers and prices, reached
by the real SDK through the arena's own wiring (no mocks of our adapters).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from botlib.arena.config import default_arena, load_arena
from botlib.arena.research import COMPLETION_TOKENS, PROMPT_TOKENS, estimate, run_arena
from botlib.storage.store import Store
from botlib.ui import charts
from botlib.ui.arena.report import arena_report, leaderboard_html, statistics_html
from tests.fakes.openai_server import FakeOpenAI, Responder, decision, error, prompt_price

Figure = charts.Figure
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
START = END - timedelta(days=1)
CYCLES = 97  # 15-minute bars, both ends included
KEY = "sk-test-arena-not-a-real-key"


def arena_file(path: Path, all_in: FakeOpenAI, holder: FakeOpenAI, extra: str = "") -> Path:
    path.write_text(f"""
[analysts.buy_and_hold]
kind = "buy_and_hold"

[analysts.flat]
kind = "flat"

[analysts.all_in]
kind = "llm"
model = "fake-all-in"
base_url = "{all_in.base_url}"
key_env = "ARENA_TEST_KEY"
price = {{ input_per_1m = 30.0, output_per_1m = 60.0 }}
training_cutoff = "2027-01-01"

[analysts.holder]
kind = "llm"
model = "fake-holder"
base_url = "{holder.base_url}"
key_env = "ARENA_TEST_KEY"
price = {{ input_per_1m = 0, output_per_1m = 0 }}
{extra}""")
    return path


def holds_forever() -> Responder:
    """BUY all in with levels not reached in a day (about what `BuyAndHold` decides)."""
    return decision(action="BUY", confidence=1.0, position_size_pct=100.0,
                    stop_loss=lambda r: round(prompt_price(r) * 0.901, 2),
                    take_profit=lambda r: round(prompt_price(r) * 100, 2))  # fmt: skip


def market_view(request: dict) -> list[str]:
    """The prompt without the analyst's own books (its account and position lines differ)."""
    system, user = (m["content"] for m in request["messages"])
    own = ("account:", "position:")
    return [system, *(line for line in user.splitlines() if not line.startswith(own))]


def test_baselines_and_the_rules_replay_the_same_bars_and_rank_after_fees(tmp_path: Path) -> None:
    result = run_arena(dict(default_arena().analysts), "BTC/USD", START, END,
                       directory=tmp_path / "arena")  # fmt: skip
    assert [e.name for e in result.finished] == ["rules", "buy_and_hold", "flat"]
    curves = result.equity()
    assert len(curves) == CYCLES and not curves.isna().any().any()  # one index for all
    assert (curves["flat"] == 100_000).all()
    hold = result.entrants[1].result
    assert hold is not None and list(hold.trades["side"]) == ["buy"]
    fee = float(hold.trades["fee"].iloc[0])
    assert hold.return_pct == pytest.approx(hold.buy_and_hold_pct, abs=0.35 + fee / 1_000)
    board = result.leaderboard()
    assert list(board["rank"]) == [1, 2, 3]
    assert board["pnl_after_llm"].is_monotonic_decreasing
    assert (board["pnl_after_llm"] == board["pnl_after_fees"]).all()  # no model: no spend
    report = result.statistics()
    table = report.table()
    assert set(table.index) == {"rules", "buy_and_hold", "flat"}
    assert table.loc["flat", "low_pct"] == table.loc["flat", "high_pct"] == 0.0
    assert "moving-block bootstrap" in report.method and report.benchmark == "buy_and_hold"
    assert sorted(p.name for p in (tmp_path / "arena").glob("*.db")) == [
        "buy_and_hold.db", "flat.db", "rules.db",
    ]  # fmt: skip
    page = arena_report(result)
    (figure,) = [w for w in page.children if isinstance(w, Figure)]
    assert [line.labels for line in figure.marks] == [["rules"], ["buy_and_hold"], ["flat"]]
    assert [len(line.y) for line in figure.marks] == [CYCLES] * 3
    board_html = leaderboard_html(board)
    assert board_html.count("<tr>") == 4 and "<td>flat</td>" in board_html
    assert "moving-block bootstrap" in statistics_html(report)


def test_models_see_identical_prompts_rank_after_their_spend_and_replay_at_zero(
    tmp_path: Path,
) -> None:
    env = {"ARENA_TEST_KEY": KEY}
    with FakeOpenAI(holds_forever()) as buyer, FakeOpenAI(decision()) as holder:
        config = load_arena(arena_file(tmp_path / "arena.toml", buyer, holder))
        analysts = dict(config.analysts)
        cache = tmp_path / "cache.db"
        first = run_arena(analysts, "BTC/USD", START, END, directory=tmp_path / "record",
                          cache="record", cache_db=cache, environ=env)  # fmt: skip
        assert len(buyer.requests) == len(holder.requests) == CYCLES
        for a, b in zip(buyer.requests, holder.requests, strict=True):
            assert market_view(a) == market_view(b)  # the same bars, features and question
        again = run_arena(analysts, "BTC/USD", START, END, directory=tmp_path / "replay",
                          cache="replay", cache_db=cache, environ={})  # fmt: skip
        assert len(buyer.requests) == CYCLES  # the replay called nobody
    board = first.leaderboard().set_index("analyst")
    assert board.loc["all_in", "pnl_after_fees"] == board.loc["buy_and_hold", "pnl_after_fees"]
    spend = board.loc["all_in", "llm_spend"]
    assert spend > 0 and board.loc["holder", "llm_spend"] == 0
    assert board.loc["all_in", "pnl_after_llm"] == pytest.approx(
        board.loc["all_in", "pnl_after_fees"] - spend
    )
    assert board.loc["all_in", "rank"] == board.loc["buy_and_hold", "rank"] + 1
    assert board.loc["all_in", "llm_calls"] == CYCLES
    assert board.loc["holder", "pnl_after_fees"] == board.loc["flat", "pnl_after_fees"] == 0
    replayed = again.leaderboard().set_index("analyst")
    assert (replayed["llm_spend"] == 0).all()
    assert list(replayed["pnl_after_fees"]) == list(board.loc[replayed.index, "pnl_after_fees"])
    assert first.warnings() == [
        "all_in: the model may have seen these prices (training cutoff 2027-01-01,"
        " the run starts 2026-11-19)"
    ]


def test_an_analyst_that_cannot_start_is_its_own_row_and_the_others_finish(
    tmp_path: Path,
) -> None:
    broken = """
[analysts.remote]
kind = "llm"
model = "gpt-4o"
base_url = "https://api.example.invalid/v1"
key_env = "ARENA_UNSET_KEY"
"""
    with FakeOpenAI() as buyer, FakeOpenAI() as holder:
        config = load_arena(arena_file(tmp_path / "arena.toml", buyer, holder, broken))
        result = run_arena(config.select(["flat", "remote"]), "BTC/USD", START, END,
                           directory=tmp_path / "runs", cache="record",
                           environ={"ARENA_TEST_KEY": KEY})  # fmt: skip
    assert [e.name for e in result.finished] == ["flat"]
    (remote,) = [e for e in result.entrants if e.name == "remote"]
    assert remote.error is not None and "ARENA_UNSET_KEY" in remote.error
    board = result.leaderboard()
    assert list(board["analyst"]) == ["flat", "remote"]  # the failed one ranks last
    assert "<td>remote</td><td>2</td><td colspan" in leaderboard_html(board)


def test_the_estimate_prices_each_model_and_replaying_costs_nothing(tmp_path: Path) -> None:
    with FakeOpenAI() as buyer, FakeOpenAI() as holder:
        analysts = dict(load_arena(arena_file(tmp_path / "a.toml", buyer, holder)).analysts)
    recording = estimate(analysts, CYCLES, "record")
    one_call = (PROMPT_TOKENS * 30.0 + COMPLETION_TOKENS * 60.0) / 1_000_000
    assert recording.calls == {"all_in": CYCLES, "holder": CYCLES}
    assert recording.usd["all_in"] == pytest.approx(CYCLES * one_call)
    assert recording.usd["holder"] == 0 and recording.total_usd == pytest.approx(CYCLES * one_call)
    assert "all_in: 97 calls" in recording.describe()
    replaying = estimate(analysts, CYCLES, "replay")
    assert replaying.total_usd == 0 and set(replaying.calls.values()) == {0}


@pytest.mark.slow
def test_the_cli_asks_before_spending_and_runs_with_yes(tmp_path: Path) -> None:
    with FakeOpenAI(holds_forever()) as buyer, FakeOpenAI(decision()) as holder:
        path = arena_file(tmp_path / "arena.toml", buyer, holder)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "OPENAI_"))}
        env = base | {"ARENA_TEST_KEY": KEY, "BOTLIB_DB_PATH": str(tmp_path / "bot.db")}
        args = [sys.executable, "-m", "botlib", "arena", "--symbol", "BTC/USD", "--config",
                str(path), "--days", "0.25", "--end", "2026-11-20T12:00Z", "--cache", "record",
                "--out", str(tmp_path / "runs")]  # fmt: skip
        refused = subprocess.run(args, env=env, capture_output=True, text=True, check=False,
                                 stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=120)  # fmt: skip
        assert refused.returncode == 1, refused.stderr
        assert "estimate: all_in: 25 calls" in refused.stdout and "not confirmed" in refused.stdout
        assert buyer.requests == [] and holder.requests == []
        ran = subprocess.run([*args, "--yes", "--analysts", "all_in,buy_and_hold"], env=env,
                             capture_output=True, text=True, check=False, cwd=tmp_path,
                             timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert len(buyer.requests) == 25 and holder.requests == []
    lines = ran.stdout.splitlines()
    assert any(line.split()[:2] == ["1", "buy_and_hold"] for line in lines), ran.stdout
    assert any("moving-block bootstrap" in line for line in lines)
    assert KEY not in ran.stdout + ran.stderr


def test_a_failing_model_holds_every_cycle_and_the_arena_still_ranks_it(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(error(400, "the model refused the request")) as broken:
        arena = tmp_path / "arena.toml"
        arena.write_text(f"""
[analysts.broken]
kind = "llm"
model = "gpt-4o"
base_url = "{broken.base_url}"
key_env = "ARENA_TEST_KEY"

[analysts.flat]
kind = "flat"
""")
        start = datetime(2023, 9, 29, 12, tzinfo=UTC)  # before gpt-4o's training cutoff
        result = run_arena(dict(load_arena(arena).analysts), "BTC/USD", start,
                           start + timedelta(hours=6), directory=tmp_path / "runs",
                           cache="record", cache_db=tmp_path / "cache.db",
                           environ={"ARENA_TEST_KEY": KEY})  # fmt: skip
        assert len(broken.requests) == 25  # one per cycle, none retried (a 400)
    assert [e.name for e in result.finished] == ["broken", "flat"]
    with Store(tmp_path / "runs" / "broken.db", read_only=True) as store:
        errors = store.rows("SELECT action, error FROM ai_decision_logs")
    assert len(errors) == 25 and all(r["action"] == "HOLD" and r["error"] for r in errors)
    board = result.leaderboard().set_index("analyst")
    assert board.loc["broken", "trades"] == 0 and board.loc["broken", "llm_spend"] == 0
    assert result.warnings() == [  # gpt-4o's cutoff from the built-in table
        "broken: the model may have seen these prices (training cutoff 2023-10-01,"
        " the run starts 2023-09-29)"
    ]
