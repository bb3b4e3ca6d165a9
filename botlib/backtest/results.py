"""A backtest's report: the result type, and its tables in the run's own database.

`run_backtest` (in `botlib.backtest`) writes `backtest_runs`, `backtest_trades` and
`backtest_equity` into the new database of each run; `load_backtest` and `list_backtests` read
them back, so a report outlives the process that computed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from botlib.clock import iso
from botlib.errors import ConfigError
from botlib.reporting.analytics import Metrics, drawdown, periods_per_year
from botlib.storage.backtests import backtest_rows, backtest_run, save_report
from botlib.storage.store import Store

__all__ = [
    "BacktestResult", "save_result", "load_backtest", "list_backtests", "equity_series",
    "BACKTEST_DIR", "TRADE_COLUMNS", "Replay",
]  # fmt: skip

BACKTEST_DIR = Path("data/backtests")
# What identifies a trade across runs: no random ids (broker order id, cycle id) in here.
TRADE_COLUMNS = [
    "client_order_id", "symbol", "side", "reason", "qty", "price", "fee", "realized_pnl",
    "created_at",
]  # fmt: skip


@dataclass(frozen=True)
class Replay:
    """What either path hands the report: trades, the equity curve, cycles spent holding."""

    trades: pd.DataFrame
    equity: pd.Series
    held: int
    elapsed_s: float


@dataclass(frozen=True)
class BacktestResult:
    """One backtest: where it is stored, its trades, equity curve and statistics."""

    backtest_id: str
    db_path: Path
    symbol: str
    timeframe: str
    analyst: str
    path: str  # "engine" or "fast"
    start: datetime
    end: datetime
    cycles: int
    trades: pd.DataFrame
    equity: pd.Series
    metrics: Metrics
    return_pct: float
    buy_and_hold_pct: float
    exposure_pct: float
    elapsed_s: float
    llm: dict[str, float] = field(default_factory=dict)

    @property
    def bars_per_s(self) -> float:
        """Throughput: bars replayed per second of wall time."""
        return self.cycles / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    @property
    def drawdown(self) -> pd.Series:
        """Drawdown from the running peak, in percent (<= 0)."""
        return drawdown(self.equity) * 100

    def table(self, throughput: bool = False) -> pd.DataFrame:
        """The report's numbers as a two-column table (metric, value).

        `throughput` adds bars/s, which depends on the machine and its load: off by default
        so a rerun of the same backtest shows the same table (notebooks compared by nbval).
        """
        m = self.metrics
        rows: dict[str, Any] = {
            "bars replayed": self.cycles, "return %": self.return_pct,
            "buy and hold %": self.buy_and_hold_pct, "net P&L": m.total_pnl,
            "trades (closed)": m.n_trades, "win rate %": _pct(m.win_rate),
            "profit factor": m.profit_factor, "Sharpe": m.sharpe,
            "Sharpe bars/year": periods_per_year(pd.DatetimeIndex(self.equity.index))
            if len(self.equity) > 1 else None,
            "max drawdown %": m.max_drawdown_pct, "exposure %": self.exposure_pct,
            "fees": float(self.trades["fee"].sum()) if len(self.trades) else 0.0,
            "LLM calls": self.llm.get("calls", 0), "LLM tokens": self.llm.get("prompt_tokens", 0)
            + self.llm.get("completion_tokens", 0), "LLM cost $": self.llm.get("cost_usd", 0.0),
        }  # fmt: skip
        if throughput:
            rows["bars/s"] = self.bars_per_s
        return pd.DataFrame({"metric": list(rows), "value": list(rows.values())})


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def equity_series(times: list[str] | pd.DatetimeIndex, values: list[float]) -> pd.Series:
    """An equity curve from ISO times (or an index) and values, as the report stores it."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="ts")
    return pd.Series(values, index=index, name="equity", dtype=float)


def save_result(store: Store, result: BacktestResult) -> None:
    """Write the report tables (one transaction: a run is stored whole or not at all)."""
    run = {
        "id": result.backtest_id, "symbol": result.symbol, "timeframe": result.timeframe,
        "analyst": result.analyst, "path": result.path, "start": iso(result.start),
        "end": iso(result.end), "cycles": result.cycles, "elapsed_s": result.elapsed_s,
        "return_pct": result.return_pct, "buy_and_hold_pct": result.buy_and_hold_pct,
        "exposure_pct": result.exposure_pct, "metrics": json.dumps(result.metrics.as_dict()),
        "llm": json.dumps(result.llm), "created_at": iso(datetime.now(UTC)),
    }  # fmt: skip
    trades = result.trades.assign(backtest_id=result.backtest_id).to_dict("records")
    equity = [
        {"backtest_id": result.backtest_id, "ts": ts.isoformat(), "equity": float(value)}
        for ts, value in zip(result.equity.index, result.equity.to_numpy(), strict=True)
    ]
    save_report(store, run, trades, equity)


def load_backtest(db_path: Path | str) -> BacktestResult:
    """Read a stored run back (the report tables of its database)."""
    path = Path(db_path)
    if not path.exists():
        raise ConfigError(f"no backtest database at {path}")
    with Store(path, read_only=True) as store:
        run = backtest_run(store)
        if run is None:
            raise ConfigError(f"{path} holds no finished backtest")
        rows, curve = backtest_rows(store, TRADE_COLUMNS)
    trades = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    equity = equity_series([r["ts"] for r in curve], [r["equity"] for r in curve])
    m = json.loads(run["metrics"])
    return BacktestResult(
        backtest_id=run["id"], db_path=path, symbol=run["symbol"], timeframe=run["timeframe"],
        analyst=run["analyst"], path=run["path"], start=datetime.fromisoformat(run["start"]),
        end=datetime.fromisoformat(run["end"]), cycles=int(run["cycles"]), trades=trades,
        equity=equity, metrics=Metrics(**m), return_pct=run["return_pct"],
        buy_and_hold_pct=run["buy_and_hold_pct"], exposure_pct=run["exposure_pct"],
        elapsed_s=run["elapsed_s"], llm=json.loads(run["llm"]),
    )  # fmt: skip


def list_backtests(directory: Path | str = BACKTEST_DIR) -> pd.DataFrame:
    """One row per finished run found in `directory` (newest first), from the runs' summaries."""
    rows = []
    for path in sorted(Path(directory).glob("*.db")):
        with Store(path, read_only=True) as store:
            run = backtest_run(store)
        if run is None:
            continue  # an unfinished run, or the LLM cache
        keep = ("id", "symbol", "timeframe", "analyst", "path", "start", "end", "cycles")
        rows.append({k: run[k] for k in keep} | {
            "return %": run["return_pct"], "trades": json.loads(run["metrics"])["n_trades"],
            "db": str(path),
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.sort_values("start", ascending=False, ignore_index=True) if len(frame) else frame
