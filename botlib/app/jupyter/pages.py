"""What each notebook opens, built from settings: the dashboard, the control panel, the AI-log
explorer. The widgets (`botlib.ui`) take explicit arguments; only this layer reads settings.

The dashboard's and the explorer's kernels read only the environment (`env_file=None`): they
are served read-only by Voila and must never read a `.env` that may hold API keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botlib.app.config import load_settings
from botlib.app.wiring import build_engine
from botlib.ports import Analyst
from botlib.redact import register_secrets
from botlib.reporting.arena_board import shadow_folder
from botlib.storage.store import Store
from botlib.ui.ai_explorer import AiLogExplorer
from botlib.ui.control_panel import ControlPanel
from botlib.ui.dashboard import Dashboard

__all__ = ["dashboard", "control_panel", "ai_log_explorer"]


def dashboard(**options: Any) -> Dashboard:
    """Open the read-only dashboard on `BOTLIB_DB` (the path `botlib serve` passes to Voila).

    `BOTLIB_DASHBOARD_AI_LOGS=1` (`botlib serve --with-ai-logs`) adds the AI-log tab, shadows'
    databases beside it (`<db>.arena/`) the Arena tab; the risk
    limits are the environment's, with the operator's overrides read from the database. Only an
    explicit `BOTLIB_ANALYST` names the default analyst: this kernel has no keys, so it cannot
    tell whether the bot's default is OpenAI (a panel then names the analyst that decided last).
    """
    settings = load_settings(env_file=None)
    options.setdefault("limits", settings.limits)
    options.setdefault("default_analyst", settings.analyst)
    options.setdefault("with_ai_logs", settings.dashboard_ai_logs)
    options.setdefault("with_arena", shadow_folder(settings.db_path).exists())
    return Dashboard.from_path(settings.db_path, **options)


def ai_log_explorer(
    db: Path | str | None = None, *, what_if: bool = False, **options: Any
) -> AiLogExplorer:
    """Open the read-only AI-log explorer on `db`, else on `BOTLIB_DB` (or the default path).

    `what_if=True` (in JupyterLab, where the keys are; never under Voila) adds the What if…
    panel: the selected decision rerun by an analyst of `BOTLIB_ARENA_FILE`, cost shown first.
    """
    if not what_if:
        return AiLogExplorer.from_path(db or load_settings(env_file=None).db_path, **options)
    from botlib.app.wiring import arena_keys
    from botlib.arena.analysts import arena_analyst
    from botlib.arena.config import arena_from
    from botlib.clock import SystemClock
    from botlib.ui.arena.whatif import WhatIfPanel

    settings = load_settings()
    path = db or settings.db_path
    arena = arena_from(settings.arena_file)

    def build(name: str, spec: Any, scratch: Store) -> Analyst:
        return arena_analyst(name, spec, scratch, SystemClock(), environ=arena_keys({name: spec}),
                             budget_usd=settings.max_llm_usd_per_day)  # fmt: skip

    panel = WhatIfPanel(path, arena.analysts, build)
    return AiLogExplorer.from_path(path, what_if=panel, **options)


def control_panel(**options: Any) -> ControlPanel:
    """Open the operator's panel on the configured database, trading like the bot does.

    It reads settings and keys like the CLI (environment and `.env`): closing a position and
    the kill switch go to the configured broker; the arena file's analysts (`BOTLIB_ARENA_FILE`)
    are offered as an asset's analyst (promoting a shadow to live, audited like every change).
    """
    settings = load_settings()
    register_secrets(settings.secret_values())
    store = Store(settings.db_path)
    if settings.arena_file is not None:  # its analysts can be promoted to live
        from botlib.arena.config import load_arena

        options.setdefault("arena", list(load_arena(settings.arena_file).analysts))
    return ControlPanel(store, settings.limits, lambda: build_engine(settings, store), **options)
