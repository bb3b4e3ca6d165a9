"""The soak script (`python -m tools.soak`), kept from rotting by a two-tick run.

The soak itself is not in the suite (`make soak`); these runs take a few seconds in-process.
Its consistency checker is what the concurrency and load tests rely on, so it is shown to
find each kind of broken row it claims to find.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from botlib.app.config import load_settings
from botlib.clock import ManualClock, iso
from botlib.storage.store import Store
from tests.conftest import T0
from tests.ledger import tally
from tools.invariants import consistency_problems
from tools.soak import SoakReport, main, prepare_db, run_soak, soak_symbols

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`


@pytest.fixture(autouse=True)
def _restore_botlib_logger() -> Iterator[None]:
    """`main` configures the `botlib` logger as a script would; undo it for later tests."""
    logger = logging.getLogger("botlib")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    soak_log = logging.getLogger("botlib.tools.soak")
    soak_level = soak_log.level
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
    soak_log.setLevel(soak_level)


@pytest.fixture(scope="module")
def two_ticks(tmp_path_factory: pytest.TempPathFactory) -> tuple[SoakReport, Path]:
    """Two in-process ticks of two assets with a dashboard reader beside them."""
    db = tmp_path_factory.mktemp("soak") / "soak.db"
    prepare_db(db, soak_symbols(2))
    settings = load_settings(
        None, db_path=db, runs_dir=db.parent / "runs", mode="sim", analyst="rules",
        tick_notebooks=False,
    )  # fmt: skip
    return run_soak(settings, ManualClock(T0), 1.0, max_ticks=2, reader=True), db


def test_a_two_tick_soak_reports_consistent_figures(two_ticks: tuple[SoakReport, Path]) -> None:
    result, db = two_ticks
    report = json.loads(json.dumps(result.to_dict()))  # what --json prints
    assert report["passed"] is True and result.lines()[-1] == "PASS"
    assert (report["mode"], report["assets"], report["ticks"]) == ("in-process", 2, 2)
    assert report["cycles"] == report["cycles_ok"] == 2 * 2 == report["first_tick_cycles"] * 2
    assert report["cycles_failed"] == report["cycles_skipped"] == report["lock_errors"] == 0
    assert report["sim_start"] == iso(T0)
    assert report["sim_end"] == iso(T0 + timedelta(hours=2))  # 1-hour assets: +1 h per tick
    assert 0 < report["db_start_bytes"] < report["db_warm_bytes"] <= report["db_end_bytes"]
    assert 0 < report["rss_start_mb"] <= report["rss_warm_mb"]
    assert report["rss_end_mb"] > 0 and report["tick_mean_s"] > 0 and report["cycle_mean_s"] > 0
    assert report["reads"] > 0 and report["read_problems"] == []
    with closing(sqlite3.connect(db)) as conn:
        statuses = conn.execute("SELECT status, count(*) FROM cycles GROUP BY status").fetchall()
        beats = conn.execute("SELECT due, ran, failed FROM ticks ORDER BY id").fetchall()
    assert statuses == [("ok", 4)]
    assert beats == [(2, 2, 0), (2, 2, 0)]
    with Store(db, read_only=True) as store:
        assert consistency_problems(store) == []  # every order booked once, nothing missing
        orders = store.db.table("sim_orders").count
    assert orders >= 1  # the rules analyst buys BTC/USD at T0: there was something to check
    tally(cycles_run=report["cycles"], orders_checked=orders, duplicates_found=0, rows_lost=0)


def test_a_failed_cycle_makes_exit_status_1_and_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "soak.db"
    prepare_db(db, ["BTC/USD"])
    with Store(db) as store:  # an asset that wants the LLM, with no key: its cycles fail
        store.ensure_asset("ETH/USD", analyst="openai")
    args = ["--minutes", "1", "--ticks", "1", "--assets", "1", "--db", str(db), "--in-process",
            "--start", T0.isoformat(), "--json"]  # fmt: skip
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["cycles_ok"], report["cycles_failed"], report["passed"]) == (1, 1, False)
    (failure,) = report["failures"]
    assert failure["symbol"] == "ETH/USD" and "OPENAI_API_KEY" in failure["reason"]
    tally(cycles_run=2)


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--minutes", "0"], ["--minutes", "1", "--assets", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(bad)
        assert exit_.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert soak_symbols(4) == ["BTC/USD", "ETH/USD", "SOL/USD", "XAA/USD"]
    with pytest.raises(ValueError, match="need 1 to"):
        soak_symbols(1000)


def broken_copy(db: Path, tmp_path: Path, *statements: str) -> list[str]:
    copy = tmp_path / f"broken-{len(list(tmp_path.iterdir()))}.db"
    shutil.copy(db, copy)
    with closing(sqlite3.connect(copy)) as conn, conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for sql in statements:
            conn.execute(sql)
    with Store(copy, read_only=True) as store, store.snapshot():
        return consistency_problems(store)


def test_the_checker_finds_each_kind_of_broken_row(
    two_ticks: tuple[SoakReport, Path], tmp_path: Path
) -> None:
    db = two_ticks[1]
    with Store(db, read_only=True) as store:
        assert consistency_problems(store) == []
        trade = store.rows("SELECT * FROM trades ORDER BY id DESC LIMIT 1")[0]  # a BUY at T0
        cycle = store.rows("SELECT id FROM cycles WHERE status = 'ok' LIMIT 1")[0]["id"]
    cid = trade["client_order_id"]
    cases = {
        f"DELETE FROM equity_snapshots WHERE cycle_id = '{cycle}'":
            f"ok cycle without its equity snapshot: {cycle}",
        f"UPDATE cycles SET status = 'failed' WHERE id = '{cycle}'":
            "equity snapshot of a cycle that is not ok",
        f"UPDATE trades SET cycle_id = 'nowhere' WHERE id = {trade['id']}":
            f"trade of an unknown cycle: {cid}",
        f"UPDATE cycles SET decision_id = 99999 WHERE id = '{cycle}'":
            f"cycle naming an unknown decision: {cycle}",
        f"DELETE FROM trades WHERE id = {trade['id']}":
            f"filled order not booked though no cycle of its asset runs: {cid}",
        f"DELETE FROM sim_orders WHERE client_order_id = '{cid}'":
            f"simulator trade the broker never filled: {cid}",
        f"DELETE FROM positions WHERE symbol = '{trade['symbol']}'":
            f"position the asset's last trade does not explain: {trade['symbol']}",
        f"UPDATE positions SET qty = qty * 2 WHERE symbol = '{trade['symbol']}'":
            f"position differs from the simulated broker's: {trade['symbol']}",
        f"UPDATE order_intents SET status = 'pending' WHERE client_order_id = '{cid}'":
            f"pending order intent though no cycle of its asset runs: {cid}",
    }  # fmt: skip
    for sql, expected in cases.items():
        problems = broken_copy(db, tmp_path, sql)
        assert any(p.startswith(expected) for p in problems), (sql, problems)
    # the same gaps while a cycle of that asset is still running are the cycle in progress
    running = f"UPDATE cycles SET status = 'running' WHERE symbol = '{trade['symbol']}'"
    in_flight = broken_copy(db, tmp_path, running, f"DELETE FROM trades WHERE id = {trade['id']}")
    assert not any(p.startswith("filled order not booked") for p in in_flight)
    tally(faults_injected=len(cases))
