"""The parity audit: replay what the bot did over a period and name every difference.

`audit` reads the bot's cycles and trades of one asset over a period (`reporting.audit_trail`),
replays the same period through the backtester on the same market (the simulator's for a sim
bot, the stored bars otherwise) with the bot's own costs, sizing, venue stop and analyst (a
model answering from the replay cache), and compares cycle by cycle and trade by trade. Each
difference says its cause when it can: a manual action (the operator's log), a live cycle that
failed or skipped (stale data, a crash), the venue's fill price or fee (paper and live fills
are the venue's, the replay's the simulator's). On the simulator a period run from a fresh
database audits to zero differences (`tests/test_audit.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from botlib.backtest.results import TRADE_COLUMNS, BacktestResult
from botlib.backtest.run import Sizing, run_backtest
from botlib.clock import iso, parse_time
from botlib.errors import ConfigError
from botlib.ports import MarketData
from botlib.reporting.audit_trail import AuditTrail, audit_trail
from botlib.storage.store import Store

__all__ = ["Difference", "AuditReport", "audit", "BotTerms"]

_CLOSE = 1e-9  # relative: a price or fee this close is the same number
_FIELDS = (
    ("price", "the venue's fill price"), ("fee", "the venue's fee"),
    ("qty", "the fill's quantity"), ("realized_pnl", "the P&L after those fills"),
)  # fmt: skip


@dataclass(frozen=True)
class Difference:
    when: str
    kind: str  # cycle | trade | missing trade | extra trade
    live: str
    replay: str
    cause: str


@dataclass(frozen=True)
class BotTerms:
    """The live bot's terms the replay must share: costs, sizing, the venue stop, analyst."""

    cash: float = 100_000.0
    fee_rate: float = 0.0025
    slippage_bps: float = 5.0
    stop_band_pct: float | None = 0.5
    sizing: Sizing = field(default_factory=Sizing)
    analyst: str = "rules"


@dataclass(frozen=True)
class AuditReport:
    symbol: str
    start: datetime
    end: datetime
    cycles: int
    differences: list[Difference]
    replay: BacktestResult

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([d.__dict__ for d in self.differences],
                            columns=["when", "kind", "live", "replay", "cause"])  # fmt: skip


def audit(
    db_path: Path | str, symbol: str, start: datetime | None = None,
    end: datetime | None = None, *, market: MarketData, terms: BotTerms,
    directory: Path | str, cache_db: Path | str | None = None,
) -> AuditReport:  # fmt: skip
    """Replay `symbol`'s cycles of `start`..`end` (default: all of them) and compare."""
    with Store(db_path, read_only=True) as store:
        asset = store.get_asset(symbol)
        trail = audit_trail(store, symbol, iso(start) or "", iso(end) or "9999")
    if not trail.cycles:
        raise ConfigError(f"{db_path} has no {symbol} cycles in that period")
    times = [t for t in (parse_time(c["started_at"]) for c in trail.cycles) if t is not None]
    first, last = times[0], times[-1]
    replay = run_backtest(
        symbol, first, last, timeframe=asset.timeframe, analyst=terms.analyst, path="engine",
        cash=terms.cash, fee_rate=terms.fee_rate, slippage_bps=terms.slippage_bps,
        market=_AtCycles(market, times), stop_band_pct=terms.stop_band_pct,
        sizing=terms.sizing, directory=directory, cache_db=cache_db, llm_cache="replay",
    )  # fmt: skip
    found = _cycles(trail, replay) + _trades(trail, replay)
    return AuditReport(symbol, first, last, len(trail.cycles), sorted(found, key=_when), replay)


class _AtCycles:
    """The market, with the replay's cycles at the bot's own cycle times (a scheduler's clock
    is never exactly on the bar: the replay must look at the same instants)."""

    def __init__(self, market: MarketData, times: list[datetime]) -> None:
        self._market, self._times = market, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._market, name)

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        return self._market.bars(symbol, timeframe, end, limit)

    def latest_price(self, symbol: str, at: datetime) -> float:
        return self._market.latest_price(symbol, at)

    def cycle_times(self, start: datetime, end: datetime) -> list[datetime]:
        return [t for t in self._times if start <= t <= end]


def _when(diff: Difference) -> str:
    return diff.when


def _cycles(trail: AuditTrail, replay: BacktestResult) -> list[Difference]:
    """Each live cycle's action against the replay's cycle at the same clock."""
    with Store(replay.db_path, read_only=True) as store:
        replayed = {
            r["started_at"]: r for r in audit_trail(store, replay.symbol, "", "9999").cycles
        }
    found = []
    for live in trail.cycles:
        other = replayed.get(live["started_at"])
        theirs = other["action"] if other else "no cycle"
        if other is not None and live["status"] == other["status"] and live["action"] == theirs:
            continue
        mine = f"{live['status']} {live['action'] or ''}".strip()
        found.append(Difference(live["started_at"], "cycle", mine, str(theirs),
                                _cause(live, trail)))  # fmt: skip
    return found


def _cause(live: dict[str, Any], trail: AuditTrail) -> str:
    if live["status"] != "ok":
        return f"the live cycle {live['status']}: {live['reason']}"
    manual = [a for a in trail.actions if a["ts"] <= live["started_at"]]
    if manual:
        return f"a manual action before it: {manual[-1]['action']} ({manual[-1]['message']})"
    return "unexplained"


def _trades(trail: AuditTrail, replay: BacktestResult) -> list[Difference]:
    """Trades matched by client order id (deterministic per cycle): missing, extra, changed."""
    live = {t["client_order_id"]: t for t in trail.trades}
    ours = {t["client_order_id"]: t for t in replay.trades[TRADE_COLUMNS].to_dict("records")}
    found = []
    for cid in sorted(live.keys() | ours.keys()):
        a, b = live.get(cid), ours.get(cid)
        if a is None or b is None:
            kind = "missing trade" if a is None else "extra trade"
            when = (a or b or {}).get("created_at", "")
            why = (
                _manual(trail, when) if a is not None else "the replay traded where the bot did not"
            )
            found.append(Difference(str(when), kind, _trade(a), _trade(b), why))
            continue
        for name, cause in _FIELDS:
            if not _same(a[name], b[name]):
                found.append(Difference(a["created_at"], "trade", f"{cid} {name} {a[name]}",
                                        f"{b[name]}", cause))  # fmt: skip
    return found


def _manual(trail: AuditTrail, when: str) -> str:
    acts = [a for a in trail.actions if a["ts"] <= when]
    return f"a manual action: {acts[-1]['action']} ({acts[-1]['message']})" if acts else (
        "the bot traded where the replay did not")  # fmt: skip


def _trade(trade: dict[str, Any] | None) -> str:
    if trade is None:
        return "-"
    return f"{trade['client_order_id']} {trade['side']} {trade['qty']:.8g} @ {trade['price']:.8g}"


def _same(a: Any, b: Any) -> bool:
    """Equal numbers (within `_CLOSE`), or both missing (None, or NaN from a frame)."""
    x, y = _number(a), _number(b)
    if x is None or y is None:
        return x is None and y is None
    return abs(x - y) <= _CLOSE * max(1.0, abs(x))


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)
