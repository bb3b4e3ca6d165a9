"""Concurrency with real processes: two ticks at once, and dashboard reads during writes.

Two `botlib tick --in-process` processes are released at the same instant (both wait on their
stdin, the test writes to both): one runs every due asset, the other logs that another tick is
running and exits 0. A writer process (the soak script: ticks back to back on a simulated
clock) runs while this process reads what a dashboard refresh reads, in a loop, on a read-only
store; every read is checked against the invariants of `tools.soak.consistency_problems`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from botlib.app.config import load_settings
from botlib.app.scheduler import lock_path
from botlib.storage.store import Store
from tests.conftest import ROOT, T0
from tests.ledger import tally
from tools.invariants import ReadResult, consistency_problems, read_once
from tools.soak import LOCKED, prepare_db

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")
LOSER_OUT = "another tick is running; nothing to do\n"
LOSER_LOG = "another tick is running; this one exits"

# Import what a tick needs first, so both racers are equally ready; then wait for the word.
RACER = """
import sys
import botlib.app.cli, botlib.app.scheduler, botlib.app.wiring  # noqa: F401
print("ready", flush=True)
sys.stdin.readline()
sys.exit(botlib.app.cli.main(sys.argv[1:]))
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_"))
    }
    return env | extra


def race_two_ticks(db: Path, cwd: Path) -> list[tuple[int, str, str]]:
    """Start two ticks, release both at once; return each one's (exit code, stdout, stderr)."""
    env = clean_env(BOTLIB_SYMBOLS=",".join(SYMBOLS))
    args = [sys.executable, "-c", RACER, "--db", str(db), "tick", "--in-process"]
    with contextlib.ExitStack() as stack:
        racers = []
        for _ in range(2):
            racer = stack.enter_context(
                subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
            )  # fmt: skip
            stack.callback(racer.kill)  # runs before the wait on exit: nothing is left behind
            racers.append(racer)
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=120) for racer in racers]
    return [(r.returncode, out, err) for r, (out, err) in zip(racers, outputs, strict=True)]


@pytest.mark.parametrize(
    "fresh",
    [False, True],  # a fresh database: both open it at once (Store._migrate's lock)
    ids=["existing-db", "fresh-db"],
)
def test_two_ticks_started_at_once_one_runs_the_other_exits_cleanly(
    tmp_path: Path, fresh: bool
) -> None:
    rounds = 3
    for n in range(rounds):
        db = tmp_path / f"round{n}.db"
        if not fresh:
            prepare_db(db, SYMBOLS)
        results = race_two_ticks(db, tmp_path)
        for code, _, err in results:
            assert LOCKED not in err.lower(), err[-3000:]
            assert code == 0, err[-3000:]
        outs = sorted((out for _, out, _ in results), key=lambda out: out != LOSER_OUT)
        loser, winner = outs
        assert loser == LOSER_OUT, outs
        assert [line.split()[:2] for line in winner.splitlines()] == [
            [symbol, "ok"] for symbol in SYMBOLS
        ]
        loser_err = next(err for _, out, err in results if out == LOSER_OUT)
        assert LOSER_LOG in loser_err
        with Store(db, read_only=True) as store:
            cycles = store.rows("SELECT symbol, status FROM cycles ORDER BY symbol")
            beats = store.rows("SELECT due, ran, failed, finished_at FROM ticks")
            assert consistency_problems(store) == []
        assert cycles == [{"symbol": s, "status": "ok"} for s in SYMBOLS]
        assert len(beats) == 1 and beats[0]["finished_at"] is not None
        assert (beats[0]["due"], beats[0]["ran"], beats[0]["failed"]) == (3, 3, 0)
        assert Path(lock_path(db)).exists()
    tally(cycles_run=rounds * len(SYMBOLS), duplicates_found=0)


# Readers during writes --------------------------------------------------------------------

WRITER_TICKS = 20


def writer(db: Path) -> list[str]:
    """The soak script as the writer: ticks back to back, every asset due in each."""
    return [
        sys.executable, "-m", "tools.soak", "--minutes", "5", "--ticks", str(WRITER_TICKS),
        "--assets", str(len(SYMBOLS)), "--db", str(db), "--in-process", "--json",
        "--start", T0.isoformat(),
    ]  # fmt: skip


