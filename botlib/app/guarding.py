"""`botlib guard`: the guard's loop (`botlib.core.orders.guard`) under the tick's lock.

The guard and the tick share the books lock beside the database (never two writers deciding
about one position): while a tick runs, its own reconciliation does the guard's work, so a
guard pass that finds the lock taken skips; a tick that finds a guard pass running waits for
it (a pass is short), so the guard never costs a tick its minute. Seconds cadence from
`BOTLIB_GUARD_SECONDS`.
"""

from __future__ import annotations

import logging
import threading

from filelock import FileLock, Timeout

from botlib.app.config import Settings
from botlib.app.scheduler import books_lock_path
from botlib.app.wiring import build_guard
from botlib.clock import SystemClock
from botlib.core.orders.guard import GuardResult
from botlib.ports import Clock
from botlib.storage.store import Store

__all__ = ["guard_once", "guard_loop"]

log = logging.getLogger(__name__)


def guard_once(settings: Settings, clock: Clock | None = None) -> list[GuardResult] | None:
    """Run one guard pass; return None when a tick (or another guard) holds the lock."""
    lock = FileLock(books_lock_path(settings.db_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        log.debug("a tick holds the lock; the guard skips this pass")
        return None
    try:
        clock = clock or SystemClock()
        with Store(settings.db_path) as store:
            return build_guard(settings, store, clock).check(clock.now())
    finally:
        lock.release()


def guard_loop(settings: Settings, stop: threading.Event, seconds: float | None = None) -> int:
    """Guard every `seconds` (default: the setting) until `stop` is set; return the passes."""
    every = seconds or settings.guard_seconds
    passes = 0
    while not stop.is_set():
        try:
            for result in guard_once(settings) or []:
                if result.action or result.note:
                    log.info("guard: %s %s %s", result.symbol, result.action or "-", result.note)
        except Exception:  # a venue outage must not end the watch: try again next pass
            log.exception("guard pass failed")
        passes += 1
        stop.wait(every)
    return passes
