"""The backtest notebook as a user or a sweep runs it: papermill with parameters, then an nbval
rerun that must show the same report, and nothing written into the repository's data/."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.jupyter_helpers import nbval, papermill

NOTEBOOK = ROOT / "notebooks" / "backtest.ipynb"

pytestmark = pytest.mark.notebooks


def repo_data() -> set[Path]:
    return set((ROOT / "data").rglob("*")) if (ROOT / "data").exists() else set()


def closed_trades(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        query = "SELECT count(*) FROM backtest_trades WHERE realized_pnl IS NOT NULL"
        return int(conn.execute(query).fetchone()[0])


def table_value(cell: dict, metric: str) -> float:
    """Read one metric from the metrics cell's text/plain output (`index  metric  value`)."""
    (output,) = cell["outputs"]
    text = "".join(output["data"]["text/plain"])
    (line,) = [row for row in text.splitlines() if f" {metric} " in row]
    return float(line.split()[-1])


def test_papermill_runs_the_backtest_and_nbval_reproduces_it(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    before = repo_data()
    out, db_dir = tmp_path / "backtest.ipynb", tmp_path / "backtests"
    params = {"symbol": "SOL/USD", "days": "1", "timeframe": "15Min", "db_dir": str(db_dir),
              "sweep_progress": "False"}  # a progress bar's text holds timings  # fmt: skip
    ran = papermill(NOTEBOOK, out, jupyter_env, params)
    assert ran.returncode == 0, ran.stderr[-2000:]
    (db,) = db_dir.glob("*.db")
    assert db.name.startswith("bt-SOLUSD-20261119T1200-")  # 1 day before the fixed end
    cells = {c["id"]: c for c in json.loads(out.read_text())["cells"]}
    trades = closed_trades(db)
    assert trades > 0
    assert table_value(cells["metrics"], "trades (closed)") == trades
    assert table_value(cells["metrics"], "bars replayed") == 97
    assert "bars/s" not in "".join(cells["metrics"]["outputs"][0]["data"]["text/plain"])
    (widget,) = cells["report"]["outputs"]
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    link, chart = cells["sweep"]["outputs"]  # the sweep ran on a 2-worker LocalCluster
    assert "Dask dashboard" in "".join(link["data"]["text/html"])
    assert "application/vnd.jupyter.widget-view+json" in chart["data"]
    assert len(list((db_dir / "sweep").glob("*.db"))) == 4  # one database per run

    rerun = nbval(out, jupyter_env)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "6 passed" in rerun.stdout.splitlines()[-1]
    assert len(list(db_dir.glob("*.db"))) == 2  # the rerun wrote its own database
    assert len(list((db_dir / "sweep").glob("*.db"))) == 8
    # and the comparison has teeth: a record claiming another trade count fails the rerun
    text = out.read_text()
    plain = "".join(cells["metrics"]["outputs"][0]["data"]["text/plain"])
    (shown,) = [line for line in plain.splitlines() if " trades (closed) " in line]
    value = shown.split()[-1]  # as pandas formatted it, e.g. 4.000000e+00 or 4.0
    other = str((int(value[0]) + 1) % 10) + value[1:]  # another count, the same width
    wrong = shown[: len(shown) - len(value)] + other
    assert float(value) == trades and float(other) != trades
    assert text.count(shown) == 1
    out.write_text(text.replace(shown, wrong))
    tampered = nbval(out, jupyter_env)
    assert tampered.returncode == 1
    assert "1 failed, 5 passed" in tampered.stdout.splitlines()[-1]
    assert repo_data() == before
