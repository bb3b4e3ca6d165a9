"""Ticks: run every due asset once, never two ticks at a time; and a loop for hosts without cron."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from botlib.clock import SystemClock
from botlib.config import Settings
from botlib.models import CycleReport
from botlib.ports import Clock
from botlib.store import Store
from botlib.wiring import build_engine

__all__ = ["tick", "run_loop", "lock_path"]

log = logging.getLogger(__name__)


def lock_path(db_path: Path | str) -> str:
    """Return the tick lock beside the database (an OS lock: a killed tick releases it)."""
    return f"{db_path}.tick.lock"


def tick(settings: Settings, clock: Clock | None = None) -> list[CycleReport] | None:
    """Run each due, unpaused asset once; return None when another tick holds the lock."""
    lock = FileLock(lock_path(settings.db_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        log.info("another tick is running; this one exits")
        return None
    try:
        store = Store(settings.db_path)
        try:
            engine = build_engine(settings, store, clock or SystemClock())
            return [engine.run_cycle(asset.symbol) for asset in store.list_assets()]
        finally:
            store.close()
    finally:
        lock.release()


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
