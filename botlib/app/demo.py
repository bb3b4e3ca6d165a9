"""`botlib demo`: backfill simulated history, trade in a background loop, serve the dashboard.

Demo assets use 15-minute bars and a 1-minute interval, so the dashboard moves while you watch.
Beside the tick loop runs the guard (`botlib guard`: resting stops, take-profits and gap exits
between cycles), as a trader's own setup would. Ctrl-C (or SIGTERM) stops the loop, the guard
and Voila, everything the demo started.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from botlib.app.backfill import backfill_to_now
from botlib.app.config import Settings
from botlib.app.jupyter.serve import serve_forever
from botlib.app.logs import configure_logging, quiet_console
from botlib.app.wiring import ensure_assets
from botlib.models import CycleStatus
from botlib.storage.store import Store

__all__ = ["run_demo", "DEMO_ASSET"]

log = logging.getLogger(__name__)
DEMO_ASSET = {"timeframe": "15Min", "interval_minutes": 1}


def run_demo(settings: Settings, days: float, port: int, ip: str) -> int:
    """Prepare the database, start `botlib run --loop` and `botlib guard`, serve until stopped.

    The demo always trades the simulator, even when Alpaca keys are configured. The backfill's
    line per cycle goes to the log file only (`BOTLIB_LOG_FILE`, else `demo.log` beside the
    database); the terminal shows a progress bar and a one-line summary.
    """
    settings = settings.model_copy(update={"mode": "sim"})
    log_file = settings.log_file or Path(settings.db_path).parent / "demo.log"
    configure_logging(settings.log_level, settings.log_json, log_file)
    began = time.perf_counter()
    with Store(settings.db_path) as store, quiet_console():
        ensure_assets(store, settings.symbols, **DEMO_ASSET)
        reports = backfill_to_now(settings, store, days, progress=sys.stderr.isatty())
    traded = sum(1 for r in reports if r.orders)
    failed = sum(r.status is CycleStatus.FAILED for r in reports)
    log.info(
        "backfilled %d cycles (%d with orders, %d failed) in %.0f s into %s; every cycle's"
        " line is in %s", len(reports), traded, failed, time.perf_counter() - began,
        settings.db_path, log_file,
    )  # fmt: skip
    env = os.environ | {"BOTLIB_MODE": "sim", "BOTLIB_LOG_FILE": str(log_file)}
    children = [_start(settings.db_path, ["run", "--loop"], env)]
    try:
        children.append(_start(settings.db_path, ["guard"], env))
        return serve_forever(settings.db_path, port, ip, ai_logs=True)
    finally:
        _stop(children)
        log.info("demo stopped")


def _start(db_path: Path, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `python -m botlib --db <db> <command>` in its own session (Ctrl-C reaches only us:
    we stop our children in order, each after the tick or guard pass it is in)."""
    args = [sys.executable, "-m", "botlib", "--db", str(db_path), *command]
    return subprocess.Popen(args, env=env, start_new_session=True)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Ask every child to stop (SIGTERM), then wait for each; kill one that will not."""
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
