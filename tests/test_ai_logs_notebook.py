"""`notebooks/ai_logs.ipynb` as a user runs it: papermill with a database parameter, then nbval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.jupyter_helpers import nbval, papermill
from tests.ui_helpers import copy_db

NOTEBOOK = ROOT / "notebooks" / "ai_logs.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.notebooks


def outputs(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [out for cell in notebook["cells"] for out in cell.get("outputs", [])]


@pytest.fixture
def executed(tmp_path: Path, demo_db: Path, jupyter_env: dict[str, str]) -> Path:
    """Run the notebook with papermill on a copy of the demo database; return the output file."""
    db = copy_db(demo_db, tmp_path / "logs.db")
    out = tmp_path / "ai_logs.ipynb"
    result = papermill(NOTEBOOK, out, jupyter_env, {"db": str(db)})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_committed_notebook_is_thin_and_parameterised() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    dashboard = json.loads((NOTEBOOK.parent / "dashboard.ipynb").read_text())
    assert nb["metadata"]["kernelspec"] == dashboard["metadata"]["kernelspec"]
    parameters = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1 and "db = None" in "".join(parameters[0]["source"])
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_papermill_shows_the_explorer_for_the_given_db(executed: Path, tmp_path: Path) -> None:
    nb = json.loads(executed.read_text())
    injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"]["tags"])
    assert f'db = "{tmp_path / "logs.db"}"' in "".join(injected["source"])
    assert not [out for out in outputs(nb) if out["output_type"] == "error"]
    assert not [out for out in outputs(nb) if out.get("name") == "stderr"]
    views = [out["data"] for out in outputs(nb) if WIDGET in out.get("data", {})]
    assert len(views) == 1 and "".join(views[0]["text/plain"]) == "botlib AI log explorer"
    totals = "".join(outputs(nb)[-1]["data"]["text/plain"])
    assert "rules-v1" in totals and "calls" in totals


def test_nbval_reproduces_the_executed_notebook(
    executed: Path, jupyter_env: dict[str, str]
) -> None:
    result = nbval(executed, jupyter_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
    # and the comparison has teeth: a reference with another model name fails
    executed.write_text(executed.read_text().replace("rules-v1", "rules-v9"))
    failed = nbval(executed, jupyter_env)
    assert failed.returncode == 1
    assert "1 failed" in failed.stdout.splitlines()[-1]
