"""Read APIs (the seed's REST routes): assets, `dashboard_data(symbol)`, recent activity.

They only read: the dashboard opens the store with `read_only=True`, so nothing here can trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from botlib.ai_logs import spend_today
from botlib.analytics import Metrics, metrics
from botlib.models import AssetSettings
from botlib.store import Store

__all__ = ["DashboardData", "list_assets", "dashboard_data", "account_overview", "recent_cycles"]


@dataclass(frozen=True)
class DashboardData:
    """Everything one asset panel draws."""

    asset: AssetSettings
    bars: pd.DataFrame
    trades: pd.DataFrame
    position: dict[str, Any] | None
    metrics: Metrics
    last_decision: dict[str, Any] | None
    last_cycle: dict[str, Any] | None
    last_reflection: dict[str, Any] | None
    cycles: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_price(self) -> float | None:
        return float(self.bars["close"].iloc[-1]) if len(self.bars) else None

    @property
    def unrealized_pnl(self) -> float:
        if not self.position or self.last_price is None:
            return 0.0
        return self.position["qty"] * (self.last_price - self.position["avg_entry_price"])


def list_assets(store: Store) -> list[AssetSettings]:
    return store.list_assets()


def _one(store: Store, sql: str, params: list[Any]) -> dict[str, Any] | None:
    found = store.rows(sql, params)
    return found[0] if found else None


def _series(rows: list[dict[str, Any]], column: str) -> pd.Series:
    if not rows:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex(pd.to_datetime([r["ts"] for r in rows], utc=True, format="ISO8601"))
    return pd.Series([float(r[column]) for r in rows], index=index)


def dashboard_data(store: Store, symbol: str, bars: int = 200) -> DashboardData:
    """Gather one asset's chart, trades, position, metrics and latest AI decision."""
    asset = store.get_asset(symbol)
    frame = store.load_bars(symbol, asset.timeframe, limit=bars)
    trades = pd.DataFrame(
        store.rows("SELECT * FROM trades WHERE symbol = ? ORDER BY created_at", [symbol])
    )
    snaps = store.rows(
        "SELECT ts, equity, asset_pnl FROM equity_snapshots WHERE symbol = ? ORDER BY ts", [symbol]
    )
    start = store.rows("SELECT equity FROM equity_snapshots ORDER BY id LIMIT 1")
    base = float(start[0]["equity"]) if start else 0.0
    curve = _series(snaps, "asset_pnl") + base  # the asset's P&L on the starting equity
    closed = trades["realized_pnl"].dropna() if len(trades) else pd.Series(dtype=float)
    total = float(snaps[-1]["asset_pnl"]) if snaps else 0.0
    return DashboardData(
        asset=asset,
        bars=frame,
        trades=trades,
        position=store.get_position(symbol),
        metrics=metrics(curve, closed.astype(float), total),
        last_decision=_one(
            store,
            "SELECT * FROM ai_decision_logs WHERE symbol = ? ORDER BY id DESC LIMIT 1",
            [symbol],
        ),
        last_cycle=_one(
            store,
            "SELECT * FROM cycles WHERE symbol = ? ORDER BY started_at DESC LIMIT 1",
            [symbol],
        ),
        last_reflection=_one(
            store,
            "SELECT * FROM ai_reflections WHERE symbol = ? ORDER BY id DESC LIMIT 1",
            [symbol],
        ),
        cycles=store.db.table("cycles").count_where("symbol = ?", [symbol]),
    )


def account_overview(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """Return account equity now, its curve, account-level metrics and today's LLM spend."""
    rows = store.rows("SELECT ts, equity, cash FROM equity_snapshots ORDER BY id")
    curve = _series(rows, "equity")
    curve = curve[~curve.index.duplicated(keep="last")]  # one point per tick, not per asset
    closed = store.rows("SELECT realized_pnl FROM trades WHERE realized_pnl IS NOT NULL")
    pnls = pd.Series([float(r["realized_pnl"]) for r in closed], dtype=float)
    total = float(curve.iloc[-1] - curve.iloc[0]) if len(curve) else 0.0
    return {
        "equity": float(curve.iloc[-1]) if len(curve) else None,
        "cash": float(rows[-1]["cash"]) if rows else None,
        "curve": curve,
        "metrics": metrics(curve, pnls, total),
        "llm_today": spend_today(store, now or datetime.now(UTC)),
        "mode": (
            _one(store, "SELECT mode FROM cycles ORDER BY started_at DESC LIMIT 1", []) or {}
        ).get("mode"),
    }


def recent_cycles(store: Store, limit: int = 20, symbol: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE symbol = ?", [symbol]) if symbol else ("", [])
    return store.rows(
        f"SELECT * FROM cycles {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
        [*params, limit],
    )
