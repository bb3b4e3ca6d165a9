"""Load: one tick with 20 due assets, each cycle a papermill notebook, while a dashboard reads.

The default tick mode starts one kernel per due asset, one after the other. The same 20 cycles
run in-process first (same assets, same simulated time, so the same work and the same trades):
that is the engine's own cycle time, and the rest of a notebook cycle's wall time is the
notebook's overhead (kernel start, imports in the kernel, writing the record). A separate
reader process reads what a dashboard refresh reads, back to back, for the whole tick.
Timings are printed (run with -s), never asserted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from botlib.app.config import Settings, load_settings
from botlib.app.scheduler import tick
from botlib.clock import ManualClock
from botlib.models import CycleReport
from botlib.storage.store import Store
from tests.conftest import JUPYTER_DIRS, KERNEL, ROOT, T0
from tests.ledger import tally
from tools.invariants import consistency_problems
from tools.soak import LOCKED, prepare_db, soak_symbols

pytestmark = pytest.mark.notebooks

ASSETS = soak_symbols(20)  # BTC, ETH, SOL and XAA..XAQ/USD, priced from their names
PACE = 0.25

# Reads like a dashboard until its stdin closes, then prints what it found as JSON. A pause of
# PACE seconds between reads (a real page refreshes every 3 s) leaves the kernels a core of two.
READER = """
import json, sys, threading
from datetime import datetime
from botlib.app.config import load_settings
from tools.invariants import read_once
from botlib.storage.store import Store

stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
settings, now = load_settings(None), datetime.fromisoformat(sys.argv[2])
found = {"reads": 0, "mid_cycle": 0, "max_s": 0.0, "problems": [], "errors": []}
with Store(sys.argv[1], read_only=True) as store:
    print("ready", flush=True)
    while not stop.is_set():
        try:
            result = read_once(store, now, settings)
        except Exception as exc:
            if len(found["errors"]) < 20:
                found["errors"].append(f"{type(exc).__name__}: {exc}")
            continue
        found["reads"] += 1
        found["mid_cycle"] += result.running > 0
        found["max_s"] = max(found["max_s"], result.seconds)
        found["problems"] += list(result.problems)[:20]
        stop.wait(float(sys.argv[3]))
print(json.dumps(found))
"""


@pytest.fixture
def kernel_env(
    tmp_path: Path, jupyter_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Kernels as a tick starts them: Jupyter dirs in tmp, the simulator, the rules analyst."""
    for name in JUPYTER_DIRS:
        monkeypatch.setenv(name, jupyter_env[name])
    monkeypatch.setenv("BOTLIB_MODE", "sim")
    monkeypatch.setenv("BOTLIB_ANALYST", "rules")
    monkeypatch.chdir(tmp_path)  # the kernels start here: no developer's .env is read
    return jupyter_env


class LockWatch(logging.Handler):
    """Collect botlib log lines that mention a locked database."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        if LOCKED in text.lower():
            self.lines.append(text)


@pytest.fixture
def lock_watch() -> Iterator[LockWatch]:
    watch, logger = LockWatch(), logging.getLogger("botlib")
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)


def bot(tmp_path: Path, name: str, symbols: list[str], **overrides: Any) -> Settings:
    folder = tmp_path / name
    settings = load_settings(
        None, db_path=folder / "bot.db", runs_dir=folder / "runs", kernel=KERNEL, **overrides
    )
    prepare_db(settings.db_path, symbols)
    return settings


def timed_tick(settings: Settings) -> tuple[list[CycleReport], float]:
    started = time.perf_counter()
    reports = tick(settings, ManualClock(T0))
    assert reports is not None  # nobody else holds this database's tick lock
    return reports, time.perf_counter() - started


def traded(settings: Settings) -> list[tuple[Any, ...]]:
    with Store(settings.db_path, read_only=True) as store:
        rows = store.rows(
            "SELECT symbol, side, client_order_id, qty, price FROM trades ORDER BY id"
        )
    return [tuple(r.values()) for r in rows]


def notebook_times(runs: Path) -> dict[str, float]:
    """Mean seconds per archived notebook: kernel start, the cycle's cell, the whole run."""
    starts, cells, runs_s = [], [], []
    for path in sorted(runs.rglob("*.ipynb")):
        notebook = json.loads(path.read_text())
        meta = notebook["metadata"]["papermill"]
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        first = datetime.fromisoformat(code[0]["metadata"]["papermill"]["start_time"])
        starts.append((first - datetime.fromisoformat(meta["start_time"])).total_seconds())
        cycle = next(c for c in code if "run_cycles(" in "".join(c["source"]))
        cells.append(cycle["metadata"]["papermill"]["duration"])
        runs_s.append(meta["duration"])
        assert LOCKED not in path.read_text().lower(), path  # nothing in the kernels' output
    return {
        "kernel_start": statistics.mean(starts),
        "cycle_cell": statistics.mean(cells),
        "notebook": statistics.mean(runs_s),
    }


