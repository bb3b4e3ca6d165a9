"""botlib: a Jupyter-centric AI trading bot. The packages, top layer first (each may import only
the layers below it; `make lint` checks it with import-linter):

    app/        composition root: settings, logging, wiring, scheduler, CLI, Jupyter launchers
    ui/         ipywidgets + bqplot pages (dashboard, AI-log explorer, control panel, reports)
    backtest/ | reporting/ | ops/    replays; the read side; the operator's audited controls
    analysts/ | venues/    rules and OpenAI deciders; simulator, stored bars and Alpaca
    core/       the cycle: engine, execution, exits, checks, risk gate, reconciliation
    features/   indicators (pandas-ta), ICT/SMC detectors, the anchored feature window
    storage/    SQLite: the Store, its migrations, every SQL write
    models, errors, ports, clock, redact    the vocabulary every layer shares

A notebook needs only the names below (`from botlib import Engine, load_settings, ...`); they
load on first use, so `import botlib` stays light (a quiet `botlib tick` imports no pandas-ta).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botlib.analysts.rules import RulesAnalyst
    from botlib.app.config import Settings, load_settings
    from botlib.app.cycles import run_cycles
    from botlib.app.wiring import build_engine
    from botlib.backtest import list_backtests, load_backtest, run_backtest
    from botlib.clock import ManualClock, SystemClock
    from botlib.core.engine import Engine
    from botlib.errors import BotlibError
    from botlib.models import Decision
    from botlib.reporting.ai_logs import query_logs
    from botlib.reporting.queries import dashboard_data, list_assets
    from botlib.storage.store import Store
    from botlib.venues.sim import SimBroker, SimMarket
    from botlib.venues.stored_bars import FrameMarket

_EXPORTS = {
    "BotlibError": "botlib.errors",
    "Decision": "botlib.models",
    "ManualClock": "botlib.clock",
    "SystemClock": "botlib.clock",
    "Store": "botlib.storage.store",
    "Engine": "botlib.core.engine",
    "RulesAnalyst": "botlib.analysts.rules",
    "SimMarket": "botlib.venues.sim",
    "SimBroker": "botlib.venues.sim",
    "FrameMarket": "botlib.venues.stored_bars",
    "dashboard_data": "botlib.reporting.queries",
    "list_assets": "botlib.reporting.queries",
    "query_logs": "botlib.reporting.ai_logs",
    "run_backtest": "botlib.backtest",
    "load_backtest": "botlib.backtest",
    "list_backtests": "botlib.backtest",
    "Settings": "botlib.app.config",
    "load_settings": "botlib.app.config",
    "build_engine": "botlib.app.wiring",
    "run_cycles": "botlib.app.cycles",
}
__all__ = [
    "BotlibError",
    "Decision",
    "Engine",
    "FrameMarket",
    "ManualClock",
    "RulesAnalyst",
    "Settings",
    "SimBroker",
    "SimMarket",
    "Store",
    "SystemClock",
    "build_engine",
    "dashboard_data",
    "list_assets",
    "list_backtests",
    "load_backtest",
    "load_settings",
    "query_logs",
    "run_backtest",
    "run_cycles",
]


def __getattr__(name: str) -> Any:
    """Import an exported name's module when the name is first used (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'botlib' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
