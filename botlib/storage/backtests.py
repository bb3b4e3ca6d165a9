"""A backtest's own database: its parameters, and the report tables read back later.

`botlib.backtest` replays into a NEW database per run; these functions hold the SQL it needs
(the engine path's trades and equity as the books recorded them, the LLM usage, and the report
tables `backtest_runs`, `backtest_trades`, `backtest_equity`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botlib.storage.store import Store

__all__ = [
    "record_parameters", "replayed_trades", "replayed_equity", "last_decision_error",
    "llm_usage", "save_report", "backtest_run", "backtest_rows", "LLM_USAGE",
]  # fmt: skip

LLM_USAGE = ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")
_TRADE_TYPES: dict[str, type] = {
    "backtest_id": str, "client_order_id": str, "symbol": str, "side": str, "reason": str,
    "qty": float, "price": float, "fee": float, "realized_pnl": float, "created_at": str,
}  # fmt: skip


def record_parameters(store: Store, params: dict[str, Any]) -> None:
    """Store the run's parameters beside its results (`bot_settings`, key `backtest`)."""
    record = {"key": "backtest", "value": json.dumps(params), "updated_at": params["start"]}
    with store.transaction():
        store.db.table("bot_settings").upsert(record, pk="key")


def replayed_trades(store: Store, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Return the engine path's trades (the given columns), in booking order."""
    return store.rows(f"SELECT {', '.join(columns)} FROM trades ORDER BY id")


def replayed_equity(store: Store) -> list[dict[str, Any]]:
    """Return every equity snapshot (ts, equity), in time order."""
    return store.rows("SELECT ts, equity FROM equity_snapshots ORDER BY ts, id")


def last_decision_error(store: Store) -> str | None:
    """Return the newest decision's error (a replay stops at its first cache miss)."""
    last = store.rows("SELECT error FROM ai_decision_logs ORDER BY id DESC LIMIT 1")
    return last[0]["error"] if last else None


def llm_usage(store: Store) -> dict[str, float]:
    """Sum the model's calls, tokens, cost and cache hits over the run (rules calls aside)."""
    row = store.rows(
        "SELECT count(*) AS calls, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
        " coalesce(sum(cost_usd), 0) AS cost_usd,"
        " coalesce(sum(cache = 'hit'), 0) AS cache_hits"
        " FROM ai_decision_logs WHERE analyst != 'rules'"
    )[0]
    return {k: float(row[k]) for k in LLM_USAGE}


def save_report(
    store: Store, run: dict[str, Any], trades: list[dict[str, Any]], equity: list[dict[str, Any]]
) -> None:
    """Write the report tables (one transaction: a run is stored whole or not at all)."""
    db = store.db
    with store.transaction():
        db.table("backtest_runs").insert(run, pk="id")
        db.table("backtest_trades").insert_all(trades, columns=_TRADE_TYPES, batch_size=5000)
        db.table("backtest_equity").insert_all(
            equity, columns={"backtest_id": str, "ts": str, "equity": float}, batch_size=20_000
        )


def backtest_run(store: Store) -> dict[str, Any] | None:
    """Return the run's summary row, or None when the file holds no finished run."""
    if not store.has_table("backtest_runs"):
        return None
    found = store.rows("SELECT * FROM backtest_runs")
    return found[0] if found else None


def backtest_rows(
    store: Store, trade_columns: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return a finished run's trades (the given columns) and equity curve, in stored order."""
    trades = store.rows(f"SELECT {', '.join(trade_columns)} FROM backtest_trades ORDER BY rowid")
    equity = store.rows("SELECT ts, equity FROM backtest_equity ORDER BY rowid")
    return trades, equity