@contextlib.contextmanager
def dashboard_reader(db: Path, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Read `db` like a dashboard in another process while the block runs; fill in findings."""
    found: dict[str, Any] = {}
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(db), T0.isoformat(), str(PACE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env | {"PYTHONPATH": str(ROOT)},  # the reader imports the checkout's `tools`
    ) as reader:  # fmt: skip
        try:
            assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
            yield found
        finally:
            out, err = reader.communicate(input="", timeout=60)  # stdin closes: it stops
        assert reader.returncode == 0, err[-3000:]
        found.update(json.loads(out))


def test_a_tick_of_20_due_notebook_cycles_finishes_while_the_dashboard_reads(
    tmp_path: Path, kernel_env: dict[str, str], lock_watch: LockWatch
) -> None:
    warm = bot(tmp_path, "warm", ["BTC/USD"], tick_notebooks=False)
    timed_tick(warm)  # imports and JIT compilation, so the next figure is the cycles' own
    in_process = bot(tmp_path, "in-process", ASSETS, tick_notebooks=False)
    engine_reports, engine_s = timed_tick(in_process)
    notebooks = bot(tmp_path, "notebooks", ASSETS)

    with dashboard_reader(notebooks.db_path, kernel_env) as reading:
        reports, wall_s = timed_tick(notebooks)

    assert [(r.symbol, r.status.value) for r in reports] == [(s, "ok") for s in sorted(ASSETS)]
    summary = [(r.symbol, r.action, r.orders) for r in reports]
    assert summary == [(r.symbol, r.action, r.orders) for r in engine_reports]
    assert traded(notebooks) == traded(in_process)  # the same cycles, decided the same way
    with Store(notebooks.db_path, read_only=True) as store:
        beats = store.rows("SELECT due, ran, failed, finished_at FROM ticks")
        cycles = store.rows("SELECT status, notebook_path FROM cycles")
        problems = consistency_problems(store)
        orders = store.db.table("trades").count
    assert len(beats) == 1 and beats[0]["finished_at"] is not None
    assert (beats[0]["due"], beats[0]["ran"], beats[0]["failed"]) == (20, 20, 0)
    assert len(cycles) == 20 and all(c["status"] == "ok" and c["notebook_path"] for c in cycles)
    assert problems == []
    assert lock_watch.lines == []
    assert reading["errors"] == [] and reading["problems"] == []
    assert reading["reads"] >= 1 and reading["mid_cycle"] >= 1  # it read while cycles ran
    times = notebook_times(notebooks.runs_dir)

    per_cycle, engine = wall_s / 20, engine_s / 20
    print(
        f"\n20-asset tick: {wall_s:.1f} s with notebooks ({per_cycle:.2f} s per cycle),"
        f" {engine_s:.2f} s in-process ({engine * 1000:.0f} ms per cycle): overhead"
        f" {per_cycle - engine:.2f} s per cycle ({(per_cycle - engine) / per_cycle:.0%} of its"
        f" wall time). Per notebook: kernel start {times['kernel_start']:.2f} s, the cycle's"
        f" cell {times['cycle_cell']:.2f} s (imports in the kernel + engine), papermill run"
        f" {times['notebook']:.2f} s. Reader: {reading['reads']} reads"
        f" ({reading['mid_cycle']} mid-cycle), slowest {reading['max_s'] * 1000:.0f} ms."
        f" Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    tally(cycles_run=1 + 20 + 20, orders_checked=orders, duplicates_found=0, rows_lost=0)
