"""The live arena's read side: the live analyst beside its shadows, per asset and overall.

The live analyst's books are the bot's database; each shadow's are `<db>.arena/<name>.db`
(`shadow_folder`, written by `botlib.arena.shadows`). Everything is read over the same period,
from the first shadow cycle on (a shadow added later starts later: its rows say since when), so
the live analyst's earlier history does not count. Per asset and analyst: P&L after fees
(realized plus unrealized, from the equity snapshots' `asset_pnl`), LLM spend, P&L after it,
closed trades, win rate; overall, the same summed plus the account's return, max drawdown,
Sharpe and equity curve; and how often each pair of analysts took the same action on the same
live cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from botlib.reporting.analytics import drawdown, sharpe_ratio
from botlib.storage.store import Store

__all__ = ["ArenaBoard", "arena_board", "shadow_folder", "LIVE"]

LIVE = "live"


def shadow_folder(db_path: Path | str) -> Path:
    """Where a bot's shadows keep their databases: beside it, `<db>.arena/`."""
    return Path(f"{db_path}.arena")


@dataclass(frozen=True)
class ArenaBoard:
    """The leaderboard rows, the equity curves and the agreement matrix of one bot."""

    rows: pd.DataFrame  # analyst, symbol ("all" = overall), pnl, llm_spend, pnl_after_llm, ...
    curves: dict[str, pd.Series] = field(default_factory=dict)  # account equity by analyst
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # share of same actions
    since: str | None = None  # the first shadow cycle's start (None: no shadows yet)

    def ranked(self, symbol: str = "all") -> pd.DataFrame:
        """One asset's (or the overall) rows, best first by P&L after LLM spend."""
        rows = self.rows[self.rows["symbol"] == symbol]
        return rows.sort_values("pnl_after_llm", ascending=False).reset_index(drop=True)


def arena_board(db_path: Path | str) -> ArenaBoard:
    """Read the live database and every shadow's (read-only, each in one snapshot)."""
    sources = [(LIVE, Path(db_path))]
    sources += [(p.stem, p) for p in sorted(shadow_folder(db_path).glob("*.db"))]
    if len(sources) == 1:
        return ArenaBoard(pd.DataFrame(columns=_COLUMNS))
    since = min(_first_cycle(path) or "9999" for _, path in sources[1:])
    reads = {name: _read(path, since) for name, path in sources}
    rows = [row for name, read in reads.items() for row in _rows(name, read)]
    curves = {name: read["equity"] for name, read in reads.items()}
    agreement = _agreement({name: read["actions"] for name, read in reads.items()})
    return ArenaBoard(pd.DataFrame(rows, columns=_COLUMNS), curves, agreement, since)


_COLUMNS = [
    "analyst", "symbol", "pnl", "llm_spend", "pnl_after_llm", "trades", "win_rate_pct",
    "max_drawdown_pct", "sharpe", "return_pct", "cycles",
]  # fmt: skip


def _first_cycle(path: Path) -> str | None:
    with Store(path, read_only=True) as store:
        return store.rows("SELECT min(started_at) AS t FROM cycles")[0]["t"]  # type: ignore[no-any-return]


def _read(path: Path, since: str) -> dict[str, Any]:
    """One database's snapshots, closed trades, spend and actions from `since` on."""
    with Store(path, read_only=True) as store, store.snapshot():
        snaps = store.rows(
            "SELECT ts, symbol, equity, asset_pnl FROM equity_snapshots WHERE ts >= ?"
            " ORDER BY ts, id", [since],
        )  # fmt: skip
        base = store.rows(
            "SELECT symbol, asset_pnl FROM equity_snapshots e WHERE id = (SELECT max(id) FROM"
            " equity_snapshots WHERE symbol = e.symbol AND ts < ?)", [since],
        )  # fmt: skip
        trades = store.rows(
            "SELECT symbol, realized_pnl FROM trades WHERE realized_pnl IS NOT NULL"
            " AND created_at >= ?", [since],
        )  # fmt: skip
        spend = store.rows(
            "SELECT symbol, coalesce(sum(cost_usd), 0) AS usd FROM ai_decision_logs"
            " WHERE created_at >= ? GROUP BY symbol", [since],
        )  # fmt: skip
        actions = store.rows(
            "SELECT id, symbol, action FROM cycles WHERE started_at >= ? AND action IS NOT NULL",
            [since],
        )  # fmt: skip
    frame = pd.DataFrame(snaps, columns=["ts", "symbol", "equity", "asset_pnl"])
    equity = pd.Series(frame["equity"].to_numpy(float), index=pd.to_datetime(frame["ts"]))
    return {
        "snaps": frame, "base": {r["symbol"]: r["asset_pnl"] or 0.0 for r in base},
        "trades": pd.DataFrame(trades, columns=["symbol", "realized_pnl"]),
        "spend": {r["symbol"]: float(r["usd"]) for r in spend}, "equity": equity,
        "actions": {_live_id(r["id"]): r["action"] for r in actions},
    }  # fmt: skip


def _live_id(cycle_id: str) -> str:
    """A shadow's cycle id is `<live cycle id>-<name>`: the live cycle it shadowed."""
    parts = cycle_id.split("-")
    return "-".join(parts[:3]) if len(parts) > 3 else cycle_id


def _rows(name: str, read: dict[str, Any]) -> list[dict[str, Any]]:
    snaps, trades = read["snaps"], read["trades"]
    rows = []
    for symbol in sorted(set(snaps["symbol"])):
        mine = snaps[snaps["symbol"] == symbol]
        pnl = float(mine["asset_pnl"].iloc[-1] or 0.0) - read["base"].get(symbol, 0.0)
        closed = trades[trades["symbol"] == symbol]["realized_pnl"].astype(float)
        rows.append(_row(name, symbol, pnl, read["spend"].get(symbol, 0.0), closed, len(mine)))
    if rows:
        total = _row(name, "all", sum(r["pnl"] for r in rows), sum(read["spend"].values()),
                     trades["realized_pnl"].astype(float), len(snaps))  # fmt: skip
        curve = read["equity"]
        total["max_drawdown_pct"] = abs(float(drawdown(curve).min() * 100)) if len(curve) else 0.0
        total["sharpe"] = sharpe_ratio(curve)
        start = float(curve.iloc[0]) if len(curve) else 0.0
        total["return_pct"] = (float(curve.iloc[-1]) / start - 1) * 100 if start > 0 else None
        rows.append(total)
    return rows


def _row(
    name: str, symbol: str, pnl: float, spend: float, closed: pd.Series, cycles: int
) -> dict[str, Any]:  # fmt: skip
    wins = float((closed > 0).mean() * 100) if len(closed) else None
    return {
        "analyst": name, "symbol": symbol, "pnl": pnl, "llm_spend": spend,
        "pnl_after_llm": pnl - spend, "trades": len(closed), "win_rate_pct": wins,
        "max_drawdown_pct": None, "sharpe": None, "return_pct": None, "cycles": cycles,
    }  # fmt: skip


def _agreement(actions: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Share of the live cycles both analysts decided on where they took the same action."""
    names = list(actions)
    table = pd.DataFrame(index=names, columns=names, dtype=float)
    for a in names:
        for b in names:
            common = actions[a].keys() & actions[b].keys()
            same = sum(actions[a][k] == actions[b][k] for k in common)
            table.loc[a, b] = same / len(common) if common else float("nan")
    return table
