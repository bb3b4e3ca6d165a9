"""The research arena: every analyst over the same history, ranked net of fees and LLM spend.

Each analyst of the arena's configuration (`botlib.arena.config`) replays the same bars through
its own backtest (`run_backtest`, one new database each, in one folder per arena run): the same
cycle times, the same simulated venue, fees, slippage and resting stops, the same starting cash.
Model analysts answer from the replay cache (`cache="replay"`, $0 and identical on every rerun)
or call their endpoint and record (`"record"`): `estimate` says beforehand what that costs.
Sizing is each analyst's own (its decisions' `position_size_pct`): the asset's and the
account's caps are lifted to 100 % (`ARENA_SIZING`, or `sizing=`) so buy-and-hold holds
everything; the rules analyst sizes by the asset's position size times its confidence, so it
bets up to all in there too (`sizing=Sizing(10, 100)` gives it the live 10 %).

`ArenaResult.leaderboard()` ranks by P&L after fees and LLM spend; `statistics()` adds the
block-bootstrap intervals (`botlib.arena.stats`) that say whether a lead is more than luck.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from botlib.analysts.factory import LlmConfig
from botlib.analysts.pricing import training_cutoff
from botlib.arena.analysts import offline_analyst
from botlib.arena.stats import BENCHMARK, BootstrapReport, block_bootstrap
from botlib.backtest.results import BACKTEST_DIR, BacktestResult
from botlib.backtest.run import LLM_CACHE_DB, Sizing, run_backtest
from botlib.errors import BotlibError, ConfigError
from botlib.ports import Analyst, MarketData

__all__ = [
    "ArenaResult", "Entrant", "run_arena", "estimate", "Estimate", "ARENA_SIZING", "new_arena_dir",
]  # fmt: skip

log = logging.getLogger(__name__)
ARENA_SIZING = Sizing(position_pct=100, max_position_pct=100)
# What one decision call costs in tokens, measured on the shipped prompt (`make bench`:
# ~1,350 prompt tokens with the schema outside it) and a typical structured answer.
PROMPT_TOKENS, COMPLETION_TOKENS = 1_400, 250


@dataclass(frozen=True)
class Entrant:
    """One analyst's run: its result, or the error that stopped it (the others still ran)."""

    name: str
    description: str
    kind: str = "rules"  # the spec's kind (llm: a model, whose calls count)
    result: BacktestResult | None = None
    error: str | None = None
    model_cutoff: str | None = None  # the model's training cutoff, when configured

    @property
    def llm_cost(self) -> float:
        return float(self.result.llm.get("cost_usd", 0.0)) if self.result else 0.0


@dataclass(frozen=True)
class ArenaResult:
    """The arena's runs in the configured order, and the ranking built from them."""

    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    cash: float
    entrants: list[Entrant] = field(default_factory=list)

    @property
    def finished(self) -> list[Entrant]:
        return [e for e in self.entrants if e.result is not None]

    def equity(self) -> pd.DataFrame:
        """The finished analysts' equity curves side by side (identical cycle times)."""
        curves = {e.name: e.result.equity for e in self.finished if e.result is not None}
        return pd.DataFrame(curves)

    def leaderboard(self) -> pd.DataFrame:
        """One row per analyst, best first by P&L after fees and LLM spend."""
        rows = [_row(e, self.cash) for e in self.entrants]
        table = pd.DataFrame(rows)
        ranked = table.sort_values("pnl_after_llm", ascending=False, na_position="last")
        ranked.insert(0, "rank", range(1, len(ranked) + 1))
        return ranked.reset_index(drop=True)

    def statistics(
        self, *, benchmark: str | None = BENCHMARK, replicates: int = 2000, seed: int = 0
    ) -> BootstrapReport:
        """Block-bootstrap intervals of each return and each pairwise difference, and each
        analyst's probability of beating `benchmark` (when it finished), on the paired curves."""
        curves = self.equity()
        bench = benchmark if benchmark in curves.columns else None
        return block_bootstrap(curves, benchmark=bench, replicates=replicates, seed=seed)

    def warnings(self) -> list[str]:
        """Say which model may have seen the replayed prices (its training cutoff is later)."""
        return [
            f"{e.name}: the model may have seen these prices (training cutoff {e.model_cutoff},"
            f" the run starts {self.start:%Y-%m-%d})"
            for e in self.entrants
            if e.model_cutoff is not None and e.model_cutoff >= f"{self.start:%Y-%m-%d}"
        ]


