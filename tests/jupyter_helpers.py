"""Run notebooks the way users and the scheduler do: papermill with parameters, nbval reruns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import KERNEL

SANITIZE = Path(__file__).parent / "data" / "nbval_sanitize.cfg"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def papermill(
    notebook: Path, out: Path, env: dict[str, str], params: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Execute `notebook` into `out` on the project kernel with `-p name value` parameters."""
    args = [sys.executable, "-m", "papermill", "-k", KERNEL, str(notebook), str(out)]
    for name, value in params.items():
        args += ["-p", name, value]
    return run(args, env, out.parent)


def nbval(notebook: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Rerun an executed notebook and compare every output with the recorded one."""
    return run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval",
            "--nbval-kernel-name", KERNEL, "--nbval-sanitize-with", str(SANITIZE),
            "--nbval-cell-timeout", "120", "-o", "addopts=", "-W", "ignore", str(notebook),
        ],
        env,
        notebook.parent,
    )  # fmt: skip
