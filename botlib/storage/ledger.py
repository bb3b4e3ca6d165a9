"""The books: order intents, trades, positions, equity snapshots, reconciliations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botlib.clock import day_start, iso
from botlib.redact import scrub
from botlib.storage.base import StoreBase

__all__ = ["LedgerTables"]


class LedgerTables(StoreBase):
    """Write orders down before they are sent, book fills and positions, snapshot equity."""

    def record_trade(self, record: dict[str, Any]) -> int:
        """Insert a trade once per client_order_id; a repeat returns the existing row's id."""
        existing = self.trade_by_client_id(record["client_order_id"])
        if existing:
            return int(existing["id"])
        with self.transaction():
            return self.insert_row("trades", record)

    def trade_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM trades WHERE client_order_id = ?", [client_order_id])
        return found[0] if found else None

    def fee_pending_trades(self, symbol: str) -> list[dict[str, Any]]:
        """Trades booked before the venue charged their fee (Alpaca posts CFEE late)."""
        return self.rows(
            "SELECT * FROM trades WHERE symbol = ? AND fee_pending = 1 ORDER BY id", [symbol]
        )

    def correct_fee(self, trade_id: int, fee: float, realized_pnl: float | None) -> None:
        """Book the fee the venue has now charged (and a sell's P&L net of it)."""
        with self.transaction():
            self.update_row(
                "trades",
                ("id", trade_id),
                {"fee": fee, "realized_pnl": realized_pnl, "fee_pending": 0},
            )

    def add_intent(self, record: dict[str, Any]) -> None:
        """Write an order down (status pending) before it is sent; a rerun's intent replaces it."""
        with self.transaction():
            self.insert_row("order_intents", record | {"status": "pending"}, on_conflict="replace")

    def resolve_intent(self, client_order_id: str, status: str, now: datetime, detail: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE order_intents SET status = ?, resolved_at = ?, detail = ?"
                " WHERE client_order_id = ?",
                [status, iso(now), scrub(detail), client_order_id],
            )

    def pending_intents(self, symbol: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT * FROM order_intents WHERE symbol = ? AND status = 'pending'"
            " ORDER BY created_at, client_order_id",
            [symbol],
        )

    def resting_intents(self, symbol: str | None, reason: str | None) -> list[dict[str, Any]]:
        """Pending intents of orders that rest at the venue (limits, stops), oldest first.

        `symbol` None: every symbol; `reason` None: every reason (e.g. `venue_stop` only).
        """
        sql = "SELECT * FROM order_intents WHERE status = 'pending' AND order_type IN"
        sql += " ('limit', 'stop_limit')"
        params: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        if reason is not None:
            sql += " AND reason = ?"
            params.append(reason)
        return self.rows(sql + " ORDER BY created_at, client_order_id", params)

    def intent(self, client_order_id: str) -> dict[str, Any] | None:
        found = self.rows(
            "SELECT * FROM order_intents WHERE client_order_id = ?", [client_order_id]
        )
        return found[0] if found else None

    def protect_revisions(self, base: str) -> int:
        """How many protective stops were ever written down for the position `base` names."""
        rows = self.rows(
            "SELECT coalesce(max(revision), 0) AS n FROM order_intents"
            " WHERE client_order_id LIKE ? ESCAPE '\\' AND revision IS NOT NULL",
            [base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-p%"],
        )
        return int(rows[0]["n"])

    def has_reconciliation(self, kind: str, needle: str) -> bool:
        """Whether a reconciliation of `kind` already names `needle` (record a finding once)."""
        rows = self.rows(
            "SELECT 1 FROM reconciliations WHERE kind = ? AND instr(detail, ?) > 0 LIMIT 1",
            [kind, needle],
        )
        return bool(rows)

    def get_position(self, symbol: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM positions WHERE symbol = ?", [symbol])
        return found[0] if found else None

    def set_position(self, symbol: str, fields: dict[str, Any] | None) -> None:
        """Replace the bot's view of a position; None means flat."""
        with self.transaction():
            if fields is None:
                self.db.execute("DELETE FROM positions WHERE symbol = ?", [symbol])
            else:
                self.insert_row(
                    "positions", {"symbol": symbol} | fields, on_conflict="upsert:symbol"
                )

    def add_equity_snapshot(self, record: dict[str, Any]) -> None:
        with self.transaction():
            self.insert_row("equity_snapshots", record)

    def realized_pnl(self, symbol: str) -> float:
        row = self.rows(
            "SELECT coalesce(sum(realized_pnl), 0) AS pnl FROM trades WHERE symbol = ?", [symbol]
        )
        return float(row[0]["pnl"])

    def trade(self, trade_id: int) -> dict[str, Any]:
        """Return one trade row (raise IndexError when there is none)."""
        return self.rows("SELECT * FROM trades WHERE id = ?", [trade_id])[0]

    def entry_before(self, symbol: str, trade_id: int) -> dict[str, Any] | None:
        """Return the buy that opened the position closed by trade `trade_id`, if recorded."""
        found = self.rows(
            "SELECT * FROM trades WHERE symbol = ? AND side = 'buy' AND id < ?"
            " ORDER BY id DESC LIMIT 1",
            [symbol, trade_id],
        )
        return found[0] if found else None

    def cycle_orders(self, cycle_id: str) -> list[str]:
        """Return the client order ids a cycle booked, in booking order."""
        rows = self.rows(
            "SELECT client_order_id FROM trades WHERE cycle_id = ? ORDER BY id", [cycle_id]
        )
        return [r["client_order_id"] for r in rows]

    def add_reconciliation(self, record: dict[str, Any]) -> None:
        """Record one correction reconciliation made (what the DB and the broker said)."""
        with self.transaction():
            self.insert_row("reconciliations", record)

    def peak_equity(self) -> float | None:
        """Return the highest equity ever snapshotted (indexed: one seek)."""
        peak = self.rows("SELECT max(equity) AS peak FROM equity_snapshots")[0]["peak"]
        return None if peak is None else float(peak)

    def day_start_equity(self, now: datetime) -> float | None:
        """Return the equity the UTC day of `now` began with.

        That is the last snapshot before 00:00 UTC, or the day's first snapshot when the bot did
        not run before today; None when there is neither.
        """
        midnight = iso(day_start(now))
        before = self.rows(
            "SELECT equity FROM equity_snapshots WHERE ts < ? ORDER BY ts DESC, id DESC LIMIT 1",
            [midnight],
        )
        if not before:
            before = self.rows(
                "SELECT equity FROM equity_snapshots WHERE ts >= ? AND ts <= ?"
                " ORDER BY ts, id LIMIT 1",
                [midnight, iso(now)],
            )
        return float(before[0]["equity"]) if before else None
