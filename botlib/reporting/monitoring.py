"""Read what a trader watches all day: account, risk state, heartbeat, lights, performance.

Everything here only reads, so the dashboard runs it on a `Store(path, read_only=True)`. It is
built for a database that grows for months (10 assets x 100k bars, ~1M equity snapshots,
thousands of trades): every query is an index seek, a bounded scan or an SQL aggregate, and no
function returns more than ~1000 rows per asset. Times are judged against an injected `now`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from botlib.clock import iso, parse_time
from botlib.core.risk import RiskLimits, halts
from botlib.reporting.ai_logs import spend_today
from botlib.reporting.analytics import Metrics, max_drawdown_pct, sharpe_ratio
from botlib.storage.store import Store

__all__ = [
    "HEARTBEAT_LATE", "CURVE_BUCKETS", "Heartbeat", "Light", "AssetCycle", "AccountHeader",
    "PerformanceRow", "Performance", "read_account", "equity_curve", "read_performance",
]  # fmt: skip

HEARTBEAT_LATE = timedelta(minutes=3)  # the scheduler ticks every minute: 3 missed is a problem
CURVE_BUCKETS = 1000  # most points an equity curve query returns
LightState = Literal["ok", "failed", "stale", "paused", "waiting"]


# account header -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heartbeat:
    """The scheduler's latest `ticks` row (all None when no scheduler has run yet)."""

    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_at: datetime | None = None
    ran: int | None = None
    failed: int | None = None

    def state(self, now: datetime) -> Literal["none", "ok", "late"]:
        """Say whether ticks arrive: `late` once the last one started over 3 minutes ago."""
        if self.started_at is None:
            return "none"
        return "late" if now - self.started_at > HEARTBEAT_LATE else "ok"


@dataclass(frozen=True)
class Light:
    """One asset's status light: its state, a short text and the detail for a tooltip."""

    symbol: str
    state: LightState
    text: str
    detail: str


@dataclass(frozen=True)
class AssetCycle:
    """An asset's settings that matter for its light, and its newest cycle (if any)."""

    symbol: str
    paused: bool
    interval_minutes: int
    created_at: datetime | None
    status: str | None = None
    started_at: datetime | None = None
    reason: str | None = None
    error: str | None = None

    def stale_after(self) -> timedelta:
        """Allow two missed intervals plus two minutes of scheduling slack."""
        return timedelta(minutes=2 * self.interval_minutes + 2)

    def light(self, now: datetime) -> Light:
        """Judge the light: paused (grey) > stale (amber) > failed (red) > ok (green)."""
        why = self.reason or self.error or ""
        since = self.started_at or self.created_at
        if self.paused:
            return Light(self.symbol, "paused", "paused", "paused by the operator")
        if since is not None and now - since > self.stale_after():
            last = f"last cycle {iso(self.started_at)} ({self.status})" if self.started_at else ""
            return Light(self.symbol, "stale", "stale", last or "no cycle since it was added")
        if self.status is None:
            return Light(self.symbol, "waiting", "no cycle yet", "waiting for the first cycle")
        if self.status == "failed":
            detail = f"{self.error}: {why}" if self.error and self.error != why else why
            return Light(self.symbol, "failed", f"failed: {why}", detail or "failed")
        if self.status == "skipped":
            return Light(self.symbol, "stale", f"skipped: {why}", why)
        return Light(self.symbol, "ok", self.status, why)


