"""Database schema as explicit, ordered sqlite-utils migrations (never edit one that shipped)."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

__all__ = ["migrations"]

migrations = Migrations("botlib")


@migrations()
def m001_initial(db: Database) -> None:
    """Create the seed's tables (snake_case) plus cycles and equity snapshots."""
    _assets_and_bars(db)
    _cycles(db)
    _decisions(db)
    _trades(db)
    _positions_and_results(db)


def _assets_and_bars(db: Database) -> None:
    db.table("trading_assets").create(
        {
            "symbol": str,
            "timeframe": str,
            "interval_minutes": int,
            "paused": int,
            "position_size_pct": float,
            "stop_loss_pct": float,
            "take_profit_pct": float,
            "last_cycle_at": str,
            "created_at": str,
        },
        pk="symbol",
        not_null={"timeframe", "interval_minutes", "paused"},
    )
    db.table("market_data").create(
        {
            "symbol": str,
            "timeframe": str,
            "ts": str,
            "open": float,
            "high": float,
            "low": float,
            "close": float,
            "volume": float,
        },
        pk=("symbol", "timeframe", "ts"),
    )


def _cycles(db: Database) -> None:
    db.table("cycles").create(
        {
            "id": str,
            "symbol": str,
            "mode": str,
            "analyst": str,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | ok | skipped | failed
            "reason": str,
            "error": str,
            "bar_time": str,
            "action": str,
            "exit_reason": str,
            "risk_verdict": str,  # approved | denied | none
            "risk_reason": str,
            "decision_id": int,
            "equity": float,
            "notebook_path": str,
        },
        pk="id",
        not_null={"symbol", "started_at", "status"},
    )
    db.table("cycles").create_index(["symbol", "started_at"])


def _decisions(db: Database) -> None:
    db.table("ai_decision_logs").create(
        {
            "id": int,
            "cycle_id": str,
            "symbol": str,
            "created_at": str,
            "analyst": str,
            "model": str,
            "request": str,
            "prompt": str,
            "response": str,
            "raw_response": str,
            "action": str,
            "confidence": float,
            "position_size_pct": float,
            "stop_loss": float,
            "take_profit": float,
            "reasoning": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "total_tokens": int,
            "cached_tokens": int,
            "cost_usd": float,
            "latency_ms": float,
            "error": str,
            "last_bar_time": str,
        },
        pk="id",
        foreign_keys=[("cycle_id", "cycles", "id")],
    )
    db.table("ai_decision_logs").create_index(["symbol", "created_at"])


def _trades(db: Database) -> None:
    db.table("trades").create(
        {
            "id": int,
            "cycle_id": str,
            "decision_id": int,
            "symbol": str,
            "side": str,
            "reason": str,  # signal | stop_loss | take_profit
            "client_order_id": str,
            "broker_order_id": str,
            "status": str,
            "qty": float,
            "notional": float,
            "price": float,
            "fee": float,
            "realized_pnl": float,
            "created_at": str,
            "filled_at": str,
        },
        pk="id",
        not_null={"symbol", "side", "client_order_id"},
        foreign_keys=[("cycle_id", "cycles", "id"), ("decision_id", "ai_decision_logs", "id")],
    )
    db.table("trades").create_index(["client_order_id"], unique=True)
    db.table("trades").create_index(["symbol", "created_at"])


def _positions_and_results(db: Database) -> None:
    db.table("positions").create(
        {
            "symbol": str,
            "qty": float,
            "avg_entry_price": float,
            "stop_loss": float,
            "take_profit": float,
            "opened_at": str,
            "updated_at": str,
            "entry_trade_id": int,
        },
        pk="symbol",
    )
    db.table("ai_reflections").create(
        {
            "id": int,
            "symbol": str,
            "trade_id": int,
            "created_at": str,
            "analyst": str,
            "content": str,
        },
        pk="id",
        foreign_keys=[("trade_id", "trades", "id")],
    )
    db.table("equity_snapshots").create(
        {
            "id": int,
            "ts": str,
            "cycle_id": str,
            "symbol": str,
            "equity": float,
            "cash": float,
            "asset_pnl": float,
        },
        pk="id",
    )
    db.table("equity_snapshots").create_index(["ts"])
    db.table("equity_snapshots").create_index(["symbol", "ts"])


@migrations()
def m002_sim_venue(db: Database) -> None:
    """Create the simulated venue's own books (kept apart from the bot's records, like a broker)."""
    db.table("sim_account").create({"id": int, "cash": float, "created_at": str}, pk="id")
    db.table("sim_orders").create(
        {
            "id": str,
            "client_order_id": str,
            "symbol": str,
            "side": str,
            "status": str,
            "qty": float,
            "notional": float,
            "filled_qty": float,
            "filled_avg_price": float,
            "fee": float,
            "created_at": str,
            "filled_at": str,
        },
        pk="id",
    )
    db.table("sim_orders").create_index(["client_order_id"], unique=True)
    db.table("sim_positions").create(
        {"symbol": str, "qty": float, "avg_entry_price": float}, pk="symbol"
    )


@migrations()
def m003_llm_audit(db: Database) -> None:
    """Add the LLM audit trail: call metadata, priced reflections and the replay cache."""
    decisions = db.table("ai_decision_logs")
    for column in ("called_at", "output_mode", "cache"):
        decisions.add_column(column, str)
    decisions.create_index(["created_at"])
    reflections = db.table("ai_reflections")
    for column, kind in _REFLECTION_COLUMNS.items():
        reflections.add_column(column, kind)
    reflections.create_index(["trade_id"])
    db.table("llm_cache").create(
        {"key": str, "model": str, "output_mode": str, "created_at": str, "response": str},
        pk="key",
    )


