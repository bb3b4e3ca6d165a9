"""Backtests: history replayed through the engine that trades, into a database per run.

`run_backtest` picks the path: the engine path (`engine_path`: the real `Engine` cycle by
cycle, any analyst) or the exact fast path (`fast_path`: rules only, features once per anchored
window). `results` holds the report type and its tables; `load_backtest` and `list_backtests`
read stored runs back.
"""

from botlib.backtest.results import (
    BACKTEST_DIR,
    TRADE_COLUMNS,
    BacktestResult,
    list_backtests,
    load_backtest,
)
from botlib.backtest.run import (
    LLM_CACHE_DB,
    Sizing,
    default_window,
    new_backtest_id,
    run_backtest,
)

__all__ = [
    "BACKTEST_DIR",
    "LLM_CACHE_DB",
    "TRADE_COLUMNS",
    "BacktestResult",
    "Sizing",
    "default_window",
    "list_backtests",
    "load_backtest",
    "new_backtest_id",
    "run_backtest",
]
