"""`python -m tools.soak --minutes N`: run ticks back to back for N minutes; report what drifts.

A soak runs the real scheduler tick (`botlib.app.scheduler.tick`: papermill notebooks by default,
`--in-process` without Jupyter) again and again on a simulator database with `--assets` assets.
Ticks do not wait real minutes: a simulated clock advances by the assets' longest interval after
each tick, so every asset is due in every tick and ticks follow each other at once (`--every S`
spaces their starts S real seconds apart instead). It trades the simulator with the rules
analyst only: no keys, no paid calls, kernels included. `--reader` adds a thread that reads what
a dashboard refresh reads, back to back, and checks the invariants of `consistency_problems` (a
stress: it shares this process, and its interpreter lock, with the ticks).

The report: ticks, cycles ok / failed / skipped, failure reasons, "database is locked" errors
(logged or in a cycle's reason), resident memory at the start, after the first tick (imports, JIT
compilation, the first window of bars) and at the end, with the growth per 100 cycles after the
first tick; database size with its -wal file at the same points, with the growth per cycle; tick
and cycle times. `--json` prints it as one JSON object. Exit status 1 when a cycle failed, a lock
error appeared or a read found a problem; 2 on bad settings. In papermill mode each cycle's
kernel is a child process that exits after its cycle, so its memory is not in these figures.

Use a scratch database (the default is a new temp dir): the simulated clock runs ahead of real
time. Not part of the test suite (`tests/test_soak.py` runs a two-tick smoke run): `make soak`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from botlib.app.config import Settings, load_settings
from botlib.app.logs import configure_logging
from botlib.app.scheduler import tick
from botlib.clock import ManualClock, floor_time
from botlib.errors import BotlibError
from botlib.models import CycleReport, CycleStatus
from botlib.storage.store import Store
from tools.invariants import ReadResult, read_once
from tools.soak_report import SoakReport

__all__ = [
    "LOCKED",
    "SoakReport",
    "db_bytes",
    "main",
    "prepare_db",
    "run_soak",
    "soak_symbols",
]

log = logging.getLogger(f"botlib.{__name__}")  # under the botlib handler

LOCKED = "database is locked"
_KNOWN = ("BTC/USD", "ETH/USD", "SOL/USD")
_MAX_LISTED = 50  # failures and problems kept in the report (all are counted)


def soak_symbols(count: int) -> list[str]:
    """Return `count` symbols: BTC, ETH, SOL, then XAA/USD, XAB/USD, ... (priced from names).

    >>> soak_symbols(5)
    ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XAA/USD', 'XAB/USD']
    """
    made_up = [f"X{chr(65 + i // 26)}{chr(65 + i % 26)}/USD" for i in range(26 * 26)]
    if not 1 <= count <= len(_KNOWN) + len(made_up):
        raise ValueError(f"need 1 to {len(_KNOWN) + len(made_up)} assets, got {count}")
    return [*_KNOWN, *made_up][:count]


def prepare_db(path: Path | str, symbols: Sequence[str]) -> None:
    """Create (or extend) the database with these assets, deciding with the rules analyst."""
    with Store(path) as store:
        for symbol in symbols:
            store.ensure_asset(symbol, analyst="rules")


def db_bytes(path: Path | str) -> int:
    """Return the database's size on disk: the file plus its -wal (what a backup must copy)."""
    files = (Path(path), Path(f"{path}-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


# the soak itself -------------------------------------------------------------------------------
class _LockWatch(logging.Handler):
    """Count log records that mention a locked database (in the message or its traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.count += LOCKED in text.lower()


class _Reader(threading.Thread):
    """Read like a dashboard in a loop until stopped (`--reader`)."""

    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        super().__init__(name="soak-reader", daemon=True)
        self.settings, self.clock, self.stop = settings, clock, threading.Event()
        self.results: list[ReadResult] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with Store(self.settings.db_path, read_only=True) as store:
            while not self.stop.is_set():
                try:
                    self.results.append(read_once(store, self.clock.now(), self.settings))
                except Exception as exc:  # a failed read is a finding, not the reader's end
                    if len(self.errors) < _MAX_LISTED:
                        self.errors.append(f"read failed: {type(exc).__name__}: {exc}")


def _rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / (1024 * 1024)


def _count(report: SoakReport, reports: list[CycleReport]) -> None:
    for r in reports:
        if r.status is CycleStatus.OK:
            report.cycles_ok += 1
        elif r.status is CycleStatus.FAILED:
            report.cycles_failed += 1
            report.lock_errors_in_cycles += LOCKED in r.reason.lower()
            if len(report.failures) < _MAX_LISTED:
                report.failures.append(
                    {"symbol": r.symbol, "cycle_id": r.cycle_id, "reason": r.reason}
                )
        else:
            report.cycles_skipped += 1


def _tick_failed(report: SoakReport, exc: Exception) -> list[CycleReport]:
    report.tick_errors += 1
    reason = f"the tick raised {type(exc).__name__}: {exc}"
    report.lock_errors_in_cycles += LOCKED in reason.lower()
    if len(report.failures) < _MAX_LISTED:
        report.failures.append({"symbol": "-", "cycle_id": "-", "reason": reason})
    return []


def run_soak(
    settings: Settings,
    clock: ManualClock,
    minutes: float,
    *,
    max_ticks: int | None = None,
    every: float = 0.0,
    reader: bool = False,
) -> SoakReport:
    """Tick until `minutes` of real time (or `max_ticks` ticks) passed, advancing `clock`."""
    with Store(settings.db_path) as store:
        intervals = [a.interval_minutes for a in store.list_assets()]
    if not intervals:
        raise BotlibError(f"no assets in {settings.db_path}: prepare_db first")
    step = timedelta(minutes=max(intervals))
    mode = "papermill" if settings.tick_notebooks else "in-process"
    report = SoakReport(str(settings.db_path), mode, len(intervals), minutes, _text(clock.now()))
    process, watch, botlib_log = psutil.Process(), _LockWatch(), logging.getLogger("botlib")
    report.rss_start_mb, report.db_start_bytes = _rss_mb(process), db_bytes(settings.db_path)
    reading = _Reader(settings, clock) if reader else None
    botlib_log.addHandler(watch)
    begun = time.monotonic()
    try:
        if reading:
            reading.start()
        _loop(settings, clock, step, report, begun + minutes * 60, max_ticks, every)
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted: reporting what ran so far")
    finally:
        botlib_log.removeHandler(watch)
        if reading:
            reading.stop.set()
            reading.join()
    report.wall_s = time.monotonic() - begun
    report.lock_errors_logged = watch.count
    report.rss_end_mb, report.db_end_bytes = _rss_mb(process), db_bytes(settings.db_path)
    wal = Path(f"{settings.db_path}-wal")
    report.wal_end_bytes = wal.stat().st_size if wal.exists() else 0
    report.sim_end = _text(clock.now())
    if reading:
        _add_reads(report, reading)
    return report


def _loop(
    settings: Settings,
    clock: ManualClock,
    step: timedelta,
    report: SoakReport,
    deadline: float,
    max_ticks: int | None,
    every: float,
) -> None:
    process, times, pause, last_note = psutil.Process(), [], threading.Event(), time.monotonic()
    while time.monotonic() < deadline and (max_ticks is None or report.ticks < max_ticks):
        started = time.monotonic()
        try:
            reports = tick(settings, clock)
        except (BotlibError, sqlite3.Error) as exc:  # recorded; the next tick may do better
            log.warning("tick raised: %s: %s", type(exc).__name__, exc)
            reports = _tick_failed(report, exc)
        if reports is None:
            report.ticks_locked_out += 1
            pause.wait(1.0)  # another tick holds the lock: try again shortly
            continue
        times.append(time.monotonic() - started)
        report.ticks += 1
        _count(report, reports)
        if report.ticks == 1:
            report.first_tick_s, report.first_tick_cycles = times[0], report.cycles
            report.rss_warm_mb, report.db_warm_bytes = _rss_mb(process), db_bytes(settings.db_path)
        clock.advance(step)
        if time.monotonic() - last_note > 10:
            last_note = time.monotonic()
            log.info("tick %d: %d cycles, %d failed, rss %.0f MB, db %.1f MB", report.ticks,
                     report.cycles, report.cycles_failed, _rss_mb(process),
                     db_bytes(settings.db_path) / 1024 / 1024)  # fmt: skip
        pause.wait(max(0.0, every - (time.monotonic() - started)))
    later = times[1:]
    if later:
        report.tick_mean_s, report.tick_max_s = sum(later) / len(later), max(later)
        report.cycle_mean_s = sum(later) / max(1, report.cycles - report.first_tick_cycles)


def _add_reads(report: SoakReport, reading: _Reader) -> None:
    results = reading.results
    report.reads = len(results)
    report.reads_overlapping = sum(1 for r in results if r.running)
    report.read_max_s = max((r.seconds for r in results), default=0.0)
    found = [p for r in results for p in r.problems] + reading.errors
    report.read_problems = found[:_MAX_LISTED]


def _text(when: datetime) -> str:
    return when.isoformat()


def _start(store: Store, start: datetime | None) -> datetime:
    """Start at `start`, else one interval after the assets' newest cycle, else this hour."""
    if start is not None:
        return start
    assets = store.list_assets()
    later = [
        a.last_cycle_at + timedelta(minutes=a.interval_minutes)
        for a in assets
        if a.last_cycle_at is not None
    ]
    return max(later, default=floor_time(datetime.now(UTC), 60))


@contextlib.contextmanager
def _rules_everywhere() -> Iterator[None]:
    """Make the rules analyst and the simulator the kernels' defaults too, for this run only."""
    saved = {name: os.environ.get(name) for name in ("BOTLIB_MODE", "BOTLIB_ANALYST")}
    os.environ.update(BOTLIB_MODE="sim", BOTLIB_ANALYST="rules")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _count_arg(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _utc(text: str) -> datetime:
    """Parse an ISO time; one without a zone is UTC."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=_positive, required=True, help="real minutes to run")
    parser.add_argument("--ticks", type=_count_arg, help="stop after this many ticks")
    parser.add_argument("--assets", type=_count_arg, default=3, help="simulated assets (default 3)")
    parser.add_argument("--db", type=Path, help="database (default: a new temp dir, kept)")
    parser.add_argument("--in-process", action="store_true", help="cycles without papermill")
    parser.add_argument("--every", type=float, default=0.0, help="real seconds between ticks")
    parser.add_argument("--start", type=_utc, help="simulated start (UTC ISO)")
    parser.add_argument("--reader", action="store_true", help="read like a dashboard meanwhile")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--log-level", default="INFO", help="the soak's own progress log level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a soak from the command line; return 0 (passed), 1 (failed) or 2 (bad settings)."""
    args = _parser().parse_args(argv)
    configure_logging("WARNING")  # the ticks' own per-cycle lines would drown the progress
    log.setLevel(args.log_level.upper())
    db = args.db or Path(tempfile.mkdtemp(prefix="botlib-soak-")) / "soak.db"
    try:
        symbols = soak_symbols(args.assets)
        settings = load_settings(
            None, db_path=db, runs_dir=Path(db).parent / "runs", mode="sim", analyst="rules",
            tick_notebooks=not args.in_process,
        )  # fmt: skip
        prepare_db(db, symbols)
        with Store(db) as store:
            start = _start(store, args.start)
        log.info("soak: %s, %d assets, %s, simulated from %s", db, args.assets,
                 "in-process" if args.in_process else "papermill", start.isoformat())  # fmt: skip
        with _rules_everywhere():
            report = run_soak(settings, ManualClock(start), args.minutes, max_ticks=args.ticks,
                              every=args.every, reader=args.reader)  # fmt: skip
    except (BotlibError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    out = [json.dumps(report.to_dict())] if args.json else report.lines()
    sys.stdout.write("\n".join(out) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
