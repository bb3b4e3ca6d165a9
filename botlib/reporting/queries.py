"""Read APIs (the seed's REST routes): assets, `dashboard_data(symbol)`, recent activity.

They only read: the dashboard opens the store with `read_only=True`, so nothing here can trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from botlib.clock import iso
from botlib.models import TIMEFRAMES, AssetSettings
from botlib.reporting.ai_logs import spend_today
from botlib.reporting.analytics import Metrics, max_drawdown_pct, metrics, sharpe_ratio
from botlib.storage.store import Store

__all__ = [
    "CHART_WARM_UP",
    "DashboardData",
    "list_assets",
    "dashboard_data",
    "account_overview",
    "recent_cycles",
    "RESTING_LIMIT",
    "resting_orders",
]

# Bars loaded before the chart's window so its longest overlay, SMA(50), is defined from the
# window's first bar (49 earlier bars; tests tie this to `botlib.features.indicators.WARM_UP`).
CHART_WARM_UP = 50
_OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class DashboardData:
    """Everything one asset panel draws.

    `bars` is the chart's window; `history` holds the bars just before it, loaded only so the
    chart's indicators are defined from the window's first bar (they are never drawn). `trades`
    holds only fills from the window on. `metrics` counts every closed trade (SQL aggregates) and
    the last P&L snapshot; its Sharpe and drawdown cover the window's snapshots only. `resting`
    holds the asset's orders open at the venue now (see `resting_orders`).
    """

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
    history: pd.DataFrame = field(default_factory=lambda: _no_bars())
    default_analyst: str | None = None  # the configured analyst for assets without an override
    resting: list[dict[str, Any]] = field(default_factory=list)  # `resting_orders`, newest first

    @property
    def last_price(self) -> float | None:
        return float(self.bars["close"].iloc[-1]) if len(self.bars) else None

    @property
    def unrealized_pnl(self) -> float:
        if not self.position or self.last_price is None:
            return 0.0
        return self.position["qty"] * (self.last_price - self.position["avg_entry_price"])


def _no_bars() -> pd.DataFrame:
    frame = pd.DataFrame(columns=list(_OHLCV), dtype=float)
    frame.index = pd.DatetimeIndex([], tz="UTC", name="ts")
    return frame


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


def dashboard_data(
    store: Store,
    symbol: str,
    bars: int = 200,
    *,
    warm_up: int = CHART_WARM_UP,
    default_analyst: str | None = None,
) -> DashboardData:
    """Gather one asset's chart window, fills, position, metrics and latest AI records.

    Every query is an index seek or a scan bounded by the window, so the cost does not grow
    with the months of bars, snapshots and trades behind it.
    """
    if bars < 1 or warm_up < 0:
        raise ValueError(f"need bars >= 1 and warm_up >= 0, got bars={bars}, warm_up={warm_up}")
    with store.snapshot():  # one moment: a cycle being written shows whole or not at all
        return _dashboard_data(store, symbol, bars, warm_up, default_analyst)


def _dashboard_data(
    store: Store, symbol: str, bars: int, warm_up: int, default_analyst: str | None
) -> DashboardData:
    asset = store.get_asset(symbol)
    loaded = store.load_bars(symbol, asset.timeframe, limit=bars + warm_up)
    window = loaded.iloc[-bars:]
    return DashboardData(
        asset=asset,
        bars=window,
        history=loaded.iloc[: len(loaded) - len(window)],
        trades=_window_fills(store, symbol, window, asset.timeframe),
        position=store.get_position(symbol),
        metrics=_metrics(store, symbol, window),
        last_decision=_one(store, _LAST_DECISION, [symbol]),
        last_cycle=_one(store, _LAST_CYCLE, [symbol]),
        last_reflection=_one(store, _LAST_REFLECTION, [symbol]),
        cycles=store.db.table("cycles").count_where("symbol = ?", [symbol]),
        default_analyst=default_analyst,
        resting=resting_orders(store, symbol),
    )


# (symbol, created_at) / (symbol, started_at) indexes: one seek each, newest first
_LAST_DECISION = (
    "SELECT * FROM ai_decision_logs WHERE symbol = ? ORDER BY created_at DESC, id DESC LIMIT 1"
)
_LAST_CYCLE = "SELECT * FROM cycles WHERE symbol = ? ORDER BY started_at DESC, rowid DESC LIMIT 1"
# no symbol index on ai_reflections: walks ids backwards and stops at the asset's newest one
_LAST_REFLECTION = "SELECT * FROM ai_reflections WHERE symbol = ? ORDER BY id DESC LIMIT 1"
_FILL_LAG = pd.Timedelta(days=1)  # an order created this long before it filled is still found


def _window_start(window: pd.DataFrame, timeframe: str) -> pd.Timestamp | None:
    """Return the first bar's close time: fills from then on belong to the window."""
    if window.empty:
        return None
    return window.index[0] + pd.Timedelta(minutes=TIMEFRAMES.get(timeframe, 0))


