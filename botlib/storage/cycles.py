"""The cycle's own rows: `cycles`, `ai_decision_logs`, `ai_reflections` (and notebook links)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from botlib.clock import iso, parse_time
from botlib.storage.base import StoreBase, jsonable

__all__ = ["CycleTables"]

_DECISION = "action, confidence, position_size_pct, stop_loss, take_profit, reasoning, created_at"


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))


class CycleTables(StoreBase):
    """Start, finish and fail cycles; log decisions and reflections; link archived notebooks."""

    def start_cycle(self, cycle_id: str, symbol: str, started: datetime, **fields: Any) -> None:
        row = {"id": cycle_id, "symbol": symbol, "started_at": iso(started), "status": "running"}
        with self.transaction():
            self.insert_row("cycles", row | fields)

    def finish_cycle(self, cycle_id: str, finished: datetime, **fields: Any) -> None:
        """Close a cycle's row; its texts are scrubbed (a reason can quote an echoed key)."""
        fields = {k: jsonable(v) for k, v in fields.items()}
        with self.transaction():
            self.update_row("cycles", ("id", cycle_id), fields | {"finished_at": iso(finished)})

    def fail_running_cycles(self, symbol: str, now: datetime) -> int:
        """Mark cycles left `running` by a killed process as failed, saying how far each got.

        Called before a new cycle starts (and after a cycle notebook's kernel died).
        """
        running = self.rows(
            "SELECT id FROM cycles WHERE symbol = ? AND status = 'running'", [symbol]
        )
        if not running:  # the usual case, before every cycle: no write at all
            return 0
        with self.transaction():
            for row in running:
                why = f"interrupted {self.cycle_stage(row['id'])}: the process ended mid-cycle"
                self.db.execute(
                    "UPDATE cycles SET status = 'failed', finished_at = ?,"
                    " reason = coalesce(reason, ?), error = coalesce(error, 'interrupted')"
                    " WHERE id = ?",
                    [iso(now), why, row["id"]],
                )
        return len(running)

    def cycle_stage(self, cycle_id: str) -> str:
        """Say how far a cycle got from the rows it left (for an interrupted cycle's reason)."""
        booked = self.rows("SELECT client_order_id FROM trades WHERE cycle_id = ?", [cycle_id])
        if booked:
            return "after booking " + ", ".join(r["client_order_id"] for r in booked)
        sent = self.rows("SELECT client_order_id FROM order_intents WHERE cycle_id = ?", [cycle_id])
        if sent:
            orders = ", ".join(r["client_order_id"] for r in sent)
            return f"with order {orders} in flight (reconciliation resolves it)"
        if self.rows("SELECT 1 FROM ai_decision_logs WHERE cycle_id = ? LIMIT 1", [cycle_id]):
            return "after the decision, before any order"
        return "before the decision"

    def log_decision(self, record: dict[str, Any]) -> int:
        record = {k: jsonable(v) for k, v in record.items()}
        with self.transaction():
            return self.insert_row("ai_decision_logs", record)

    def add_reflection(self, record: dict[str, Any]) -> int:
        record = {k: jsonable(v) for k, v in record.items()}
        with self.transaction():
            return self.insert_row("ai_reflections", record)

    def cycle(self, cycle_id: str) -> dict[str, Any] | None:
        """Return the cycle's row, or None when no such cycle was started."""
        found = self.rows("SELECT * FROM cycles WHERE id = ?", [cycle_id])
        return found[0] if found else None

    def cycle_count(self, symbol: str | None = None) -> int:
        """Count the cycles recorded (of one symbol, or all)."""
        where = ("symbol = ?", [symbol]) if symbol else (None, None)
        return int(self.db.table("cycles").count_where(*where))

    def last_cycle_started(self) -> datetime | None:
        """Return when the newest cycle of any asset started (a backfill continues from there)."""
        return parse_time(self.rows("SELECT max(started_at) AS t FROM cycles")[0]["t"])

    def last_finished_cycles(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        """Return the symbol's newest finished cycles (status, reason), newest first."""
        return self.rows(
            "SELECT status, reason FROM cycles WHERE symbol = ? AND status != 'running'"
            " ORDER BY started_at DESC, rowid DESC LIMIT ?",
            [symbol, limit],
        )

    def last_good_cycle_at(self, symbol: str | None) -> str | None:
        """Return when the symbol's newest cycle that did not fail started (ISO text), if any."""
        found = self.rows(
            "SELECT max(started_at) AS t FROM cycles"
            " WHERE symbol IS ? AND status NOT IN ('failed', 'running')",
            [symbol],
        )
        return found[0]["t"]

    def link_notebook(self, cycle_id: str, path: str | None) -> None:
        """Point the cycle at its archived notebook (None: the file was pruned)."""
        with self.transaction():
            self.db.execute("UPDATE cycles SET notebook_path = ? WHERE id = ?", [path, cycle_id])

    def notebook_importance(self, cycle_ids: list[str]) -> dict[str, bool]:
        """Map each known cycle id to whether it traded or failed (unknown ids are left out)."""
        found: dict[str, bool] = {}
        for chunk in _chunks(cycle_ids):
            marks = ",".join("?" * len(chunk))
            for row in self.rows(f"SELECT id, status FROM cycles WHERE id IN ({marks})", chunk):
                found[row["id"]] = row["status"] == "failed"
            traded = self.rows(
                f"SELECT DISTINCT cycle_id FROM trades WHERE cycle_id IN ({marks})", chunk
            )
            found.update((row["cycle_id"], True) for row in traded if row["cycle_id"] in found)
        return found

    def unlink_notebooks(self, cycle_ids: list[str]) -> None:
        """Forget the archived notebooks of these cycles (their files were deleted)."""
        with self.transaction():
            for chunk in _chunks(cycle_ids):
                marks = ",".join("?" * len(chunk))
                self.db.execute(
                    f"UPDATE cycles SET notebook_path = NULL WHERE id IN ({marks})", chunk
                )

    def decision_summary(self, decision_id: int | None) -> dict[str, Any] | None:
        """Return what a decision said (action, sizes, stops, reasoning), for a reflection."""
        if decision_id is None:
            return None
        found = self.rows(f"SELECT {_DECISION} FROM ai_decision_logs WHERE id = ?", [decision_id])
        return found[0] if found else None

    def last_intent(self, symbol: str, reason: str, until: str) -> dict[str, Any] | None:
        """Return the newest order of `symbol` for `reason` written down by `until` (ISO time).

        Orders the venue never took (rejected, not sent) are skipped: a reflection on a gap exit
        names the protective stop that rested when the price fell through it.
        """
        found = self.rows(
            "SELECT * FROM order_intents WHERE symbol = ? AND reason = ? AND created_at <= ?"
            " AND status NOT IN ('rejected', 'not_sent') ORDER BY created_at DESC, rowid DESC"
            " LIMIT 1",
            [symbol, reason, until],
        )
        return found[0] if found else None

    def unreflected_trades(self, symbol: str) -> list[int]:
        """Return ids of closing trades of `symbol` that have no reflection yet, oldest first."""
        rows = self.rows(
            "SELECT t.id FROM trades t LEFT JOIN ai_reflections r ON r.trade_id = t.id"
            " WHERE t.symbol = ? AND t.realized_pnl IS NOT NULL AND r.id IS NULL ORDER BY t.id",
            [symbol],
        )
        return [int(r["id"]) for r in rows]

    def llm_spend_since(self, since: datetime) -> float:
        """Return the USD spent on LLM calls (decisions and reflections) since `since`."""
        row = self.rows(
            "SELECT (SELECT coalesce(sum(cost_usd), 0) FROM ai_decision_logs WHERE created_at >= ?)"
            " + (SELECT coalesce(sum(cost_usd), 0) FROM ai_reflections WHERE created_at >= ?)"
            " AS usd",
            [iso(since), iso(since)],
        )
        return float(row[0]["usd"])
