"""What the package ships for Jupyter: the app's notebooks and the `botlib` kernel spec.

Both are data files (`pyproject.toml`), installed under the environment's prefix by
`pip install .`, `pip install -e .` and the wheel alike: the notebooks the app runs
(`trading_cycle.ipynb`, `dashboard.ipynb`, `ai_logs.ipynb`) in `<prefix>/share/botlib/notebooks/`,
the kernel spec in `<prefix>/share/jupyter/kernels/botlib/`, where Jupyter looks for kernels.
Its argv starts with a bare `python`, which jupyter_client replaces by the launching process's
`sys.executable` (as in ipykernel's own spec), so the kernel is this environment's interpreter.
Run from a source checkout (an editable install), the checkout's `notebooks/` wins, so an edited
notebook is the one that runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import botlib

__all__ = ["KERNEL", "SHARED_NOTEBOOKS", "kernel_hint", "notebook_dir", "notebook_path"]

KERNEL = "botlib"  # the shipped kernel spec's name (and `BOTLIB_KERNEL`'s default)
SHARED_NOTEBOOKS = Path("share") / "botlib" / "notebooks"  # below sys.prefix once installed


def notebook_dir() -> Path:
    """Return the folder of the app's notebooks: a checkout's `notebooks/`, else the prefix's.

    A checkout is a `botlib/` package whose parent holds `pyproject.toml` and `notebooks/`
    (an installed package's parent is `site-packages`, which has neither).
    """
    root = Path(botlib.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root / "notebooks"
    return Path(sys.prefix) / SHARED_NOTEBOOKS


def notebook_path(name: str) -> Path:
    """Return the app's notebook `name` (e.g. `dashboard.ipynb`) in `notebook_dir()`."""
    return notebook_dir() / name


def kernel_hint(name: str) -> str:
    """Say how to get the missing kernel `name`: botlib's ships with it, others are registered."""
    if name == KERNEL:
        kernels = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL
        return (
            f"botlib installs it as {kernels}/kernel.json: reinstall botlib in this environment"
            f" (`{sys.executable} -m pip install -e .` in the checkout, or `install .`),"
            " or set BOTLIB_KERNEL to another kernel"
        )
    return (
        f"register it with `{sys.executable} -m ipykernel install --sys-prefix --name {name}`,"
        " or set BOTLIB_KERNEL to another kernel"
    )
