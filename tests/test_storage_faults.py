"""A full disk or a read-only database: a clear error, never half a cycle, nothing lost.

SQLite's own limits inject the faults, so they strike the real write path wherever it is:
`PRAGMA max_page_count` makes the database "full" after N more pages (the same SQLITE_FULL a
full disk gives), `PRAGMA query_only` makes every write fail as a read-only file does (these
tests run as root, for whom file permissions would not stop a write). The full-disk test moves
the limit one page at a time, so the cycle fails at each of its writes in turn; after each,
the space comes back and the next cycle must find the books whole.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from botlib.app.wiring import build_alpaca, ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.errors import StoreError
from botlib.models import CycleStatus, Decision
from botlib.ports import Analyst
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import T0
from tests.fakes.alpaca_server import FakeAlpaca
from tests.ledger import tally
from tests.test_alpaca import paper_settings
from tests.test_engine import ScriptedAnalyst, buy

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`

SYMBOL = "BTC/USD"
MAX_EXTRA_PAGES = 60  # more than one buying cycle ever needs (asserted below)


def hold(ctx: Any) -> Decision:
    return Decision.hold(ctx.symbol, "scripted hold")


@pytest.fixture
def alpaca() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as fake:
        fake.now = T0
        yield fake


def engine_on(
    store: Store, clock: ManualClock, analyst: Analyst, alpaca: FakeAlpaca | None
) -> Engine:
    if alpaca is None:
        market = SimMarket()
        return Engine(market, SimBroker(store, market, clock), analyst, store, clock=clock)
    alpaca.now = clock.now()
    market, broker = build_alpaca(paper_settings(alpaca, alpaca_fill_wait_s=0.3), store)
    return Engine(market, broker, analyst, store, clock=clock)


def warmed_db(path: Path, alpaca: FakeAlpaca | None) -> Path:
    """A database after one quiet cycle (its bars saved), repacked in the smallest pages.

    Packed 512-byte pages make nearly every further row need a new page, so the "disk" fills
    at a different write of the next cycle for each extra page allowed.
    """
    with Store(path) as store:
        ensure_assets(store, [SYMBOL])
        engine = engine_on(store, ManualClock(T0), ScriptedAnalyst(hold), alpaca)
        engine.run_cycle(SYMBOL, force=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in ("journal_mode = DELETE", "page_size = 512"):
            conn.execute(f"PRAGMA {statement}")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode = WAL")
    return path


def venue_fills(store: Store, alpaca: FakeAlpaca | None) -> dict[str, float]:
    if alpaca is not None:
        return {o["client_order_id"]: float(o["filled_qty"]) for o in alpaca.orders}
    found = store.rows("SELECT client_order_id, filled_qty FROM sim_orders")
    return {r["client_order_id"]: r["filled_qty"] for r in found}


def venue_qty(store: Store, alpaca: FakeAlpaca | None) -> float:
    if alpaca is not None:
        held = alpaca.positions.get(SYMBOL.replace("/", ""))
        return float(held["qty"]) if held else 0.0
    found = store.rows("SELECT qty FROM sim_positions WHERE symbol = ?", [SYMBOL])
    return found[0]["qty"] if found else 0.0


def assert_whole(store: Store, alpaca: FakeAlpaca | None) -> int:
    """The books after the fault and one more cycle; returns the orders checked."""
    assert store.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    assert store.rows("PRAGMA foreign_key_check") == []
    assert store.rows("SELECT id FROM cycles WHERE status = 'running'") == []
    assert store.rows("SELECT * FROM order_intents WHERE status = 'pending'") == []
    fills = venue_fills(store, alpaca)
    trades = {
        r["client_order_id"]: r["qty"]
        for r in store.rows("SELECT client_order_id, qty FROM trades")
    }
    assert trades.keys() == {cid for cid, qty in fills.items() if qty > 0}
    for cid, qty in trades.items():
        assert qty == pytest.approx(fills[cid])
    booked = store.rows("SELECT qty FROM positions WHERE symbol = ?", [SYMBOL])
    flat = 1e-6  # float dust left at the venue after a full sale
    assert (booked[0]["qty"] if booked else 0.0) == pytest.approx(
        venue_qty(store, alpaca), abs=flat
    )
    return len(fills)


def writes_of_a_buying_cycle(base: Path) -> list[tuple[str, str]]:
    """Every (table, INSERT|UPDATE|DELETE) a buying cycle performs, in order (traced)."""
    path = base.with_name("traced.db")
    shutil.copy(base, path)
    statements: list[str] = []
    with Store(path) as store:
        store.db.conn.set_trace_callback(statements.append)
        engine = engine_on(
            store, ManualClock(T0 + timedelta(minutes=1)), ScriptedAnalyst(buy), None
        )
        assert engine.run_cycle(SYMBOL, force=True).orders
        store.db.conn.set_trace_callback(None)
        tables = set(store.db.table_names())
    found: list[tuple[str, str]] = []
    for sql in statements:
        match = _WRITE.match(sql)
        write = (match["table"], match["op"].upper()) if match else None
        if write and write[0] in tables and write not in found:
            found.append(write)
    return found


_WRITE = re.compile(
    r"\s*(?P<op>INSERT|UPDATE|DELETE)(?:\s+OR\s+\w+)?(?:\s+INTO|\s+FROM)?\s+"
    r"\[?\"?(?P<table>\w+)",
    re.IGNORECASE,
)


def fail_writes(store: Store, table: str, op: str) -> None:
    """Make this connection's `op` writes to `table` fail as a full disk does (a temp trigger)."""
    store.db.execute(
        f"CREATE TEMP TRIGGER full_{table}_{op} BEFORE {op} ON main.{table}"
        " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )


def fault_then_next_cycle(
    path: Path, alpaca: FakeAlpaca | None, inject: Callable[[Store], None]
) -> tuple[str, int]:
    """Run a buying cycle under `inject`, then a healthy one; return what the first did."""
    clock = ManualClock(T0 + timedelta(minutes=1))
    with Store(path) as store:
        inject(store)
        engine = engine_on(store, clock, ScriptedAnalyst(buy), alpaca)
        try:
            report = engine.run_cycle(SYMBOL, force=True)
        except StoreError as exc:
            outcome, why = "raised", str(exc)
        else:
            failed = report.status is CycleStatus.FAILED
            outcome, why = ("recorded", report.reason) if failed else ("completed", "")
    assert outcome == "completed" or "is full: free space" in why, why
    clock.advance(timedelta(minutes=1))
    with Store(path) as store:  # the space is back: the next cycle reconciles
        next_cycle = engine_on(store, clock, ScriptedAnalyst(hold), alpaca)
        assert next_cycle.run_cycle(SYMBOL, force=True).status is CycleStatus.OK
        orders = assert_whole(store, alpaca)
        interrupted = store.rows("SELECT reason FROM cycles WHERE error = 'interrupted'")
        assert all(r["reason"].startswith("interrupted ") for r in interrupted)
    return outcome, orders


@pytest.mark.parametrize("venue", ["sim", "paper"])
def test_a_full_disk_at_each_write_of_a_buying_cycle_loses_nothing(
    tmp_path: Path, venue: str
) -> None:
    """Fail each kind of write the cycle makes, one at a time; the books stay whole."""
    writes = writes_of_a_buying_cycle(warmed_db(tmp_path / "base.db", None))
    assert ("order_intents", "INSERT") in writes and ("trades", "INSERT") in writes
    outcomes: dict[tuple[str, str], str] = {}
    orders = 0
    for n, (table, op) in enumerate(writes):
        if venue == "paper" and table.startswith("sim_"):
            continue
        with contextlib.ExitStack() as stack:
            alpaca = stack.enter_context(FakeAlpaca()) if venue == "paper" else None
            path = warmed_db(tmp_path / f"case{n}.db", alpaca)
            outcome, checked = fault_then_next_cycle(
                path, alpaca, lambda store, t=table, o=op: fail_writes(store, t, o)
            )
        outcomes[(table, op)] = outcome
        orders += checked
    assert "completed" not in outcomes.values(), outcomes  # every write was really hit
    assert {"raised", "recorded"} <= set(outcomes.values())
    tally(cycles_run=2 * len(outcomes), faults_injected=len(outcomes), orders_checked=orders,
          duplicates_found=0, rows_lost=0)  # fmt: skip


def test_sqlite_running_out_of_pages_mid_cycle_loses_nothing(tmp_path: Path) -> None:
    """The real SQLITE_FULL: the database may grow by 0, 1, 2 ... pages during the cycle."""
    base = warmed_db(tmp_path / "base.db", None)
    outcomes = []
    for extra in range(MAX_EXTRA_PAGES):
        path = tmp_path / f"pages{extra}.db"
        shutil.copy(base, path)

        def limit(store: Store, extra: int = extra) -> None:
            pages = store.rows("PRAGMA page_count")[0]["page_count"]
            store.db.execute(f"PRAGMA max_page_count = {pages + extra}")

        outcome, _ = fault_then_next_cycle(path, None, limit)
        outcomes.append(outcome)
        if outcome == "completed":
            break
    assert outcomes[-1] == "completed" and len(outcomes) > 1, outcomes
    tally(cycles_run=2 * len(outcomes), faults_injected=len(outcomes) - 1)


def counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("cycles", "ai_decision_logs", "order_intents", "trades", "sim_orders")
        }


def test_a_read_only_database_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    path = warmed_db(tmp_path / "bot.db", None)
    before = counts(path)
    with Store(path) as store:
        engine = engine_on(
            store, ManualClock(T0 + timedelta(minutes=1)), ScriptedAnalyst(buy), None
        )
        store.db.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match="read-only: make them writable"):
            engine.run_cycle(SYMBOL, force=True)
    assert counts(path) == before
    tally(faults_injected=1, cycles_run=1)
