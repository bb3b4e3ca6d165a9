"""The newest events of every kind (cycles, fills, AI decisions, risk denials, alerts, operator
actions), merged newest first: what the dashboard's activity feed shows.

One bounded query per source (LIMIT on a primary key or a time index), merged in Python. A fill
comes with its order's type, stop and limit, so the feed can say why it happened (a stop that
rested at the venue, a limit entry, a gap exit, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botlib.clock import parse_time
from botlib.storage.store import Store

__all__ = ["ActivityItem", "ActivityKind", "read_activity"]

ActivityKind = Literal["cycle", "denied", "trade", "decision", "alert", "operator"]
_RANK = {"cycle": 0, "decision": 1, "denied": 2, "trade": 3, "alert": 4, "operator": 5}
_SOURCES: dict[str, tuple[str, str]] = {
    # kind: (SQL, time column). Newest rows by primary key or a time index: never a full scan.
    "cycle": (
        "SELECT rowid AS id, started_at, symbol, status, action, reason, error, risk_verdict,"
        " risk_reason FROM cycles ORDER BY rowid DESC LIMIT ?",
        "started_at",
    ),
    "trade": (  # with its order's type and prices (the intent, by its primary key), if any
        "SELECT t.id, coalesce(t.filled_at, t.created_at) AS ts, t.symbol, t.side, t.qty, t.price,"
        " t.reason, t.status, t.realized_pnl, t.fee, i.order_type, i.stop_price, i.limit_price"
        " FROM trades AS t LEFT JOIN order_intents AS i ON i.client_order_id = t.client_order_id"
        " ORDER BY t.id DESC LIMIT ?",
        "ts",
    ),
    "decision": (
        "SELECT id, created_at, symbol, action, confidence, reasoning, error"
        " FROM ai_decision_logs ORDER BY id DESC LIMIT ?",
        "created_at",
    ),
    "alert": (
        "SELECT id, ts, symbol, severity, kind, message FROM alerts"
        " ORDER BY ts DESC, id DESC LIMIT ?",
        "ts",
    ),
    "operator": (
        "SELECT id, ts, symbol, actor, action, result, message FROM operator_actions"
        " ORDER BY ts DESC, id DESC LIMIT ?",
        "ts",
    ),
}


@dataclass(frozen=True)
class ActivityItem:
    """One line of the activity feed: when, what kind, which asset, and the source row."""

    when: datetime
    kind: ActivityKind
    symbol: str | None
    row: dict[str, Any]


def _kind(source: str, row: dict[str, Any]) -> ActivityKind:
    """Show a cycle whose BUY/SELL the risk gate refused as a denial (a HOLD is no denial)."""
    if source == "cycle" and row.get("risk_verdict") == "denied" and row.get("action") != "HOLD":
        return "denied"
    return source  # type: ignore[return-value]


def read_activity(store: Store, limit: int = 30) -> list[ActivityItem]:
    """Return the newest `limit` events of every source, merged newest first.

    One query per source with LIMIT. Risk denials are cycles rows, so they come with the
    cycles query: every cycle yields one item, hence only the newest `limit` cycles can make
    the merged top `limit`.
    """
    items: list[ActivityItem] = []
    for source, (sql, column) in _SOURCES.items():
        for row in store.rows(sql, [limit]):
            when = parse_time(row[column])
            if when is not None:
                items.append(ActivityItem(when, _kind(source, row), row.get("symbol"), row))
    items.sort(key=lambda i: (i.when, _RANK[i.kind], i.row.get("id") or 0), reverse=True)
    return items[:limit]
