"""Ticks that run cycles as papermill notebooks: the archive, its links, failures, retention."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from botlib.app.config import Settings, load_settings
from botlib.app.jupyter.notebook_runs import PARAMETERS, PruneCounts, archive_path, prune_runs
from botlib.app.scheduler import lock_path, tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock, iso
from botlib.storage.store import Store
from tests.conftest import CANARY_KEY, JUPYTER_DIRS, KERNEL, ROOT, T0

pytestmark = pytest.mark.notebooks

CANARIES = {
    "OPENAI_API_KEY": CANARY_KEY,
    "ALPACA_API_KEY": "AKCANARYKEY0123456789",
    "ALPACA_SECRET_KEY": "SKCANARYSECRET0123456789abcdef",
}
BROKEN = "RuntimeError: the SOL/USD feed is broken (test)"


@pytest.fixture
def kernel_env(
    tmp_path: Path, jupyter_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run kernels as a tick does: keys in the environment (canaries), Jupyter dirs in tmp."""
    for name in JUPYTER_DIRS:
        monkeypatch.setenv(name, jupyter_env[name])
    for name, value in (CANARIES | {"BOTLIB_MODE": "sim", "BOTLIB_ANALYST": "rules"}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # the kernel starts here: no developer's .env is read


def notebook_settings(tmp_path: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "db_path": tmp_path / "bot.db",
        "runs_dir": tmp_path / "runs",
        "kernel": KERNEL,
    }
    return load_settings(None, **(fields | overrides))


def with_assets(settings: Settings, *symbols: str) -> None:
    with Store(settings.db_path) as store:
        ensure_assets(store, symbols, interval_minutes=15)


def rows(settings: Settings, sql: str, params: tuple = ()) -> list[dict]:  # type: ignore[type-arg]
    with Store(settings.db_path, read_only=True) as reader:
        return reader.rows(sql, params)


def markdown(notebook: dict) -> list[str]:  # type: ignore[type-arg]
    return [
        "".join(o["data"]["text/markdown"])
        for cell in notebook["cells"]
        for o in cell.get("outputs", [])
        if "text/markdown" in o.get("data", {})
    ]


@pytest.mark.usefixtures("kernel_env")
def test_each_due_asset_runs_as_an_archived_linked_notebook_without_secrets(
    tmp_path: Path,
) -> None:
    settings = notebook_settings(tmp_path)
    with_assets(settings, "BTC/USD", "SOL/USD")
    reports = tick(settings, ManualClock(T0)) or []
    assert [(r.symbol, r.status.value) for r in reports] == [("BTC/USD", "ok"), ("SOL/USD", "ok")]
    for report in reports:
        archived = archive_path(tmp_path / "runs", report.cycle_id, T0)
        assert archived.parent.name == "2026-11-20" and archived.is_file()
        row = rows(settings, "SELECT * FROM cycles WHERE id = ?", (report.cycle_id,))[0]
        assert row["notebook_path"] == str(archived.absolute())
        assert row["started_at"] == iso(T0)  # `at` set the kernel's clock to the tick's
        notebook = json.loads(archived.read_text())
        texts = markdown(notebook)
        assert texts[0].startswith(f"## {report.symbol} ok at {iso(T0)} (cycle {report.cycle_id})")
        assert {"### Prompt", "### Decision", "### Indicators the analyst saw"} <= set(texts)
        injected = next(
            c for c in notebook["cells"] if "injected-parameters" in c["metadata"]["tags"]
        )
        source = "".join(injected["source"]).splitlines()
        assert source[0].startswith("#")
        assigned = [line.split(" = ")[0] for line in source[1:]]
        assert sorted(assigned) == sorted(PARAMETERS)
        assert set(notebook["metadata"]["papermill"]["parameters"]) == set(PARAMETERS)
    heartbeat = rows(settings, "SELECT due, ran, failed FROM ticks")
    assert heartbeat == [{"due": 2, "ran": 2, "failed": 0}]
    stored = [p.read_bytes() for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    with closing(sqlite3.connect(settings.db_path)) as conn:
        stored.append("\n".join(conn.iterdump()).encode())
    for canary in CANARIES.values():
        assert not any(canary.encode() in blob for blob in stored), canary


def broken_notebook(tmp_path: Path) -> Path:
    """The cycle notebook with a cell after the parameters that raises for SOL/USD only."""
    notebook = json.loads((ROOT / "notebooks" / "trading_cycle.ipynb").read_text())
    raising = {
        "cell_type": "code",
        "execution_count": None,
        "id": "broken-feed",
        "metadata": {},
        "outputs": [],
        "source": 'if symbol == "SOL/USD":\n'
        '    raise RuntimeError("the SOL/USD feed is broken (test)")',
    }
    notebook["cells"].insert(2, raising)
    path = tmp_path / "broken_cycle.ipynb"
    path.write_text(json.dumps(notebook))
    return path


@pytest.mark.usefixtures("kernel_env")
def test_a_failing_notebook_fails_its_cycle_only_and_alerts_after_k(tmp_path: Path) -> None:
    settings = notebook_settings(
        tmp_path, cycle_notebook=broken_notebook(tmp_path), failure_alert_after=2
    )
    with_assets(settings, "BTC/USD", "SOL/USD")
    clock = ManualClock(T0)
    first = tick(settings, clock) or []
    assert [(r.symbol, r.status.value) for r in first] == [("BTC/USD", "ok"), ("SOL/USD", "failed")]
    failed = first[1]
    archived = archive_path(tmp_path / "runs", failed.cycle_id, T0)
    cell = next(c for c in json.loads(archived.read_text())["cells"] if c["id"] == "broken-feed")
    assert cell["outputs"][-1]["ename"] == "RuntimeError"  # papermill kept the failed record
    assert failed.reason == f"cell {cell['execution_count']}: {BROKEN}"
    row = rows(settings, "SELECT * FROM cycles WHERE id = ?", (failed.cycle_id,))[0]
    assert (row["status"], row["reason"], row["error"]) == ("failed", failed.reason, "notebook")
    assert row["notebook_path"] == str(archived.absolute())
    assert rows(settings, "SELECT * FROM alerts") == []  # one failure is not a streak of 2
    clock.advance(timedelta(minutes=5))
    quiet = tick(settings, clock) or []  # a failed cycle waits for its next interval
    assert [r.status.value for r in quiet] == ["skipped", "skipped"]
    clock.advance(timedelta(minutes=10))
    second = tick(settings, clock) or []
    assert [r.status.value for r in second] == ["ok", "failed"]
    alerts = rows(settings, "SELECT kind, symbol, cycle_id, message FROM alerts")
    assert [(a["kind"], a["symbol"], a["cycle_id"]) for a in alerts] == [
        ("cycle_failures", "SOL/USD", second[1].cycle_id)
    ]
    assert BROKEN in alerts[0]["message"]
    beats = rows(settings, "SELECT due, ran, failed FROM ticks ORDER BY id")
    assert beats == [
        {"due": 2, "ran": 2, "failed": 1},
        {"due": 0, "ran": 0, "failed": 0},
        {"due": 2, "ran": 2, "failed": 1},
    ]


@pytest.mark.usefixtures("kernel_env")
def test_a_record_that_fails_after_the_cycle_keeps_the_cycles_outcome(tmp_path: Path) -> None:
    notebook = json.loads((ROOT / "notebooks" / "trading_cycle.ipynb").read_text())
    notebook["cells"][-1]["source"] = 'raise ValueError("the record cannot be shown (test)")'
    path = tmp_path / "late_failure.ipynb"
    path.write_text(json.dumps(notebook))
    settings = notebook_settings(tmp_path, cycle_notebook=path)
    with_assets(settings, "BTC/USD")
    (report,) = tick(settings, ManualClock(T0)) or []
    assert (report.status.value, report.action) == ("ok", "BUY")  # it traded: that stands
    assert report.reason.endswith(
        "; the notebook failed afterwards: cell 4: ValueError: the record cannot be shown (test)"
    )
    row = rows(settings, "SELECT * FROM cycles WHERE id = ?", (report.cycle_id,))[0]
    assert (row["status"], row["error"]) == ("ok", None)
    assert row["notebook_path"] == str(archive_path(tmp_path / "runs", report.cycle_id, T0))


@pytest.mark.usefixtures("kernel_env")
def test_a_missing_notebook_fails_the_cycle_with_a_clear_reason(tmp_path: Path) -> None:
    settings = notebook_settings(tmp_path, cycle_notebook=tmp_path / "nowhere.ipynb")
    with_assets(settings, "BTC/USD")
    (report,) = tick(settings, ManualClock(T0)) or []
    assert report.status.value == "failed"
    assert report.reason.startswith("the cycle notebook could not run: FileNotFoundError")
    row = rows(settings, "SELECT status, reason FROM cycles WHERE id = ?", (report.cycle_id,))
    assert row == [{"status": "failed", "reason": report.reason}]


# Retention: synthetic archives, no kernels ------------------------------------------------


def cycle_file(runs: Path, cycle_id: str) -> Path:
    day = datetime.strptime(cycle_id[:8], "%Y%m%d").replace(tzinfo=UTC)
    path = archive_path(runs, cycle_id, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def add_cycle(store: Store, when: datetime, status: str, traded: bool = False) -> str:
    cycle_id = f"{when:%Y%m%dT%H%M%S}-BTCUSD-{status[:2]}{int(traded)}0000"
    store.start_cycle(cycle_id, "BTC/USD", when)
    store.finish_cycle(cycle_id, when, status=status, notebook_path=f"/runs/{cycle_id}")
    if traded:
        store.record_trade(
            {"cycle_id": cycle_id, "symbol": "BTC/USD", "side": "buy",
             "client_order_id": f"order-{cycle_id}", "status": "filled"}
        )  # fmt: skip
    return cycle_id


def test_retention_keeps_traded_and_failed_for_days_the_rest_for_hours(
    tmp_path: Path, store: Store
) -> None:
    runs, now = tmp_path / "runs", T0
    kept = {
        "fresh routine": add_cycle(store, now - timedelta(hours=2), "ok"),
        "failed 30 h": add_cycle(store, now - timedelta(hours=30), "failed"),
        "traded 10 d": add_cycle(store, now - timedelta(days=10), "ok", traded=True),
    }
    gone = {
        "routine 30 h": add_cycle(store, now - timedelta(hours=30), "ok"),
        "skipped 30 h": add_cycle(store, now - timedelta(hours=31), "skipped"),
        "traded 15 d": add_cycle(store, now - timedelta(days=15), "ok", traded=True),
        "failed 15 d": add_cycle(store, now - timedelta(days=15, hours=1), "failed"),
    }
    for cycle_id in [*kept.values(), *gone.values()]:
        cycle_file(runs, cycle_id)
    young_orphan = cycle_file(runs, f"{now - timedelta(hours=1):%Y%m%dT%H%M%S}-SOLUSD-aaaaaa")
    old_orphan = cycle_file(runs, f"{now - timedelta(hours=25):%Y%m%dT%H%M%S}-SOLUSD-bbbbbb")
    unnamed = runs / "2026-11-18" / "notes.ipynb"  # no cycle time in its name: its file time
    unnamed.parent.mkdir()
    unnamed.write_text("{}")
    stamp = (now - timedelta(days=2)).timestamp()
    os.utime(unnamed, (stamp, stamp))

    counts = prune_runs(store, runs, now, keep_days=14, keep_hours=24)

    assert counts == PruneCounts(kept=4, deleted=6, orphans=2, folders=2)
    left = sorted(p.stem for p in runs.rglob("*.ipynb"))
    assert left == sorted([*kept.values(), young_orphan.stem])
    assert not old_orphan.exists() and not unnamed.exists()
    links = {r["id"]: r["notebook_path"] for r in store.rows("SELECT * FROM cycles")}
    assert all(links[c] == f"/runs/{c}" for c in kept.values())
    assert all(links[c] is None for c in gone.values())
    assert sorted(p.name for p in runs.iterdir()) == ["2026-11-10", "2026-11-19", "2026-11-20"]


def test_retention_of_nothing_is_nothing(tmp_path: Path, store: Store) -> None:
    assert prune_runs(store, tmp_path / "none", T0, 14, 24) == PruneCounts()


def test_the_tick_prunes(tmp_path: Path) -> None:
    settings = notebook_settings(tmp_path, tick_notebooks=False, runs_keep_hours=1)
    with_assets(settings, "BTC/USD")
    old = cycle_file(tmp_path / "runs", f"{T0 - timedelta(hours=2):%Y%m%dT%H%M%S}-ETHUSD-cccccc")
    assert [r.status.value for r in tick(settings, ManualClock(T0)) or []] == ["ok"]
    assert not old.exists()
    assert list((tmp_path / "runs").iterdir()) == []  # its emptied date folder went too


# The tick's own machinery: quiet ticks stay light, a killed tick's lock is free ----------


def test_a_quiet_botlib_tick_imports_no_papermill_and_leaves_a_heartbeat(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    db = tmp_path / "bot.db"
    with Store(db) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"], interval_minutes=60)
        for symbol in ("BTC/USD", "SOL/USD"):
            store.update_asset(symbol, last_cycle_at=datetime.now(UTC))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "botlib", "--db", str(db), "tick"],
        env=jupyter_env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["skipped", "skipped"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "botlib.app.scheduler" in imported  # the import log is what we think it is
    assert not imported & {"papermill", "nbclient", "jupyter_client", "ipykernel", "zmq"}
    with Store(db, read_only=True) as reader:
        beats = reader.rows("SELECT due, ran, finished_at FROM ticks")
    assert len(beats) == 1 and beats[0]["due"] == beats[0]["ran"] == 0 and beats[0]["finished_at"]


HOLD_LOCK = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])  # kept referenced: a collected FileLock releases its lock
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold it until killed
"""


def test_a_killed_ticks_lock_is_recovered(tmp_path: Path) -> None:
    settings = notebook_settings(tmp_path, tick_notebooks=False)
    with_assets(settings, "BTC/USD")
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, lock_path(settings.db_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            assert tick(settings, ManualClock(T0)) is None  # held: this tick stands aside
        finally:
            os.kill(holder.pid, signal.SIGKILL)
        assert holder.wait(10) == -signal.SIGKILL
    reports = tick(settings, ManualClock(T0))
    assert reports is not None and [r.status.value for r in reports] == ["ok"]


def test_tick_in_process_flag_archives_nothing(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "botlib", "--db", "bot.db", "tick", "--in-process"],
        env=env | {"BOTLIB_SYMBOLS": "BTC/USD"}, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("BTC/USD ok ")
    assert not (tmp_path / "runs").exists()
    with closing(sqlite3.connect(tmp_path / "bot.db")) as conn:
        assert conn.execute("SELECT notebook_path FROM cycles").fetchall() == [(None,)]


def test_one_warm_kernel_runs_every_cycle_of_a_tick_and_is_gone_after_it(
    tmp_path: Path, kernel_env: None
) -> None:
    """Three due assets, three archived notebooks, one kernel process; a dead kernel (its
    process killed between two cycles) is replaced for the next cycle; `close` ends it."""
    import psutil

    from botlib.app.jupyter.notebook_runs import NotebookRunner

    settings = notebook_settings(tmp_path, tick_notebooks=True)
    with_assets(settings, "BTC/USD", "SOL/USD", "ETH/USD")
    with Store(settings.db_path) as store:
        runner = NotebookRunner(settings, store, ManualClock(T0), T0)
        try:
            pids = []
            for symbol in ("BTC/USD", "SOL/USD"):
                assert runner.run(symbol).status.value == "ok"
                pids.append(runner.kernel().provisioner.process.pid)
            assert pids[0] == pids[1] and psutil.pid_exists(pids[0])  # the same warm kernel
            os.kill(pids[0], signal.SIGKILL)
            psutil.Process(pids[0]).wait(10)
            assert runner.run("ETH/USD").status.value == "ok"  # a new kernel for this one
            fresh = runner.kernel().provisioner.process.pid
            assert fresh != pids[0]
        finally:
            runner.close()
        assert not psutil.pid_exists(fresh) or psutil.Process(fresh).status() == "zombie"
    archived = sorted((tmp_path / "runs").glob("*/*.ipynb"))
    assert len(archived) == 3