def _row(entrant: Entrant, cash: float) -> dict[str, Any]:
    result = entrant.result
    if result is None:
        return {"analyst": entrant.name, "error": entrant.error, "pnl_after_llm": None}
    m = result.metrics
    final = float(result.equity.iloc[-1]) if len(result.equity) else cash
    fees = float(result.trades["fee"].sum()) if len(result.trades) else 0.0
    return {
        "analyst": entrant.name, "return_pct": result.return_pct,
        "pnl_after_fees": final - cash, "llm_spend": entrant.llm_cost,
        "pnl_after_llm": final - cash - entrant.llm_cost, "fees": fees,
        "trades": m.n_trades, "win_rate_pct": None if m.win_rate is None else m.win_rate * 100,
        "max_drawdown_pct": m.max_drawdown_pct, "sharpe": m.sharpe,
        "llm_calls": int(result.llm.get("calls", 0)) if entrant.kind == "llm" else 0,
        "error": None,
    }  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """What recording the model analysts would cost before any call is made."""

    calls: dict[str, int]
    usd: dict[str, float | None]  # None: the model has no price

    @property
    def total_usd(self) -> float:
        return sum(v for v in self.usd.values() if v is not None)

    def describe(self) -> str:
        parts = [
            f"{name}: {calls:,} calls, ~{calls * PROMPT_TOKENS:,} prompt + "
            f"{calls * COMPLETION_TOKENS:,} completion tokens, "
            + ("no price" if self.usd[name] is None else f"~${self.usd[name]:,.2f}")
            for name, calls in self.calls.items()
        ]
        return "; ".join(parts) or "no model analysts: $0"


def estimate(
    analysts: Mapping[str, Any], cycles: int, cache: str = "replay"
) -> Estimate:  # fmt: skip
    """Calls, tokens and USD the model analysts would spend on `cycles` cycles (an upper bound:
    answers already in the replay cache cost nothing). Replaying costs $0."""
    calls: dict[str, int] = {}
    usd: dict[str, float | None] = {}
    for name, spec in analysts.items():
        if spec.kind != "llm":
            continue
        calls[name] = cycles if cache == "record" else 0
        price = spec.price_table().lookup(spec.model)
        cost = price.cost(PROMPT_TOKENS, COMPLETION_TOKENS) if price is not None else None
        usd[name] = None if cost is None else cost * calls[name]
    return Estimate(calls, usd)


def run_arena(
    analysts: Mapping[str, Any], symbol: str, start: datetime, end: datetime, *,
    timeframe: str = "15Min", cash: float = 100_000, fee_rate: float = 0.0025,
    slippage_bps: float = 5, stop_band_pct: float | None = 0.5,
    market: MarketData | None = None, directory: Path | str | None = None,
    cache: str = "replay", cache_db: Path | str | None = None,
    environ: Mapping[str, str] | None = None, budget_usd: float = 5.0, progress: bool = False,
    sizing: Sizing = ARENA_SIZING,
) -> ArenaResult:  # fmt: skip
    """Replay `start`..`end` once per analyst (name -> spec of `botlib.arena.config`); a failed
    analyst is an entrant with its error, the others run. Each run's database is
    `<directory>/<name>.db` (default: a new folder under data/backtests)."""
    from botlib.venues.sim import SimMarket

    if cache not in ("record", "replay"):
        raise ConfigError(f"cache {cache!r}: use replay ($0, recorded answers) or record")
    folder = Path(directory) if directory is not None else new_arena_dir(symbol, start)
    folder.mkdir(parents=True, exist_ok=True)
    common = {
        "symbol": symbol, "start": start, "end": end, "timeframe": timeframe, "cash": cash,
        "fee_rate": fee_rate, "slippage_bps": slippage_bps, "stop_band_pct": stop_band_pct,
        "market": market or SimMarket(), "progress": progress, "sizing": sizing,
        "llm_cache": cache, "cache_db": cache_db if cache_db is not None else LLM_CACHE_DB,
    }  # fmt: skip
    env = os.environ if environ is None else environ
    entrants = [
        _enter(name, spec, common, folder, env, budget_usd) for name, spec in analysts.items()
    ]
    return ArenaResult(symbol, timeframe, start, end, cash, entrants)


def new_arena_dir(symbol: str, start: datetime, parent: Path | str = BACKTEST_DIR) -> Path:
    """A new folder for one arena run's databases, named like a backtest (readable, unique)."""
    import uuid

    name = f"arena-{symbol.replace('/', '')}-{start:%Y%m%dT%H%M}-{uuid.uuid4().hex[:6]}"
    return Path(parent) / name


def _enter(
    name: str, spec: Any, common: dict[str, Any], folder: Path, environ: Mapping[str, str],
    budget_usd: float,
) -> Entrant:  # fmt: skip
    cutoff = getattr(spec, "training_cutoff", None)
    if cutoff is None and spec.kind == "llm":  # the built-in table's, for a known model
        cutoff = training_cutoff(spec.model)
    entrant = Entrant(name, spec.describe(), kind=spec.kind,
                      model_cutoff=None if cutoff is None else str(cutoff))  # fmt: skip
    try:
        analyst, llm = _build(spec, common["llm_cache"], environ, budget_usd)
        result = run_backtest(**common, analyst=analyst, llm=llm, db_path=folder / f"{name}.db")
    except BotlibError as exc:  # one analyst's failure is its row; the arena goes on
        log.warning("arena: %s failed: %s: %s", name, type(exc).__name__, exc)
        return replace(entrant, error=f"{type(exc).__name__}: {exc}")
    log.info("arena: %s %+.2f%% (%d trades)", name, result.return_pct, len(result.trades))
    return replace(entrant, result=result)


def _build(
    spec: Any, cache: str, environ: Mapping[str, str], budget: float
) -> tuple[str | Analyst, LlmConfig | None]:
    """The analyst `run_backtest` takes for a spec (and the model's configuration)."""
    offline = offline_analyst(spec)
    if offline is not None:
        return offline, None
    return "openai", spec.llm_config(environ, cache, budget)
