"""What the bot did over a period, for the parity audit (`botlib.arena.audit`): its cycles,
trades and the operator's actions, read from the live database in one snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botlib.storage.store import Store

__all__ = ["AuditTrail", "audit_trail"]


@dataclass(frozen=True)
class AuditTrail:
    cycles: list[dict[str, Any]]  # started_at, status, action, reason, bar_time
    trades: list[dict[str, Any]]  # the backtest's TRADE_COLUMNS
    actions: list[dict[str, Any]]  # ts, actor, action, symbol, message (successful ones)


def audit_trail(store: Store, symbol: str, start: str, end: str) -> AuditTrail:
    """The symbol's cycles started in `start`..`end` (ISO), their trades, the operator's acts."""
    with store.snapshot():
        cycles = store.rows(
            "SELECT started_at, status, action, reason, bar_time FROM cycles WHERE symbol = ?"
            " AND started_at BETWEEN ? AND ? ORDER BY started_at", [symbol, start, end],
        )  # fmt: skip
        trades = store.rows(
            "SELECT client_order_id, symbol, side, reason, qty, price, fee, realized_pnl,"
            " created_at FROM trades WHERE symbol = ? AND created_at BETWEEN ? AND ? ORDER BY id",
            [symbol, start, end],
        )  # fmt: skip
        actions = store.rows(
            "SELECT ts, actor, action, symbol, message FROM operator_actions WHERE result = 'ok'"
            " AND (symbol = ? OR symbol IS NULL) AND ts BETWEEN ? AND ? ORDER BY ts",
            [symbol, start, end],
        )  # fmt: skip
    return AuditTrail(cycles, trades, actions)
