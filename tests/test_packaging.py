"""The wheel, installed in a clean venv, works without the checkout or an extra step.

How the clean venv is made offline (no index, no internet): `python -m venv --without-pip`
from the same base interpreter, plus one `.pth` file holding the path of this run's
site-packages, so the dependencies (pandas, papermill, ipykernel, ...) import from there. A
`.pth` *line* only appends a folder to `sys.path`; the `.pth` files inside it are not run, so
the checkout's editable finder (`__editable__.botlib-*.pth`) is not installed and `botlib`
can only come from the wheel (each test checks `botlib.__file__`). The wheel is built from a
copy of the checkout (`pip wheel --no-build-isolation --no-index`, the venv's setuptools, so
nothing is written into the checkout and nothing is downloaded) and installed by the clean
venv's own interpreter running this venv's pip (`--no-deps --ignore-installed`), so its
scripts' shebangs name the clean interpreter and its data files land under the clean
`sys.prefix`: the kernel spec, and the notebooks where `botlib.app.jupyter.shipped` looks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import site
import sqlite3
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, jupyter_dirs

pytestmark = pytest.mark.slow  # builds a wheel, a venv, and runs a papermill tick

AT = "2026-11-20T12:00:00Z"
_SKIP = {".venv", ".git", "data", "runs", "build", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
_ALPACA_WARNING = "ignore:websockets.legacy is deprecated:DeprecationWarning"  # as pyproject


@dataclass(frozen=True)
class CleanVenv:
    prefix: Path
    python: Path
    wheel: Path
    env: dict[str, str]  # no BOTLIB_*/keys, Jupyter dirs in tmp, the clean venv first on PATH

    def run(
        self, *args: str | Path, cwd: Path, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run `args` in the clean environment (plus `env`); fail the test unless it exits 0."""
        result = subprocess.run(
            [str(a) for a in args], cwd=cwd, env=self.env | env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        return result


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {
        n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in _SKIP)
    }


def _build_wheel(tmp: Path) -> Path:
    source, out = tmp / "source", tmp / "dist"
    shutil.copytree(ROOT, source, ignore=_ignore)  # tools/ and tests/ too: the build drops them
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (wheel,) = out.glob("botlib-*.whl")
    return wheel


def _clean_env(tmp: Path, prefix: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_", "JUPYTER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= jupyter_dirs(tmp)
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> CleanVenv:
    tmp = tmp_path_factory.mktemp("packaging")
    wheel = _build_wheel(tmp)
    prefix = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    python = prefix / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    clean = CleanVenv(prefix, python, wheel, _clean_env(tmp, prefix))
    clean.run(
        python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
        "--quiet", wheel, cwd=tmp,
    )  # fmt: skip
    return clean


def test_the_wheel_holds_botlib_and_its_data_files_only(venv: CleanVenv) -> None:
    names = zipfile.ZipFile(venv.wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"botlib", "botlib-0.1.0.dist-info", "botlib-0.1.0.data"}
    data = sorted(n.split("/data/", 1)[1] for n in names if n.startswith("botlib-0.1.0.data/"))
    assert data == [
        "share/botlib/notebooks/ai_logs.ipynb",
        "share/botlib/notebooks/dashboard.ipynb",
        "share/botlib/notebooks/trading_cycle.ipynb",
        "share/jupyter/kernels/botlib/kernel.json",
    ]
    assert "botlib/py.typed" in names and "botlib/app/jupyter/shipped.py" in names


IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
import botlib
every = [m.name for m in pkgutil.walk_packages(botlib.__path__, "botlib.")]
names = [name for name in every if name != "botlib.__main__"]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
print(botlib.__file__)
print(len(names))
print(sorted(n for n in ("tools", "tests") if importlib.util.find_spec(n) is not None))
"""


def test_every_module_imports_from_the_wheel_with_warnings_as_errors(
    venv: CleanVenv, tmp_path: Path
) -> None:
    out = venv.run(
        venv.python, "-W", "error", "-W", _ALPACA_WARNING, "-c", IMPORT_ALL, cwd=tmp_path
    )
    where, count, dev_only = out.stdout.splitlines()
    assert Path(where).is_relative_to(venv.prefix), where  # the wheel's botlib, not the checkout's
    sources = list((ROOT / "botlib").rglob("*.py"))
    assert int(count) == len(sources) - 2  # all but botlib/__init__ and botlib/__main__
    assert dev_only == "[]"  # neither tools nor tests came with the wheel


def test_the_kernel_spec_and_notebooks_are_where_jupyter_and_botlib_look(
    venv: CleanVenv, tmp_path: Path
) -> None:
    # `jupyter kernelspec list`, run by the clean interpreter (its `jupyter-kernelspec` script
    # lives with jupyter_client in the other venv and would look under that venv's prefix)
    kernelspec = "-m", "jupyter_client.kernelspecapp", "list", "--json"
    listed = venv.run(venv.python, *kernelspec, cwd=tmp_path)
    spec = json.loads(listed.stdout)["kernelspecs"]["botlib"]
    assert Path(spec["resource_dir"]) == venv.prefix / "share" / "jupyter" / "kernels" / "botlib"
    assert spec["spec"]["argv"][0] == "python" and spec["spec"]["display_name"] == "botlib"
    probe = (
        "import sys; from jupyter_client.manager import KernelManager\n"
        "from botlib.app.jupyter import serve, notebook_runs, shipped\n"
        "print(KernelManager(kernel_name='botlib').format_kernel_cmd()[0] == sys.executable)\n"
        "print(shipped.notebook_dir())\n"
        "print(serve.NOTEBOOK, serve.AI_LOGS_NOTEBOOK, notebook_runs.CYCLE_NOTEBOOK)"
    )
    found = venv.run(venv.python, "-c", probe, cwd=tmp_path).stdout
    interpreter, folder, paths = found.splitlines()
    assert interpreter == "True"  # the bare "python" of the spec is the clean venv's interpreter
    assert Path(folder) == venv.prefix / "share" / "botlib" / "notebooks"
    notebooks = [Path(p) for p in paths.split()]
    assert [p.name for p in notebooks] == [
        "dashboard.ipynb",
        "ai_logs.ipynb",
        "trading_cycle.ipynb",
    ]
    for path in notebooks:
        assert path.parent == Path(folder)
        assert path.read_text() == (ROOT / "notebooks" / path.name).read_text()
        assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "botlib"


def test_a_botlib_tick_runs_its_cycle_notebook_in_the_clean_venv(
    venv: CleanVenv, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    botlib = venv.prefix / "bin" / "botlib"  # the wheel's script: its shebang is the clean python
    assert botlib.read_text().startswith(f"#!{venv.python}")
    args = botlib, "--db", db, "tick", "--at", AT
    tick = venv.run(*args, cwd=tmp_path, timeout=180, BOTLIB_SYMBOLS="BTC/USD")
    assert tick.stdout.startswith("BTC/USD ok action=BUY orders=BTCUSD-20261120T1100-buy"), tick
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT status, notebook_path FROM cycles").fetchall()
    ((status, notebook),) = rows
    assert status == "ok"
    archived = json.loads(Path(notebook).read_text())
    assert Path(notebook).is_relative_to(tmp_path / "runs")
    assert archived["metadata"]["papermill"]["input_path"] == str(
        venv.prefix / "share" / "botlib" / "notebooks" / "trading_cycle.ipynb"
    )
    outputs = [o for cell in archived["cells"] for o in cell.get("outputs", [])]
    assert outputs and [o for o in outputs if o["output_type"] == "error"] == []
