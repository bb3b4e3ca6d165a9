"""`notebooks/arena.ipynb` as a user runs it: papermill with parameters, an nbval rerun that shows
the same leaderboard, and a paid model that is not called until the run is confirmed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.jupyter_helpers import nbval, papermill

NOTEBOOK = ROOT / "notebooks" / "arena.ipynb"

pytestmark = pytest.mark.notebooks


def text(cell: dict) -> str:
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for o in cell["outputs"]
    )


def test_the_default_arena_runs_and_nbval_reproduces_its_leaderboard(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    out, db_dir = tmp_path / "arena.ipynb", tmp_path / "runs"
    ran = papermill(NOTEBOOK, out, jupyter_env, {"db_dir": str(db_dir)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    cells = {c["id"]: c for c in json.loads(out.read_text())["cells"]}
    assert "estimate: no model analysts: $0" in text(cells["run"])
    board = text(cells["leaderboard"])
    assert all(name in board for name in ("rules", "buy_and_hold", "flat"))
    (widget,) = cells["report"]["outputs"]
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    (folder,) = db_dir.iterdir()
    assert sorted(p.name for p in folder.glob("*.db")) == ["buy_and_hold.db", "flat.db", "rules.db"]
    rerun = nbval(out, jupyter_env)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "5 passed" in rerun.stdout.splitlines()[-1]
    assert len(list(db_dir.iterdir())) == 2  # the rerun made its own arena folder


def test_a_paid_model_is_not_called_until_the_run_is_confirmed(
    tmp_path: Path, jupyter_env: dict[str, str]
) -> None:
    with FakeOpenAI() as fake:
        config = tmp_path / "arena.toml"
        config.write_text(f"""
[analysts.paid]
kind = "llm"
model = "fake-paid"
base_url = "{fake.base_url}"
key_env = "ARENA_NOTEBOOK_KEY"
price = {{ input_per_1m = 5.0, output_per_1m = 15.0 }}
""")
        env = jupyter_env | {"ARENA_NOTEBOOK_KEY": "sk-test-notebook-not-real"}
        params = {"config": str(config), "cache": "record", "db_dir": str(tmp_path / "runs"),
                  "days": "0.25"}  # fmt: skip
        refused = papermill(NOTEBOOK, tmp_path / "refused.ipynb", env, params)
        assert refused.returncode != 0
        assert "not confirmed: set confirm=True to spend ~$" in refused.stderr
        assert fake.requests == [] and not (tmp_path / "runs").exists()
        ran = papermill(NOTEBOOK, tmp_path / "ran.ipynb", env, params | {"confirm": "True"})
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert len(fake.requests) == 25  # one decision per 15-minute cycle of 6 hours
    assert "sk-test-notebook-not-real" not in (tmp_path / "ran.ipynb").read_text()
