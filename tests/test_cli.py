"""The `botlib` command end to end, as a user runs it (a real subprocess, a temp database)."""

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from botlib.features.window import WINDOW_BLOCK

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`

AT = "2026-11-20T12:00:00Z"


def botlib(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "botlib", *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchone()[0]


def test_cycle_in_sim_mode_records_and_never_orders_twice(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    first = botlib("--db", str(db), "cycle", "--symbol", "BTC/USD", "--at", AT, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("BTC/USD ok action=BUY orders=BTCUSD-20261120T1100-buy")
    assert count(db, "SELECT count(*) FROM cycles") == 1
    assert count(db, "SELECT count(*) FROM ai_decision_logs") == 1
    saved = count(db, "SELECT count(*) FROM market_data WHERE symbol = 'BTC/USD'")
    assert WINDOW_BLOCK < saved <= 2 * WINDOW_BLOCK  # the cycle's feature window
    assert count(db, "SELECT count(*) FROM equity_snapshots") == 1
    orders = "SELECT type, status FROM sim_orders ORDER BY created_at, type"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # the buy, and its stop at the venue
        assert conn.execute(orders).fetchall() == [("market", "filled"), ("stop_limit", "new")]
    second = botlib("--db", str(db), "cycle", "--symbol", "btc/usd", "--at", AT, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "orders=" not in second.stdout
    with contextlib.closing(sqlite3.connect(db)) as conn:  # no second buy, no second stop
        assert conn.execute(orders).fetchall() == [("market", "filled"), ("stop_limit", "new")]
    assert count(db, "SELECT count(*) FROM trades") == 1
    assert count(db, "SELECT count(*) FROM cycles") == 2
    status = botlib("--db", str(db), "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0].startswith("mode=sim equity=")
    assert "BTC/USD   active every 60m 1Hour qty=" in status.stdout


def test_tick_at_runs_the_due_assets_on_that_clock(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    env = {"BOTLIB_SYMBOLS": "BTC/USD"}
    result = botlib("--db", str(db), "tick", "--in-process", "--at", AT, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("BTC/USD ok action=BUY orders=BTCUSD-20261120T1100-buy")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        started = conn.execute("SELECT started_at FROM cycles UNION SELECT started_at FROM ticks")
        assert started.fetchall() == [("2026-11-20T12:00:00+00:00",)]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["cycle", "--symbol", "DOGE/USD"], {}, "error: unknown symbol 'DOGE/USD'; known: BTC/USD"),
        (["status"], {"BOTLIB_DB": "missing.db"}, "error: database missing.db does not exist"),
        (["tick"], {"BOTLIB_MODE": "paper"}, "error: BOTLIB_MODE=paper needs ALPACA_API_KEY"),
        (
            ["tick"],
            {"BOTLIB_ANALYST": "openai"},
            "error: BOTLIB_ANALYST=openai needs OPENAI_API_KEY",
        ),
        (["tick"], {"BOTLIB_LLM_CACHE": "always"}, "error: invalid settings: BOTLIB_LLM_CACHE"),
        (
            ["tick", "--at", AT],
            {"BOTLIB_MODE": "live"},
            "error: --at simulates the clock and cannot be used in live mode",
        ),
        (
            ["cycle", "--symbol", "BTC/USD", "--at", AT],
            {"BOTLIB_MODE": "live"},
            "error: --at simulates the clock and cannot be used in live mode",
        ),
        (["tick"], {"BOTLIB_SIM_CASH": "lots"}, "error: invalid settings: BOTLIB_SIM_CASH"),
        (["backfill", "--days", "0"], {}, "error: --days must be positive"),
        (["backtest", "--days", "1"], {}, "error: backtest needs --symbol (or --list)"),
        (
            ["backtest", "--symbol", "BTC/USD", "--analyst", "openai", "--llm-cache", "record"],
            {},
            "error: recording would call OpenAI up to 43201 times (--max-llm-calls is 500)",
        ),
        (
            ["backtest", "--symbol", "BTC/USD", "--bars-db", "nothing.db"],
            {},
            "error: database nothing.db does not exist",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = botlib(*args, cwd=tmp_path, env={"BOTLIB_DB": str(tmp_path / "b.db")} | env)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_corrupt_database_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"garbage" * 100)
    result = botlib("--db", "bad.db", "cycle", "--symbol", "BTC/USD", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: database bad.db is unreadable: file is not a database\n"


def test_json_logs_carry_cycle_and_symbol(tmp_path: Path) -> None:
    import json

    env = {"BOTLIB_LOG_JSON": "1", "OPENAI_API_KEY": "sk-canary-0000000000"}
    result = botlib(
        "--db", "b.db", "cycle", "--symbol", "SOL/USD", "--at", AT, cwd=tmp_path,
        env=env | {"BOTLIB_ANALYST": "rules"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    cycle = next(e for e in events if e["event"].startswith("cycle SOL/USD"))
    assert cycle["symbol"] == "SOL/USD"
    assert cycle["cycle_id"].startswith("20261120T120000-SOLUSD-")
    assert "sk-canary" not in result.stderr + result.stdout


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = botlib("--help", cwd=tmp_path)
    for command in ("demo", "cycle", "tick", "run", "backfill", "backtest", "serve", "status"):
        assert command in result.stdout


def test_backtest_reports_stores_and_lists_a_run(tmp_path: Path) -> None:
    args = ["backtest", "--symbol", "sol/usd", "--days", "2", "--timeframe", "15Min"]
    result = botlib(*args, "--end", AT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("backtest bt-SOLUSD-20261118T1200-")
    assert (
        "SOL/USD 15Min 2026-11-18 12:00Z .. 2026-11-20 12:00Z, rules analyst, fast path" in lines[0]
    )
    stored = Path(tmp_path, lines[-1].removeprefix("stored in "))
    assert stored.parent == tmp_path / "data" / "backtests" and stored.exists()
    closed = count(stored, "SELECT count(*) FROM backtest_trades WHERE realized_pnl IS NOT NULL")
    table = {line[:16].strip(): line[16:].strip() for line in lines[2:-1]}
    assert table["bars replayed"] == "193" and int(table["trades (closed)"]) == closed > 0
    assert len(result.stderr.splitlines()) == 1  # the run's summary, no line per replayed cycle
    listed = botlib("backtest", "--list", cwd=tmp_path)
    assert stored.stem in listed.stdout and "SOL/USD" in listed.stdout


def test_serve_accepts_a_proxys_host_names() -> None:
    from botlib.app.cli import _parser

    args = _parser().parse_args(["serve", "--hostname", "a.example", "--hostname", "b.example"])
    assert args.hostname == ["a.example", "b.example"]
    assert _parser().parse_args(["serve"]).hostname == []