_REFLECTION_COLUMNS: dict[str, type] = {
    "cycle_id": str,
    "model": str,
    "what_worked": str,
    "what_failed": str,
    "suggestions": str,
    "prompt": str,
    "response": str,
    "raw_response": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "total_tokens": int,
    "cached_tokens": int,
    "cost_usd": float,
    "latency_ms": float,
    "error": str,
    "output_mode": str,
    "cache": str,
    "called_at": str,
}


@migrations()
def m004_reconciliations(db: Database) -> None:
    """Record every correction reconciliation makes (the broker is the truth)."""
    db.table("reconciliations").create(
        {
            "id": int,
            "ts": str,
            "cycle_id": str,
            "symbol": str,
            "kind": str,  # adopted | cleared | qty_corrected | open_order
            "db_qty": float,
            "broker_qty": float,
            "detail": str,
        },
        pk="id",
    )
    db.table("reconciliations").create_index(["symbol", "ts"])


@migrations()
def m005_operations(db: Database) -> None:
    """Add what operators and the dashboard need: alerts, operator actions, tick heartbeats,
    risk limits set from the control notebook, and a per-asset analyst choice."""
    _alerts(db)
    _operator_actions(db)
    _ticks(db)
    db.table("bot_settings").create(
        {"key": str, "value": str, "updated_at": str}, pk="key", not_null={"value"}
    )
    db.table("trading_assets").add_column("analyst", str)  # NULL: the configured default
    db.table("ai_reflections").create_index(["symbol", "id"])  # the dashboard's last reflection
    # the equity peak (drawdown halt) is read every cycle and every dashboard change: one seek
    db.table("equity_snapshots").create_index(["equity"])


def _alerts(db: Database) -> None:
    db.table("alerts").create(
        {
            "id": int,
            "ts": str,
            "kind": str,  # drawdown | daily_loss | cycle_failures | llm_budget | stale_data
            "severity": str,  # warning | critical
            "symbol": str,  # NULL for account-wide alerts
            "message": str,
            "cycle_id": str,
            "delivery": str,  # NULL (no webhook) | sent | failed: <reason>
        },
        pk="id",
        not_null={"ts", "kind", "severity", "message"},
    )
    db.table("alerts").create_index(["ts"])
    db.table("alerts").create_index(["kind", "symbol", "ts"])


def _operator_actions(db: Database) -> None:
    db.table("operator_actions").create(
        {
            "id": int,
            "ts": str,
            "actor": str,
            "action": str,  # pause | resume | interval | position_size | stops | analyst | ...
            "symbol": str,
            "params": str,  # JSON
            "result": str,  # ok | rejected
            "message": str,
        },
        pk="id",
        not_null={"ts", "action", "result"},
    )
    db.table("operator_actions").create_index(["ts"])


def _ticks(db: Database) -> None:
    db.table("ticks").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "due": int,
            "ran": int,
            "failed": int,
            "next_at": str,
            "pid": int,
        },
        pk="id",
        not_null={"started_at"},
    )
    db.table("ticks").create_index(["started_at"])


@migrations()
def m006_order_intents(db: Database) -> None:
    """Write every order down before the broker hears of it (a write-ahead log of orders): a
    process killed between the broker's answer and the booking leaves a `pending` intent, and
    the next reconciliation books the fill with its cycle, decision, stops and P&L, or marks it
    `not_sent`."""
    db.table("order_intents").create(
        {
            "client_order_id": str,
            "cycle_id": str,
            "decision_id": int,
            "symbol": str,
            "side": str,
            "qty": float,
            "notional": float,
            "reason": str,  # signal | stop_loss | take_profit | manual ...
            "stop_loss": float,
            "take_profit": float,
            "entry_price": float,  # a sell's position average entry: its P&L's base
            "status": str,  # pending | filled | rejected | unfilled | not_sent
            "detail": str,
            "created_at": str,
            "resolved_at": str,
        },
        pk="client_order_id",
        not_null={"symbol", "side", "status", "created_at"},
        foreign_keys=[("cycle_id", "cycles", "id"), ("decision_id", "ai_decision_logs", "id")],
    )
    db.table("order_intents").create_index(["symbol", "status"])


@migrations()
def m007_resting_orders(db: Database) -> None:
    """Orders that rest at the venue (protective stop_limit sells, limit entries): an intent
    says its kind, prices, expiry (a stop: the entry it protects, its revision); it stays
    `pending` while it rests, is booked when it fills or closed `canceled` / `expired`. The
    simulated venue keeps the same, and the minute it has matched up to (`checked_to`)."""
    columns: dict[str, list[tuple[str, type]]] = {
        "order_intents": [("order_type", str), ("limit_price", float), ("stop_price", float),
                          ("expires_at", str), ("entry_trade_id", int), ("revision", int)],
        "sim_orders": [("type", str), ("limit_price", float), ("stop_price", float),
                       ("triggered", int), ("checked_to", str), ("canceled_at", str)],
        "ai_decision_logs": [("order_type", str), ("limit_price", float)],
        "trades": [("fee_pending", int)],  # 1: booked before the venue charged its fee
    }  # fmt: skip
    for table, added in columns.items():
        for name, kind in added:
            db.table(table).add_column(name, kind)
    db.table("sim_orders").create_index(["status"])


# Later migrations live in `schema_later` (this module would pass 400 lines); importing it here
# registers them after the ones above, in order.
from botlib.storage import schema_later  # noqa: E402, F401
