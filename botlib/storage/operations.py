"""The operator's and the scheduler's rows: `bot_settings`, `alerts`, `operator_actions`,
`ticks`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botlib.clock import iso
from botlib.storage.base import StoreBase

__all__ = ["OperationsTables"]


class OperationsTables(StoreBase):
    """Key-value settings, alerts and their delivery, the operator log, tick heartbeats."""

    # bot_settings: JSON values under dotted keys ("limits.max_position_pct") -----------------
    def settings_with_prefix(self, prefix: str) -> dict[str, Any]:
        """Return the stored settings under `prefix`, keys without it, values decoded."""
        rows = self.rows("SELECT key, value FROM bot_settings WHERE key LIKE ?", [prefix + "%"])
        return {row["key"][len(prefix) :]: json.loads(row["value"]) for row in rows}

    def put_settings(self, prefix: str, values: dict[str, Any], now: datetime) -> None:
        """Store `values` under `prefix` (one transaction: all of them or none)."""
        rows = [
            {"key": prefix + name, "value": json.dumps(value), "updated_at": iso(now)}
            for name, value in values.items()
        ]
        with self.transaction():
            self.db.table("bot_settings").upsert_all(rows, pk="key")

    # alerts --------------------------------------------------------------------------------
    def add_alert(self, row: dict[str, Any]) -> int:
        with self.transaction():
            return self.insert_row("alerts", row)

    def set_alert_delivery(self, alert_id: int, delivery: str) -> None:
        with self.transaction():
            self.db.table("alerts").update(alert_id, {"delivery": delivery})

    def alert_since(self, kind: str, symbol: str | None, since: str) -> bool:
        """Whether an alert of this kind and symbol was raised at or after `since` (ISO text)."""
        found = self.rows(
            "SELECT 1 FROM alerts WHERE kind = ? AND symbol IS ? AND ts >= ? LIMIT 1",
            [kind, symbol, since],
        )
        return bool(found)

    def recent_alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest alerts first (works on a read-only store from before alerts)."""
        if not self.has_table("alerts"):
            return []
        return self.rows("SELECT * FROM alerts ORDER BY ts DESC, id DESC LIMIT ?", [int(limit)])

    # operator_actions ----------------------------------------------------------------------
    def add_operator_action(self, row: dict[str, Any]) -> int:
        with self.transaction():
            return self.insert_row("operator_actions", row)

    def operator_actions(self, limit: int = 20) -> list[dict[str, Any]]:
        """Return the latest operator actions, newest first (insertion order)."""
        return self.rows("SELECT * FROM operator_actions ORDER BY id DESC LIMIT ?", [limit])

    # ticks: the scheduler's heartbeat ------------------------------------------------------
    def start_tick(self, row: dict[str, Any]) -> int:
        with self.transaction():
            return self.insert_row("ticks", row)

    def finish_tick(self, tick_id: int, fields: dict[str, Any]) -> None:
        with self.transaction():
            self.db.table("ticks").update(tick_id, fields)

    def last_tick(self) -> dict[str, Any] | None:
        """Return the newest heartbeat row, or None (works on a read-only store)."""
        if not self.has_table("ticks"):
            return None
        found = self.rows("SELECT * FROM ticks ORDER BY started_at DESC, id DESC LIMIT 1")
        return found[0] if found else None
