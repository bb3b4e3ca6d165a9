"""Read-only Jupyter/Voila dashboard (ipywidgets + bqplot); `notebooks/dashboard.ipynb` shows it."""

from __future__ import annotations

from botlib.ui.dashboard import AssetPanel, Dashboard

__all__ = ["Dashboard", "AssetPanel"]
