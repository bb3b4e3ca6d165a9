import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from botlib.app.config import Settings, load_settings
from botlib.app.cycles import CycleRunner
from botlib.app.scheduler import last_tick, lock_path, run_asset, tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock, iso
from botlib.errors import ConfigError
from botlib.storage.store import Store
from tests.conftest import T0

# Ticks here run cycles in this process; tests/test_tick_notebooks.py runs them as notebooks.


def in_process(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(
        None,
        db_path=tmp_path / "t.db",
        runs_dir=tmp_path / "runs",
        tick_notebooks=False,
        **overrides,
    )


def test_tick_runs_due_assets_once_per_interval(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"], interval_minutes=15)
        store.update_asset("SOL/USD", paused=True)
    clock = ManualClock(T0)
    first = tick(settings, clock)
    assert first is not None
    assert [(r.symbol, r.status.value) for r in first] == [
        ("BTC/USD", "ok"),
        ("SOL/USD", "skipped"),
    ]
    clock.advance(timedelta(minutes=5))
    assert [r.status.value for r in tick(settings, clock) or []] == ["skipped", "skipped"]
    clock.advance(timedelta(minutes=10))
    assert [r.status.value for r in tick(settings, clock) or []] == ["ok", "skipped"]


def test_a_second_tick_exits_while_one_runs(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    Store(settings.db_path).close()
    with FileLock(lock_path(settings.db_path)):
        assert tick(settings, ManualClock(T0)) is None
        assert ticks(settings) == []  # the tick that did not run leaves no heartbeat
    assert tick(settings, ManualClock(T0)) == []  # lock free again; no assets configured
    only = ticks(settings)
    assert len(only) == 1 and only[0]["due"] == 0
    assert only[0]["next_at"] == iso(T0 + timedelta(minutes=1))  # nothing scheduled yet


def ticks(settings: Settings) -> list[dict]:  # type: ignore[type-arg]
    with Store(settings.db_path, read_only=True) as reader:
        return reader.rows("SELECT * FROM ticks ORDER BY id")


def test_a_quiet_tick_still_leaves_a_heartbeat(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD"], interval_minutes=15)
    clock = ManualClock(T0)
    tick(settings, clock)
    clock.advance(timedelta(minutes=5))
    assert [r.status.value for r in tick(settings, clock) or []] == ["skipped"]
    quiet = ticks(settings)[-1]
    assert (quiet["due"], quiet["ran"], quiet["failed"]) == (0, 0, 0)
    assert quiet["started_at"] == quiet["finished_at"] == iso(clock.now())
    assert quiet["next_at"] == iso(T0 + timedelta(minutes=15)) > quiet["started_at"]
    assert quiet["pid"] == os.getpid()
    with Store(settings.db_path, read_only=True) as reader:
        assert last_tick(reader) == quiet


def test_heartbeat_counts_match_the_cycles(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD", "ETH/USD", "SOL/USD"], interval_minutes=30)
        store.update_asset("ETH/USD", paused=True)
        store.update_asset("SOL/USD", analyst="openai")  # no key: this one fails
    reports = tick(settings, ManualClock(T0)) or []
    assert [(r.symbol, r.status.value) for r in reports] == [
        ("BTC/USD", "ok"),
        ("ETH/USD", "skipped"),
        ("SOL/USD", "failed"),
    ]
    with Store(settings.db_path, read_only=True) as reader:
        cycles = reader.rows("SELECT status FROM cycles")
    row = ticks(settings)[0]
    assert (row["due"], row["ran"], row["failed"]) == (2, len(cycles), 1)
    assert sorted(c["status"] for c in cycles) == ["failed", "ok"]
    assert row["next_at"] == iso(T0 + timedelta(minutes=30))


def test_no_asset_can_run_is_one_clear_error_after_the_records(tmp_path: Path) -> None:
    settings = in_process(tmp_path, analyst="openai")
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"])
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        tick(settings, ManualClock(T0))
    row = ticks(settings)[0]
    assert (row["due"], row["ran"], row["failed"]) == (2, 2, 2) and row["finished_at"]


def test_one_assets_crash_does_not_stop_the_others(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD"])
        runner = CycleRunner(settings, store, ManualClock(T0))
        gone = run_asset(runner, "DOGE/USD")  # e.g. deleted while the tick ran
        after = run_asset(runner, "BTC/USD")
    assert gone.status.value == "failed" and gone.reason.startswith("UnknownSymbolError")
    assert after.status.value == "ok"


def test_no_heartbeat_yet(tmp_path: Path) -> None:
    Store(tmp_path / "t.db").close()
    with Store(tmp_path / "t.db", read_only=True) as reader:
        assert last_tick(reader) is None


class CreepingClock(ManualClock):
    """A clock that moves 5 s each time it is read: a tick whose cycles take time."""

    def now(self) -> datetime:
        self.advance(timedelta(seconds=5))
        return super().now()


def test_a_slow_tick_does_not_push_the_next_cycles_back(tmp_path: Path) -> None:
    settings = in_process(tmp_path)
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"], interval_minutes=15)
    clock = CreepingClock(T0)
    assert [r.status.value for r in tick(settings, clock) or []] == ["ok", "ok"]
    started = datetime.fromisoformat(ticks(settings)[0]["started_at"])
    with Store(settings.db_path) as store:
        cycles = store.rows("SELECT started_at FROM cycles ORDER BY started_at")
        assert cycles[-1]["started_at"] > iso(started)  # the second cycle began later...
        assert {a.last_cycle_at for a in store.list_assets()} == {started}  # ...counted from here
    clock.set(started + timedelta(minutes=15) - timedelta(seconds=5))  # next read: exactly due
    assert [r.status.value for r in tick(settings, clock) or []] == ["ok", "ok"]
