"""Invariants of the books that hold at any moment, even mid-cycle, and a checked dashboard read.

The soak script, the concurrency and load tests read with these while cycles are written: a
reader in one WAL snapshot must never see an ok cycle without its snapshot, a fill without its
position, an order the books lost, or a duplicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from botlib.app.config import Settings
from botlib.ops.limits import load_limits
from botlib.reporting.monitoring import AccountHeader, read_account, read_performance
from botlib.reporting.queries import DashboardData, dashboard_data
from botlib.storage.store import Store

__all__ = ["ReadResult", "consistency_problems", "panel_problems", "read_once"]


# invariants a reader checks ------------------------------------------------------------------
# (problem, tables it needs, query returning the offending keys). A cycle's rows are committed in
# steps (cycle row `running`, decision, order intent, the broker's books, trade + position +
# intent, equity snapshot + `ok`), so some are only required once no cycle of the asset runs.
_CHECKS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("ok cycle without its equity snapshot", ("equity_snapshots",),
     "SELECT c.id FROM cycles c LEFT JOIN equity_snapshots e ON e.cycle_id = c.id"
     " WHERE c.status = 'ok' AND e.id IS NULL"),
    ("equity snapshot of a cycle that is not ok", ("equity_snapshots",),
     "SELECT e.id FROM equity_snapshots e LEFT JOIN cycles c ON c.id = e.cycle_id"
     " WHERE e.cycle_id IS NOT NULL AND c.status IS NOT 'ok'"),
    ("cycle with two equity snapshots", ("equity_snapshots",),
     "SELECT cycle_id FROM equity_snapshots WHERE cycle_id IS NOT NULL"
     " GROUP BY cycle_id HAVING count(*) > 1"),
    ("trade of an unknown cycle", ("trades",),
     "SELECT t.client_order_id FROM trades t LEFT JOIN cycles c ON c.id = t.cycle_id"
     " WHERE t.cycle_id IS NOT NULL AND c.id IS NULL"),
    ("decision of an unknown cycle", ("ai_decision_logs",),
     "SELECT d.id FROM ai_decision_logs d LEFT JOIN cycles c ON c.id = d.cycle_id"
     " WHERE d.cycle_id IS NOT NULL AND c.id IS NULL"),
    ("cycle naming an unknown decision", ("ai_decision_logs",),
     "SELECT c.id FROM cycles c LEFT JOIN ai_decision_logs d ON d.id = c.decision_id"
     " WHERE c.decision_id IS NOT NULL AND d.id IS NULL"),
    ("duplicate trade", ("trades",),
     "SELECT client_order_id FROM trades GROUP BY client_order_id HAVING count(*) > 1"),
    ("duplicate broker order", ("sim_orders",),
     "SELECT client_order_id FROM sim_orders GROUP BY client_order_id HAVING count(*) > 1"),
    # a resting order the venue filled while nobody looked is booked by the next look (a cycle
    # or a guard pass): until then its intent is pending, and that is no lost fill
    ("filled order not booked though no cycle of its asset runs", ("sim_orders", "trades"),
     "SELECT o.client_order_id FROM sim_orders o"
     " LEFT JOIN trades t ON t.client_order_id = o.client_order_id"
     " WHERE t.id IS NULL AND o.status = 'filled' AND"
     " NOT EXISTS (SELECT 1 FROM order_intents i WHERE i.client_order_id = o.client_order_id"
     " AND i.status = 'pending' AND i.order_type IN ('limit', 'stop_limit')) AND"
     " NOT EXISTS (SELECT 1 FROM cycles c WHERE c.symbol = o.symbol AND c.status = 'running')"),
    ("simulator trade the broker never filled", ("sim_orders", "trades"),
     "SELECT t.client_order_id FROM trades t JOIN cycles c ON c.id = t.cycle_id"
     " LEFT JOIN sim_orders o ON o.client_order_id = t.client_order_id"
     " WHERE c.mode = 'sim' AND o.id IS NULL"),
    ("pending order intent though no cycle of its asset runs", ("order_intents",),
     "SELECT i.client_order_id FROM order_intents i WHERE i.status = 'pending' AND"
     " coalesce(i.order_type, 'market') = 'market' AND"
     " NOT EXISTS (SELECT 1 FROM cycles c WHERE c.symbol = i.symbol AND c.status = 'running')"),
    ("filled order intent without its trade", ("order_intents", "trades"),
     "SELECT i.client_order_id FROM order_intents i"
     " LEFT JOIN trades t ON t.client_order_id = i.client_order_id"
     " WHERE i.status = 'filled' AND t.id IS NULL"),
    ("position the asset's last trade does not explain", ("trades", "positions"),
     "SELECT t.symbol FROM trades t LEFT JOIN positions p ON p.symbol = t.symbol"
     " WHERE t.id = (SELECT max(id) FROM trades WHERE symbol = t.symbol)"
     " AND (t.side = 'buy') != (p.symbol IS NOT NULL AND p.qty > 0)"),
)  # fmt: skip


def consistency_problems(store: Store) -> list[str]:
    """Check the invariants a reader may rely on at any moment, even mid-cycle.

    Read inside `store.snapshot()` for one moment. Each problem names the rows that break it.
    """
    tables = set(store.db.table_names())
    problems = []
    for problem, needs, sql in _CHECKS:
        if {"cycles", *needs} <= tables:
            keys = [str(next(iter(r.values()))) for r in store.rows(sql)]
            if keys:
                problems.append(f"{problem}: {', '.join(keys[:5])}")
    if {"sim_positions", "positions"} <= tables:
        problems += _broker_mismatches(store)
    return problems


def _broker_mismatches(store: Store) -> list[str]:
    """Compare positions with the simulator's books for assets with no cycle running."""
    newest = store.rows("SELECT mode FROM cycles ORDER BY rowid DESC LIMIT 1")
    if not newest or newest[0]["mode"] != "sim":
        return []
    busy = {r["symbol"] for r in store.rows("SELECT symbol FROM cycles WHERE status = 'running'")}
    busy |= {  # filled at the venue, booked at the next look (see the checks above)
        r["symbol"]
        for r in store.rows(
            "SELECT o.symbol FROM sim_orders o JOIN order_intents i"
            " ON i.client_order_id = o.client_order_id"
            " WHERE o.status = 'filled' AND i.status = 'pending'"
        )
    }
    booked = {r["symbol"]: r["qty"] for r in store.rows("SELECT * FROM positions WHERE qty > 0")}
    held = {r["symbol"]: r["qty"] for r in store.rows("SELECT * FROM sim_positions WHERE qty > 0")}
    return [
        f"position differs from the simulated broker's: {symbol} db {booked.get(symbol)},"
        f" broker {held.get(symbol)}"
        for symbol in sorted((booked.keys() | held.keys()) - busy)
        if abs((booked.get(symbol) or 0.0) - (held.get(symbol) or 0.0)) > 1e-9
    ]


