"""`botlib guard` beside the tick: one books lock, a pass skips a running tick, a tick waits out
a pass, and a pass in the simulator books the venue's stop between cycles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from botlib.app.config import Settings, load_settings
from botlib.app.guarding import guard_once
from botlib.app.scheduler import books_lock_path, tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.storage.store import Store
from tests.conftest import T0
from tests.test_tick_notebooks import HOLD_LOCK

pytestmark = pytest.mark.slow  # a child process holds the lock


def sim_settings(tmp_path: Path) -> Settings:
    settings = load_settings(None, db_path=tmp_path / "bot.db", tick_notebooks=False)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD"], interval_minutes=60)
    return settings


@contextmanager
def held_by_another_process(path: str) -> Iterator[None]:
    """Hold the lock at `path` in a child process until the block ends (then SIGKILL it)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            yield
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)


def test_a_guard_pass_skips_while_a_tick_holds_the_books(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    with held_by_another_process(books_lock_path(settings.db_path)):
        assert guard_once(settings, ManualClock(T0)) is None  # a tick is writing: stand aside
    assert guard_once(settings, ManualClock(T0)) == []  # nothing held, nothing to watch


def test_a_tick_waits_out_a_guard_pass_instead_of_losing_its_minute(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(tick(settings, ManualClock(T0))))
    with held_by_another_process(books_lock_path(settings.db_path)):
        runner.start()
        runner.join(2)  # a tick that skipped would be done in milliseconds
        assert runner.is_alive() and result == []  # it waits for the books
    runner.join(60)  # the guard pass ended (its process killed): the tick runs
    [reports] = result
    assert reports is not None and [r.status.value for r in reports] == ["ok"]  # type: ignore[attr-defined]


def test_the_guard_cli_books_a_venue_stop_filled_between_cycles(tmp_path: Path) -> None:
    """A tick buys in the simulator; hours later `botlib guard --once` finds the venue's stop
    filled (the market fell through it) and books it; a second pass finds nothing to do."""
    settings = sim_settings(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_"))}
    env |= {"BOTLIB_DB": str(settings.db_path)}
    bought = tick(settings, ManualClock(T0))
    assert bought is not None and bought[0].action == "BUY", bought[0].summary()
    with Store(settings.db_path, read_only=True) as store:
        stop = store.rows("SELECT stop_loss FROM positions")[0]["stop_loss"]
    from botlib.venues.sim import SimMarket

    lows = SimMarket().bars("BTC/USD", "1Min", T0 + timedelta(days=3), 3 * 1440)
    lows = lows[lows.index >= T0]
    crossed = lows.index[lows["low"] <= stop]
    assert len(crossed), "the stop should be reached within three days of simulated prices"
    at = crossed[0].to_pydatetime() + timedelta(minutes=30)
    run = [sys.executable, "-m", "botlib", "guard", "--once", "--at", at.isoformat()]
    first = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip() == "BTC/USD watched"  # booked; nothing for the bot to fire
    with Store(settings.db_path, read_only=True) as store:
        sells = store.rows("SELECT reason, price FROM trades WHERE side = 'sell'")
        assert [s["reason"] for s in sells] == ["venue_stop"]
        assert store.get_position("BTC/USD") is None
        assert store.resting_intents(None, None) == []
    again = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0 and again.stdout == ""  # nothing held: no asset watched
