"""The simulator's own books (`sim_account`, `sim_orders`, `sim_positions`): the venue's side.

`botlib.venues.sim.SimBroker` keeps them like an exchange keeps an account, apart from the
bot's books (`trades`, `positions`), so reconciliation compares two independent records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botlib.clock import iso
from botlib.storage.base import StoreBase

__all__ = ["SimBooks"]

_OPEN = "'new', 'accepted', 'partially_filled'"  # a sim order rests in one of these


class SimBooks(StoreBase):
    """Cash, orders and positions of the simulated account."""

    def open_sim_account(self, cash: float, now: datetime) -> None:
        """Fund the simulated account once (an existing account keeps its cash)."""
        if not self.db.table("sim_account").count_where("id = 1"):
            with self.transaction():
                self.db.table("sim_account").insert({"id": 1, "cash": cash, "created_at": iso(now)})

    def sim_cash(self) -> float:
        return float(self.rows("SELECT cash FROM sim_account WHERE id = 1")[0]["cash"])

    def sim_positions(self) -> list[dict[str, Any]]:
        """Return the open simulated positions (symbol, qty, avg_entry_price) by symbol."""
        return self.rows("SELECT * FROM sim_positions WHERE qty > 0 ORDER BY symbol")

    def sim_order(self, client_order_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM sim_orders WHERE client_order_id = ?", [client_order_id])
        return found[0] if found else None

    def sim_order_by_id(self, order_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM sim_orders WHERE id = ?", [order_id])
        return found[0] if found else None

    def open_sim_orders(self, symbol: str | None) -> list[dict[str, Any]]:
        """Return the resting orders (all symbols when `symbol` is None), oldest first."""
        sql = f"SELECT * FROM sim_orders WHERE status IN ({_OPEN})"
        if symbol is None:
            return self.rows(sql + " ORDER BY created_at, id")
        return self.rows(sql + " AND symbol = ? ORDER BY created_at, id", [symbol])

    def sim_reserved(self, symbol: str | None, side: str) -> float:
        """What open orders hold back: a sell's coins (of `symbol`), a buy's USD (at its limit)."""
        rest = "coalesce(qty, notional / limit_price)" if side == "sell" else (
            "coalesce(notional, qty * limit_price)")  # fmt: skip
        sql = f"SELECT coalesce(sum({rest}), 0) AS held FROM sim_orders WHERE status IN ({_OPEN})"
        params: list[Any] = [side]
        sql += " AND side = ?"
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        return float(self.rows(sql, params)[0]["held"])

    def update_sim_order(self, order_id: str, fields: dict[str, Any]) -> None:
        with self.transaction():
            self.update_row("sim_orders", ("id", order_id), fields)

    def add_sim_order(self, record: dict[str, Any]) -> None:
        """Insert a simulated order (inside the caller's transaction, with its fill's books)."""
        self.insert_row("sim_orders", record)

    def set_sim_books(self, cash: float, symbol: str, qty: float, avg: float) -> None:
        """Set the account's cash and one position (dust under $0.000001 of cost closes it)."""
        self.db.execute("UPDATE sim_account SET cash = ? WHERE id = 1", [cash])
        if qty * avg < 1e-6:
            self.db.execute("DELETE FROM sim_positions WHERE symbol = ?", [symbol])
        else:
            self.insert_row(
                "sim_positions",
                {"symbol": symbol, "qty": qty, "avg_entry_price": avg},
                on_conflict="upsert:symbol",
            )
