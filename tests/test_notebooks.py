"""Notebooks as users and the scheduler run them: papermill with parameters, nbval, no outputs."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KERNEL, ROOT
from tests.jupyter_helpers import nbval, papermill

NOTEBOOKS = ROOT / "notebooks"
AT = "2026-11-20T12:00:00+00:00"

pytestmark = pytest.mark.notebooks


def papermill_cycle(out: Path, env: dict[str, str], db: Path) -> subprocess.CompletedProcess:
    params = {"db": str(db), "at": AT, "force": "True"}
    return papermill(NOTEBOOKS / "trading_cycle.ipynb", out, env, params)


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs_on_the_project_kernel(notebook: Path) -> None:
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_papermill_runs_the_trading_cycle(tmp_path: Path, jupyter_env: dict[str, str]) -> None:
    out, db = tmp_path / "cycle.ipynb", tmp_path / "bot.db"
    result = papermill_cycle(out, jupyter_env, db)
    assert result.returncode == 0, result.stderr[-2000:]
    executed = json.loads(out.read_text())
    cells = {c["id"]: c for c in executed["cells"]}
    table = "".join(cells["run-cycles"]["outputs"][-1]["data"]["text/plain"])
    assert "BTC/USD" in table and "SOL/USD" in table and "BUY" in table
    outputs = [o.get("data", {}) for o in cells["record"]["outputs"]]
    record = ["".join(data["text/markdown"]) for data in outputs if "text/markdown" in data]
    headings = [text for text in record if text.startswith("#")]
    assert [h.split(" ")[1] for h in headings if h.startswith("## ")] == ["BTC/USD", "SOL/USD"]
    for part in ("Last bars", "Indicators the analyst saw", "Prompt", "Decision", "Risk verdict"):
        assert headings.count(f"### {part}") == 2, part
    injected = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"]["tags"])
    assert f'db = "{db}"' in "".join(injected["source"])
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM cycles WHERE status = 'ok'").fetchone()[0] == 2


def test_nbval_reproduces_an_executed_cycle(tmp_path: Path, jupyter_env: dict[str, str]) -> None:
    """The papermill record is the reference; a rerun from an empty DB must match it exactly."""
    out, db = tmp_path / "cycle.ipynb", tmp_path / "bot.db"
    assert papermill_cycle(out, jupyter_env, db).returncode == 0
    for leftover in tmp_path.glob("bot.db*"):
        leftover.unlink()
    result = nbval(out, jupyter_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
    # and the comparison has teeth: a reference that says SELL where the rerun says BUY fails
    # (both cells that say it: the reports table and the record)
    tampered = out.read_text().replace("BUY", "SELL")
    out.write_text(tampered)
    for leftover in tmp_path.glob("bot.db*"):
        leftover.unlink()
    failed = nbval(out, jupyter_env)
    assert failed.returncode == 1
    assert "2 failed, 2 passed" in failed.stdout.splitlines()[-1]


def test_nbval_runs_the_dashboard(
    tmp_path: Path, jupyter_env: dict[str, str], demo_db: Path
) -> None:
    notebook = tmp_path / "dashboard.ipynb"
    notebook.write_text((NOTEBOOKS / "dashboard.ipynb").read_text())
    env = jupyter_env | {"BOTLIB_DB": str(demo_db)}
    result = nbval(notebook, env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout.splitlines()[-1]
    assert os.environ.get("BOTLIB_DB") is None  # the test process itself stays clean