def panel_problems(data: DashboardData) -> list[str]:
    """Check that an asset panel's position agrees with its newest fill (one moment's read)."""
    if data.trades.empty:
        return []
    last = data.trades.sort_values("id").iloc[-1]
    position = data.position if data.position and data.position["qty"] > 0 else None
    symbol = data.asset.symbol
    if (last["side"] == "buy") != (position is not None):
        return [f"{symbol} panel: position {position} after its last fill {last['side']}"]
    entry = position.get("entry_trade_id") if position else None
    if entry is not None and int(entry) != int(last["id"]):
        return [f"{symbol} panel: position opened by trade {entry}, newest fill {last['id']}"]
    return []


def _header_problems(account: AccountHeader, panels: list[DashboardData]) -> list[str]:
    held = sum(1 for p in panels if p.position and p.position["qty"] > 0)
    if account.positions != held:
        return [f"header shows {account.positions} positions, the panels {held}"]
    return []


@dataclass(frozen=True)
class ReadResult:
    """One dashboard-like read: how long it took, what it found, what it overlapped."""

    seconds: float
    problems: tuple[str, ...]
    cycles: int  # cycles visible
    running: int  # of them still being written: the read overlapped a cycle


def read_once(store: Store, now: datetime, limits: Settings) -> ReadResult:
    """Read what a dashboard refresh reads (header, every panel, performance) and check it.

    As the dashboard does, the header and panels come from one snapshot, checked against each
    other and `consistency_problems`; then each panel is read again on its own
    (`dashboard_data`'s own snapshot) and checked with `panel_problems`.
    """
    started = time.perf_counter()
    with store.snapshot():
        account = read_account(store, now, load_limits(store, limits.limits))
        symbols = [a.symbol for a in store.list_assets()]
        panels = [dashboard_data(store, symbol) for symbol in symbols]
        read_performance(store)
        problems = consistency_problems(store) + _header_problems(account, panels)
        counts = store.rows(
            "SELECT count(*) AS n, count(CASE WHEN status = 'running' THEN 1 END) AS running"
            " FROM cycles"
        )[0]
    for panel in [*panels, *(dashboard_data(store, symbol) for symbol in symbols)]:
        problems += panel_problems(panel)
    seconds = time.perf_counter() - started
    return ReadResult(seconds, tuple(problems), int(counts["n"]), int(counts["running"]))
