"""Ticks: run every due asset once, never two ticks at a time; and a loop for hosts without cron.

By default each due asset's cycle runs `notebooks/trading_cycle.ipynb` through papermill and the
executed notebook is archived as the cycle's record (`botlib.app.jupyter.notebook_runs`); with
BOTLIB_TICK_NOTEBOOKS=false (or `--in-process`) cycles run in this process, for hosts without
Jupyter. Each tick that gets the lock leaves a heartbeat row in `ticks` (how many assets were
due, ran and failed, and when the next one is due), so the dashboard can tell a quiet bot from
a dead one, then prunes the archive. A tick with nothing due imports no papermill, starts no
kernel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from botlib.app.config import Settings
from botlib.clock import SystemClock, floor_time, iso
from botlib.core.due import skip_reason_in
from botlib.errors import UnknownSymbolError
from botlib.models import CycleReport, CycleStatus
from botlib.ports import Clock
from botlib.storage.store import Store

__all__ = [
    "AssetRunner",
    "tick",
    "run_tick",
    "run_asset",
    "run_loop",
    "lock_path",
    "books_lock_path",
    "last_tick",
    "next_due",
]

log = logging.getLogger(__name__)


class AssetRunner(Protocol):
    """Runs one asset's cycle: in this process (`CycleRunner`) or as a notebook."""

    def run(self, symbol: str) -> CycleReport: ...

    def close(self) -> None:
        """Release what the runner held for the tick (the notebook runner's kernel)."""
        ...


def lock_path(db_path: Path | str) -> str:
    """Return the tick lock beside the database (an OS lock: a killed tick releases it)."""
    return f"{db_path}.tick.lock"


def books_lock_path(db_path: Path | str) -> str:
    """Return the lock a tick and a guard pass share: one of them writes the books at a time."""
    return f"{db_path}.books.lock"


BOOKS_WAIT_S = 60.0  # a tick waits out a guard pass (milliseconds, or a few venue requests)


def tick(settings: Settings, clock: Clock | None = None) -> list[CycleReport] | None:
    """Run each due, unpaused asset once; return None when another tick holds the lock.

    A guard pass holding the books lock is waited for (`BOOKS_WAIT_S`), never skipped: the
    guard must not cost a tick its minute. Raise ConfigError (after recording the failed
    cycles) when no due asset could run at all.
    """
    lock = FileLock(lock_path(settings.db_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        log.info("another tick is running; this one exits")
        return None
    books = FileLock(books_lock_path(settings.db_path), timeout=BOOKS_WAIT_S)
    try:
        with books, Store(settings.db_path) as store:
            return run_tick(settings, store, clock or SystemClock())
    except Timeout:
        log.warning("a guard pass held the books for %.0f s; this tick exits", BOOKS_WAIT_S)
        return None
    finally:
        lock.release()


def run_tick(settings: Settings, store: Store, clock: Clock) -> list[CycleReport]:
    """Run every due asset once (the others report skipped), leave the heartbeat, prune."""
    started = clock.now()
    assets = store.list_assets()
    waits = {asset.symbol: skip_reason_in(store, asset, started) for asset in assets}
    tick_id = _start_tick(store, started, sum(w is None for w in waits.values()))
    reports: list[CycleReport] = []
    runner: AssetRunner | None = None
    try:
        runner = _runner(settings, store, clock, started) if None in waits.values() else None
        for symbol, wait in waits.items():
            if runner is None or wait is not None:
                reports.append(CycleReport("-", symbol, CycleStatus.SKIPPED, reason=wait or ""))
            else:
                reports.append(_anchored(store, run_asset(runner, symbol), started))
    finally:
        if runner is not None:
            runner.close()  # the notebook runner's kernel: a fresh one per tick
        _finish_tick(store, tick_id, clock.now(), reports)
        _prune(settings, store, clock.now())
    if any(r.cycle_id != "-" for r in reports):
        from botlib.app.cycles import raise_if_unconfigured

        raise_if_unconfigured(reports)
    return reports


def _runner(settings: Settings, store: Store, clock: Clock, started: datetime) -> AssetRunner:
    """Return the notebook runner, or the in-process one (BOTLIB_TICK_NOTEBOOKS=false)."""
    if settings.tick_notebooks:
        from botlib.app.jupyter.notebook_runs import NotebookRunner

        return NotebookRunner(settings, store, clock, started)
    from botlib.app.cycles import CycleRunner

    return CycleRunner(settings, store, clock)


def _anchored(store: Store, report: CycleReport, started: datetime) -> CycleReport:
    """Date the asset's last cycle to the tick's start, not to when its cycle got going.

    A cycle starts seconds into a tick (a kernel starting, the assets before it, a slow
    model); counted from then, the next tick an interval later finds it not yet due and the
    asset would slip a whole minute every interval.
    """
    if report.cycle_id != "-":
        with contextlib.suppress(UnknownSymbolError):  # deleted while its cycle ran
            store.mark_cycle(report.symbol, started)
    return report


def _prune(settings: Settings, store: Store, now: datetime) -> None:
    """Prune the notebook archive; a failure is logged, never fatal to the tick."""
    from botlib.app.jupyter.notebook_runs import prune_runs

    try:
        prune_runs(store, settings.runs_dir, now, settings.runs_keep_days, settings.runs_keep_hours)
    except Exception:
        log.exception("could not prune the notebook archive %s", settings.runs_dir)


def run_asset(runner: AssetRunner, symbol: str) -> CycleReport:
    """Run one asset's cycle; anything that escapes becomes a failed report, so others still run."""
    try:
        return runner.run(symbol)
    except Exception as exc:
        log.exception("%s: the cycle could not run", symbol)
        return CycleReport("-", symbol, CycleStatus.FAILED, reason=f"{type(exc).__name__}: {exc}")


def _start_tick(store: Store, started: datetime, due: int) -> int:
    row = {"started_at": iso(started), "due": due, "pid": os.getpid()}
    return store.start_tick(row)


def _finish_tick(store: Store, tick_id: int, now: datetime, reports: list[CycleReport]) -> None:
    ran = [r for r in reports if not (r.status is CycleStatus.SKIPPED and r.cycle_id == "-")]
    fields = {
        "finished_at": iso(now),
        "ran": len(ran),
        "failed": sum(r.status is CycleStatus.FAILED for r in reports),
        "next_at": iso(next_due(store, now)),
    }
    store.finish_tick(tick_id, fields)


def next_due(store: Store, now: datetime) -> datetime:
    """Return when the next unpaused asset is due, or the next minute when that is unknown."""
    next_minute = floor_time(now, 1) + timedelta(minutes=1)
    times = [
        asset.last_cycle_at + timedelta(minutes=asset.interval_minutes)
        if asset.last_cycle_at is not None
        else next_minute
        for asset in store.list_assets()
        if not asset.paused
    ]
    return min(times, default=next_minute)


def last_tick(store: Store) -> dict[str, Any] | None:
    """Return the newest heartbeat row, or None (works on a read-only store)."""
    return store.last_tick()


def run_loop(settings: Settings, stop: threading.Event, every_seconds: float = 60.0) -> int:
    """Tick at each multiple of `every_seconds` until `stop` is set; return the number of ticks."""
    ticks = 0
    while not stop.is_set():
        reports = tick(settings) or []
        ticks += 1
        for report in reports:
            if report.status.value != "skipped":
                log.info("tick: %s", report.summary())
        now = datetime.now().timestamp()  # noqa: DTZ005 - only the offset within the period matters
        stop.wait(every_seconds - now % every_seconds)
    return ticks