def finished(out: str, err: str, code: int) -> dict[str, Any]:
    """Check a writer's run and return its report."""
    assert LOCKED not in err.lower(), err[-3000:]
    assert code == 0, (out, err[-3000:])
    report: dict[str, Any] = json.loads(out)
    assert report["cycles_ok"] == report["cycles"] == WRITER_TICKS * len(SYMBOLS)
    assert report["lock_errors"] == 0 and report["ticks_locked_out"] == 0
    return report


def trading_record(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What a run traded and booked (times are simulated, so two runs can be compared)."""
    queries = {
        "trades": "SELECT symbol, side, client_order_id, qty, price, realized_pnl FROM trades"
        " ORDER BY id",
        "equity": "SELECT symbol, ts, equity, cash FROM equity_snapshots ORDER BY id",
        "cycles": "SELECT symbol, started_at, status, action FROM cycles ORDER BY rowid",
    }
    with Store(db, read_only=True) as store:
        return {k: [tuple(r.values()) for r in store.rows(sql)] for k, sql in queries.items()}


IN_FLIGHT = (
    "SELECT count(*) AS n FROM trades t JOIN cycles c ON c.id = t.cycle_id"
    " WHERE c.status = 'running'"
)


def read_while_writing(db: Path, process: subprocess.Popen[str]) -> dict[str, Any]:
    """Read like a dashboard until the writer exits; return counts, timings and findings."""
    settings = load_settings(None)
    results: list[ReadResult] = []
    errors: list[str] = []
    in_flight = 0
    deadline = time.monotonic() + 240
    with Store(db, read_only=True) as store:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                results.append(read_once(store, T0, settings))
                with store.snapshot():
                    in_flight += store.rows(IN_FLIGHT)[0]["n"] > 0
            except Exception as exc:  # a reader that fails is a finding, keep reading
                errors.append(f"{type(exc).__name__}: {exc}")
    return {
        "reads": len(results),
        "mid_cycle": sum(1 for r in results if r.running),
        "trade_before_finish": in_flight,
        "max_s": max((r.seconds for r in results), default=0.0),
        "problems": [p for r in results for p in r.problems],
        "errors": errors,
    }


def test_dashboard_reads_during_writes_see_whole_cycles_and_never_block_the_writer(
    tmp_path: Path,
) -> None:
    alone, shared = tmp_path / "alone.db", tmp_path / "shared.db"
    for db in (alone, shared):
        prepare_db(db, SYMBOLS)
    env = clean_env(PYTHONPATH=str(ROOT))  # `tools` is the checkout's, not installed
    solo = subprocess.run(writer(alone), env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240, check=False)  # fmt: skip
    baseline = finished(solo.stdout, solo.stderr, solo.returncode)

    with subprocess.Popen(writer(shared), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:  # fmt: skip
        reading = read_while_writing(shared, process)
        out, err = process.communicate(timeout=240)
    contended = finished(out, err, process.returncode)

    assert reading["errors"] == []  # no read raised, "database is locked" included
    assert reading["problems"] == []  # no read saw a partial cycle or an unexplained row
    assert reading["reads"] >= 10 and reading["mid_cycle"] >= 1  # the reads overlapped writes
    assert trading_record(shared) == trading_record(alone)  # readers changed nothing
    with Store(shared, read_only=True) as store:
        assert consistency_problems(store) == []
        assert store.rows("SELECT count(*) AS n FROM reconciliations")[0]["n"] == 0
        assert store.rows("SELECT count(*) AS n FROM cycles WHERE status != 'ok'")[0]["n"] == 0
        orders = store.rows("SELECT count(*) AS n FROM trades")[0]["n"]
    assert orders > 0
    print(
        f"\nreaders during writes: {reading['reads']} reads ({reading['mid_cycle']} mid-cycle,"
        f" {reading['trade_before_finish']} saw a trade booked before its cycle finished),"
        f" slowest read {reading['max_s'] * 1000:.0f} ms; writer {WRITER_TICKS} ticks x"
        f" {len(SYMBOLS)} assets: {baseline['cycle_mean_s'] * 1000:.0f} ms per cycle alone,"
        f" {contended['cycle_mean_s'] * 1000:.0f} ms with the reader"
    )
    tally(
        cycles_run=baseline["cycles"] + contended["cycles"],
        orders_checked=orders,
        duplicates_found=0,
        rows_lost=0,
    )
