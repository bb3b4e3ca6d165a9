from datetime import timedelta
from pathlib import Path

from filelock import FileLock

from botlib.clock import ManualClock
from botlib.config import load_settings
from botlib.scheduler import lock_path, tick
from botlib.store import Store
from botlib.wiring import ensure_assets
from tests.conftest import T0


def test_tick_runs_due_assets_once_per_interval(tmp_path: Path) -> None:
    settings = load_settings(None, db_path=tmp_path / "t.db")
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
    settings = load_settings(None, db_path=tmp_path / "t.db")
    Store(settings.db_path).close()
    with FileLock(lock_path(settings.db_path)):
        assert tick(settings, ManualClock(T0)) is None
    assert tick(settings, ManualClock(T0)) == []  # lock free again; no assets configured