def _window_fills(store: Store, symbol: str, window: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Load the trades filled inside the window (by the (symbol, created_at) index)."""
    start = _window_start(window, timeframe)
    if start is None:
        return pd.DataFrame()
    rows = store.rows(
        "SELECT * FROM trades WHERE symbol = ? AND created_at >= ? AND filled_at >= ?"
        " ORDER BY created_at, id",
        [symbol, iso((start - _FILL_LAG).to_pydatetime()), iso(start.to_pydatetime())],
    )
    return pd.DataFrame(rows)


def _metrics(store: Store, symbol: str, window: pd.DataFrame) -> Metrics:
    """Trade statistics by SQL aggregates; Sharpe and drawdown from the window's snapshots."""
    trades = store.rows(_TRADE_TOTALS, [symbol])[0]
    last = _one(
        store,
        "SELECT asset_pnl FROM equity_snapshots WHERE symbol = ? ORDER BY ts DESC, id DESC LIMIT 1",
        [symbol],
    )
    curve = pd.Series(dtype=float)
    if not window.empty:
        snaps = store.rows(
            "SELECT ts, asset_pnl FROM equity_snapshots WHERE symbol = ? AND ts >= ?"
            " ORDER BY ts, id",
            [symbol, iso(window.index[0].to_pydatetime())],
        )
        start = _one(store, "SELECT equity FROM equity_snapshots ORDER BY id LIMIT 1", [])
        curve = _series(snaps, "asset_pnl") + float((start or {}).get("equity") or 0.0)
    n, wins = int(trades["n"]), int(trades["wins"])
    won, lost = float(trades["won"]), float(trades["lost"])
    return Metrics(
        total_pnl=float((last or {}).get("asset_pnl") or 0.0),
        n_trades=n,
        win_rate=wins / n if n else None,
        avg_win=won / wins if wins else None,
        avg_loss=lost / (n - wins) if n - wins else None,
        profit_factor=won / -lost if lost < 0 else None,
        sharpe=sharpe_ratio(curve),
        max_drawdown_pct=max_drawdown_pct(curve),
    )


# closed trades: count, wins (> 0), their sums; a zero P&L counts as a loss, as in trade_stats
_TRADE_TOTALS = """
SELECT count(realized_pnl) AS n,
       count(CASE WHEN realized_pnl > 0 THEN 1 END) AS wins,
       coalesce(sum(CASE WHEN realized_pnl > 0 THEN realized_pnl END), 0.0) AS won,
       coalesce(sum(CASE WHEN realized_pnl <= 0 THEN realized_pnl END), 0.0) AS lost
FROM trades WHERE symbol = ?
"""


RESTING_LIMIT = 20  # more than a position's stop and a few limit entries: a bound, not a page
_RESTING_COLUMNS = (
    "client_order_id, symbol, order_type, side, stop_price, limit_price, qty, notional, reason,"
    " status, revision, created_at, expires_at"
)


def resting_orders(
    store: Store, symbol: str | None = None, limit: int = RESTING_LIMIT
) -> list[dict[str, Any]]:
    """Return the orders resting at the venue (pending limit / stop_limit intents), newest first.

    A protective stop (`reason` 'venue_stop') carries its `stop_price`, `limit_price` and
    `revision`; a limit entry ('signal') its `limit_price` and `expires_at`. With a symbol the
    query is a seek on the (symbol, status) index; without one it walks the intents newest
    first. At most `limit` rows: the newest written down, then ordered by `created_at`.
    """
    where = "status = 'pending' AND order_type IN ('limit', 'stop_limit')"
    params: list[Any] = []
    if symbol is not None:
        where, params = f"symbol = ? AND {where}", [symbol]
    # rowid order, not created_at: the index yields it without a sort (no temp B-tree)
    rows = store.rows(
        f"SELECT {_RESTING_COLUMNS} FROM order_intents WHERE {where} ORDER BY rowid DESC LIMIT ?",
        [*params, limit],
    )
    # a stable sort: orders written down at the same time stay newest row first
    return sorted(rows, key=lambda row: row["created_at"] or "", reverse=True)


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