@dataclass(frozen=True)
class AccountHeader:
    """The header's numbers, read in one transaction for the UTC day of `read_at`."""

    read_at: datetime
    limits: RiskLimits
    mode: str | None = None
    equity: float | None = None
    cash: float | None = None
    start_equity: float | None = None
    day_start_equity: float | None = None
    peak_equity: float | None = None
    positions: int = 0
    positions_value: float = 0.0
    llm_today: float = 0.0
    heartbeat: Heartbeat = Heartbeat()
    assets: tuple[AssetCycle, ...] = ()

    @property
    def total_pnl(self) -> float | None:
        return _diff(self.equity, self.start_equity)

    @property
    def day_pnl(self) -> float | None:
        return _diff(self.equity, self.day_start_equity)

    @property
    def drawdown_pct(self) -> float:
        """Return how far equity is below its peak, in percent (0 at a new high)."""
        if not self.peak_equity or self.equity is None:
            return 0.0
        return max(0.0, (self.peak_equity - self.equity) / self.peak_equity * 100)

    @property
    def day_loss_pct(self) -> float:
        """Return today's loss as a positive percentage of the day's starting equity."""
        if not self.day_start_equity or self.day_pnl is None:
            return 0.0
        return max(0.0, -self.day_pnl / self.day_start_equity * 100)

    def halt_reasons(self) -> list[str]:
        """Say which account limit is crossed; any makes the account HALTED (exits only).

        The judgement is the engine's own (`risk.halts`: peak = highest equity snapshot, the
        day's start = last equity before 00:00 UTC); only the wording is the dashboard's.
        """
        if self.equity is None:
            return []
        peak = self.peak_equity or self.equity
        crossed = halts(self.equity, peak, self.limits, self.day_start_equity)
        texts = {
            "drawdown": f"drawdown {self.drawdown_pct:.2f} % from the peak exceeds the "
            f"{self.limits.max_drawdown_pct:g} % limit",
            "daily_loss": f"today's loss {self.day_loss_pct:.2f} % reached the "
            f"{self.limits.max_daily_loss_pct:g} % daily limit",
        }
        return [texts[status.halt] for status in crossed if status.halt in texts]


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _value(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    """Return the first column of the first row (None without rows)."""
    row = store.db.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def _positions(store: Store) -> tuple[int, float]:
    """Count open positions and value them at their asset's last stored close."""
    rows = store.rows(
        "SELECT p.qty, p.avg_entry_price AS entry, (SELECT m.close FROM market_data m"
        " WHERE m.symbol = p.symbol AND m.timeframe = a.timeframe ORDER BY m.ts DESC LIMIT 1)"
        " AS price FROM positions p LEFT JOIN trading_assets a ON a.symbol = p.symbol"
        " WHERE p.qty > 0"
    )
    value = sum(float(r["qty"]) * float(r["price"] or r["entry"] or 0.0) for r in rows)
    return len(rows), value


def _heartbeat(store: Store) -> Heartbeat:
    rows = store.rows(
        "SELECT started_at, finished_at, next_at, ran, failed FROM ticks"
        " ORDER BY started_at DESC, id DESC LIMIT 1"
    )
    if not rows:
        return Heartbeat()
    row = rows[0]
    times = {k: parse_time(row[k]) for k in ("started_at", "finished_at", "next_at")}
    return Heartbeat(**times, ran=row["ran"], failed=row["failed"])


def _asset_cycles(store: Store) -> tuple[AssetCycle, ...]:
    rows = store.rows(
        "SELECT a.symbol, a.paused, a.interval_minutes, a.created_at,"
        " c.status, c.started_at, c.reason, c.error FROM trading_assets a"
        " LEFT JOIN cycles c ON c.rowid = (SELECT rowid FROM cycles WHERE symbol = a.symbol"
        " ORDER BY started_at DESC, rowid DESC LIMIT 1) ORDER BY a.symbol"
    )
    return tuple(
        AssetCycle(
            symbol=r["symbol"],
            paused=bool(r["paused"]),
            interval_minutes=int(r["interval_minutes"]),
            created_at=parse_time(r["created_at"]),
            status=r["status"],
            started_at=parse_time(r["started_at"]),
            reason=r["reason"],
            error=r["error"],
        )
        for r in rows
    )


def read_account(store: Store, now: datetime, limits: RiskLimits) -> AccountHeader:
    """Read the header's numbers: a dozen index seeks plus one `max(equity)` aggregate."""
    latest = store.rows(
        "SELECT equity, cash FROM equity_snapshots ORDER BY ts DESC, id DESC LIMIT 1"
    )
    count, value = _positions(store)
    peak = _value(store, "SELECT max(equity) FROM equity_snapshots")
    start = _start(store)
    return AccountHeader(
        read_at=now,
        limits=limits,
        mode=_value(store, "SELECT mode FROM cycles ORDER BY rowid DESC LIMIT 1"),  # newest row
        equity=float(latest[0]["equity"]) if latest else None,
        cash=float(latest[0]["cash"]) if latest else None,
        start_equity=start,
        day_start_equity=store.day_start_equity(now),
        peak_equity=None if peak is None else float(peak),
        positions=count,
        positions_value=value,
        llm_today=spend_today(store, now),
        heartbeat=_heartbeat(store),
        assets=_asset_cycles(store),
    )


# performance ----------------------------------------------------------------------------------
_CURVE_SQL = """
WITH buckets AS (
  SELECT json_extract(value, '$[0]') AS lo, json_extract(value, '$[1]') AS hi
  FROM json_each(:buckets)
), picks AS (
  SELECT (SELECT id FROM equity_snapshots WHERE {where} ts > buckets.lo AND ts <= buckets.hi
          ORDER BY ts DESC, id DESC LIMIT 1) AS id
  FROM buckets
)
SELECT e.ts, e.equity, e.asset_pnl FROM picks JOIN equity_snapshots e ON e.id = picks.id
ORDER BY e.ts, e.id
"""


def _bucket_bounds(first: str, last: str, buckets: int) -> str:
    """Split [first, last] into equal time buckets, as JSON [[lo, hi], ...] of ISO strings."""
    start, end = parse_time(first), parse_time(last)
    assert start is not None
    assert end is not None
    width = (end - start) / buckets
    his = [iso(start + width * (i + 1)) for i in range(buckets - 1)] + [last]
    los = [""] + his[:-1]  # "" sorts before every time: the first bucket has no lower bound
    return json.dumps([[lo, hi] for lo, hi in zip(los, his, strict=True)])


def equity_curve(
    store: Store, symbol: str | None = None, buckets: int = CURVE_BUCKETS
) -> pd.Series:
    """Return the equity curve sampled as the last snapshot of each of `buckets` time buckets.

    Each bucket is one index seek, so a million snapshots cost ~`buckets` seeks, not a scan.
    Account curve: the account equity. With `symbol`: the first equity plus that asset's P&L
    (what the asset alone would have made of the account). A dip that recovers within one
    bucket (1/`buckets` of the history) is not seen; while snapshots are sparser than buckets
    every snapshot time keeps its last row, the same curve `botlib.reporting.queries` builds
    in full.
    """
    where, params = ("symbol = :symbol AND", {"symbol": symbol}) if symbol else ("", {})
    # One min() or max() per query: SQLite answers those from the index without a scan.
    first, last = (
        store.db.execute(
            f"SELECT {end}(ts) FROM equity_snapshots{' WHERE symbol = :symbol' if symbol else ''}",
            params,
        ).fetchone()[0]
        for end in ("min", "max")
    )
    if first is None:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    bounds = _bucket_bounds(first, last, max(1, buckets))
    rows = list(store.db.query(_CURVE_SQL.format(where=where), {"buckets": bounds, **params}))
    index = pd.DatetimeIndex(pd.to_datetime([r["ts"] for r in rows], utc=True, format="ISO8601"))
    if symbol is None:
        return pd.Series([float(r["equity"]) for r in rows], index=index)
    base = _start(store) or 0.0
    return pd.Series([base + float(r["asset_pnl"] or 0.0) for r in rows], index=index)


@dataclass(frozen=True)
class PerformanceRow:
    """One line of the metrics table (an asset, or the account's total).

    `metrics.total_pnl` is the NET P&L: fills are booked net of fees (`realized_pnl` subtracts
    the sell fee, the buy fee is in the average entry price) and equity is cash after fees. So
    fees are shown, not subtracted again: `gross_pnl` = net + fees is the P&L before costs,
    `cost_adjusted_pnl` = net - LLM spend is what is left after every cost.
    """

    label: str
    metrics: Metrics
    fees: float
    llm_usd: float

    @property
    def gross_pnl(self) -> float:
        return self.metrics.total_pnl + self.fees

    @property
    def cost_adjusted_pnl(self) -> float:
        return self.metrics.total_pnl - self.llm_usd


@dataclass(frozen=True)
class Performance:
    """The account's (bucketed) equity curve and the metrics rows, assets first, total last."""

    curve: pd.Series
    rows: tuple[PerformanceRow, ...]


_TRADES_SQL = """
SELECT symbol, count(realized_pnl) AS n, coalesce(sum(fee), 0) AS fees,
  sum(CASE WHEN realized_pnl > 0 THEN 1 ELSE 0 END) AS wins,
  coalesce(sum(CASE WHEN realized_pnl > 0 THEN realized_pnl END), 0) AS won,
  coalesce(sum(CASE WHEN realized_pnl <= 0 THEN realized_pnl END), 0) AS lost
FROM trades GROUP BY symbol
"""
_LLM_SQL = """
SELECT symbol, sum(cost) AS usd FROM (
  SELECT symbol, cost_usd AS cost FROM ai_decision_logs
  UNION ALL SELECT symbol, cost_usd FROM ai_reflections
) GROUP BY symbol
"""


def _metrics(trades: dict[str, Any], curve: pd.Series, pnl: float) -> Metrics:
    """Build `analytics.Metrics` from SQL sums (same definitions as `analytics.trade_stats`)."""
    n, wins = int(trades.get("n") or 0), int(trades.get("wins") or 0)
    won, lost = float(trades.get("won") or 0.0), float(trades.get("lost") or 0.0)
    return Metrics(
        total_pnl=pnl,
        n_trades=n,
        win_rate=wins / n if n else None,
        avg_win=won / wins if wins else None,
        avg_loss=lost / (n - wins) if n > wins else None,
        profit_factor=won / -lost if lost < 0 else None,
        sharpe=sharpe_ratio(curve),
        max_drawdown_pct=max_drawdown_pct(curve),
    )


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("n", "fees", "wins", "won", "lost")
    return {k: sum((float(r[k] or 0) for r in rows), 0.0) for k in keys}


def read_performance(store: Store, buckets: int = CURVE_BUCKETS) -> Performance:
    """Compute the metrics table from SQL aggregates and bucketed curves.

    Trade statistics are exact (SUM/COUNT over all trades). Sharpe and max drawdown come from
    the bucketed curves of `equity_curve`: the Sharpe of bucket-to-bucket returns, annualised by
    the median bucket spacing (`analytics.sharpe_ratio`).
    """
    trades = {r["symbol"]: r for r in store.rows(_TRADES_SQL)}
    llm = {r["symbol"]: float(r["usd"] or 0.0) for r in store.rows(_LLM_SQL)}
    start = _start(store) or 0.0
    rows = []
    for (symbol,) in store.db.execute("SELECT symbol FROM trading_assets ORDER BY symbol"):
        curve = equity_curve(store, symbol, buckets)
        pnl = float(curve.iloc[-1] - start) if len(curve) else 0.0
        stats = trades.get(symbol, {})
        metrics = _metrics(stats, curve, pnl)
        rows.append(PerformanceRow(symbol, metrics, float(stats.get("fees") or 0.0),
                                   llm.get(symbol, 0.0)))  # fmt: skip
    account = equity_curve(store, None, buckets)
    total = _total(list(trades.values()))
    pnl = float(account.iloc[-1] - start) if len(account) else 0.0
    rows.append(PerformanceRow("Total", _metrics(total, account, pnl), total["fees"],
                               sum(llm.values())))  # fmt: skip
    return Performance(account, tuple(rows))


def _start(store: Store) -> float | None:
    """Return the first equity snapshot: the account's starting equity."""
    first = _value(store, "SELECT equity FROM equity_snapshots ORDER BY ts, id LIMIT 1")
    return None if first is None else float(first)
