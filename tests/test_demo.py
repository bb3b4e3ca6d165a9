"""`botlib demo` as `make demo` runs it: backfill, loop and guard, dashboard, Ctrl-C stops all."""

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from botlib.app.jupyter.serve import wait_until_up
from tests.ui_helpers import free_port

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(proc.name))
    return found


def wait_for(condition, deadline_s: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")


def test_demo_trades_both_assets_serves_and_stops_on_ctrl_c(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    db, port, stderr = tmp_path / "demo.db", free_port(), tmp_path / "stderr.txt"
    started = time.monotonic()
    err = stderr.open("w")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "botlib",
            "--db",
            str(db),
            "demo",
            "--days",
            "2",
            "--port",
            str(port),
        ],
        env=jupyter_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", timeout=90, process=demo)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as page:
            html = page.read().decode()
        assert page.status == 200 and "botlib" in html.lower()
        assert time.monotonic() - started < 90
        with contextlib.closing(sqlite3.connect(db)) as conn:
            traded = dict(conn.execute("SELECT symbol, count(*) FROM trades GROUP BY symbol"))
            backfilled = conn.execute("SELECT count(*) FROM cycles").fetchone()[0]
        assert set(traded) == {"BTC/USD", "SOL/USD"}
        # the terminal shows a summary, not a line per backfilled cycle; the log file has them
        before, summary, _ = stderr.read_text().partition("backfilled ")
        assert summary and "botlib.core.engine" not in before, before[-2000:]
        logged = (tmp_path / "demo.log").read_text().count("botlib.core.engine ")
        assert logged >= backfilled > 100
        assert len(processes_mentioning(f"{db} run --loop")) == 1  # the scheduler loop runs
        assert len(processes_mentioning(f"{db} guard")) == 1  # and the guard beside it
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
        wait_for(lambda: not processes_mentioning(str(db)), 30, "the loop and the guard to stop")
        wait_for(lambda: not processes_mentioning(f"--Voila.port={port}"), 30, "Voila to stop")
        # each stopped in order on SIGTERM (a killed child logs nothing), before the demo ended
        log = (tmp_path / "demo.log").read_text()
        assert "loop stopped after" in log and "guard stopped after" in log
        assert log.rindex("guard stopped after") < log.rindex("demo stopped")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        err.close()
