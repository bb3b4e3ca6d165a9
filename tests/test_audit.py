"""The parity audit: a simulator bot's period replays with zero differences, and a manual action
shows up as differences that name it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from botlib.app.config import load_settings
from botlib.app.cycles import CycleRunner
from botlib.arena.audit import BotTerms, audit
from botlib.backtest import Sizing
from botlib.clock import ManualClock
from botlib.ops.control import set_paused
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket

START = datetime(2026, 11, 18, 12, 0, 7, tzinfo=UTC)  # a scheduler's clock: 7 s past the bar
STEP = timedelta(minutes=15)


def run_bot(db: Path, cycles: int, pause: range = range(0)) -> None:
    """The tick's runner in sim mode; the operator pauses the asset over the `pause` cycles."""
    settings = load_settings(None, db_path=db, mode="sim", analyst="rules")
    clock = ManualClock(START)
    with Store(db) as store:
        store.ensure_asset("BTC/USD", timeframe="15Min", interval_minutes=15)
        runner = CycleRunner(settings, store, clock)
        for k in range(cycles):
            if k in (pause.start, pause.stop) and len(pause):
                set_paused(store, "BTC/USD", k == pause.start, actor="ann", now=clock.now())
            runner.run("BTC/USD")
            clock.advance(STEP)


def terms() -> BotTerms:
    return BotTerms(cash=100_000, fee_rate=0.0025, slippage_bps=5, stop_band_pct=0.5,
                    sizing=Sizing(10, 25), analyst="rules")  # fmt: skip


def test_a_simulator_period_replays_with_zero_differences(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    run_bot(db, 193)  # two days of 15-minute cycles from a fresh database
    report = audit(db, "BTC/USD", market=SimMarket(), terms=terms(), directory=tmp_path / "r")
    assert report.cycles == 193 and report.replay.cycles == 193
    assert len(report.replay.trades) >= 4, "a period without trades proves little"
    assert report.differences == [], report.table().to_string()


def test_a_manual_pause_is_named_as_the_cause(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    run_bot(db, 193, pause=range(60, 100))
    report = audit(db, "BTC/USD", market=SimMarket(), terms=terms(), directory=tmp_path / "r")
    table = report.table()
    assert len(table) > 0
    paused = table[table["kind"] == "cycle"]
    assert (paused["live"] == "ok PAUSED").any()
    assert paused["cause"].str.startswith("a manual action before it: pause").any()
    first = table["when"].min()
    assert first >= "2026-11-19T03:00"  # nothing differs before the operator acted


@pytest.mark.slow
def test_the_audit_command_reads_the_bots_own_terms(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    run_bot(db, 97)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "OPENAI_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "botlib", "--db", str(db), "audit", "--symbol", "btc/usd",
         "--out", str(tmp_path / "replays")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("audit BTC/USD: 97 cycles 2026-11-18 12:00Z")
    assert "0 difference(s)" in ran.stdout
