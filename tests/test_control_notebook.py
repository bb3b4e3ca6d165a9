"""`notebooks/control.ipynb` as an operator opens it: papermill on a demo DB copy, then nbval."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.jupyter_helpers import nbval, papermill
from tests.ui_helpers import copy_db

NOTEBOOK = ROOT / "notebooks" / "control.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.notebooks


def outputs(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [out for cell in notebook["cells"] for out in cell.get("outputs", [])]


def test_committed_notebook_is_thin_and_says_it_writes() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    dashboard = json.loads((NOTEBOOK.parent / "dashboard.ipynb").read_text())
    assert nb["metadata"] == dashboard["metadata"]
    intro, *code = nb["cells"]
    assert intro["cell_type"] == "markdown" and "writes to the database" in "".join(intro["source"])
    assert len(code) == 1 and "panel = control_panel()" in "".join(code[0]["source"])
    assert code[0]["outputs"] == [] and code[0]["execution_count"] is None


def test_papermill_shows_the_panel_on_the_configured_db(
    tmp_path: Path, demo_db: Path, jupyter_env: dict[str, str]
) -> None:
    db = copy_db(demo_db, tmp_path / "control.db")
    out = tmp_path / "control.ipynb"
    result = papermill(NOTEBOOK, out, jupyter_env | {"BOTLIB_DB": str(db)}, {})
    assert result.returncode == 0, result.stderr[-3000:]
    nb = json.loads(out.read_text())
    assert not [o for o in outputs(nb) if o["output_type"] == "error"]
    assert not [o for o in outputs(nb) if o.get("name") == "stderr"]
    views = [o["data"] for o in outputs(nb) if WIDGET in o.get("data", {})]
    assert len(views) == 1 and "".join(views[0]["text/plain"]) == "botlib control panel"
    with closing(sqlite3.connect(db)) as conn:  # opening the panel is not an operator action
        assert conn.execute("SELECT count(*) FROM operator_actions").fetchone()[0] == 0


def test_nbval_runs_the_committed_notebook(
    tmp_path: Path, demo_db: Path, jupyter_env: dict[str, str]
) -> None:
    db = copy_db(demo_db, tmp_path / "control.db")
    notebook = tmp_path / "control.ipynb"
    notebook.write_text(NOTEBOOK.read_text())
    result = nbval(notebook, jupyter_env | {"BOTLIB_DB": str(db)})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout.splitlines()[-1]
