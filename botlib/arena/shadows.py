"""The live arena's shadows: other analysts deciding on the live cycle's context, paper only.

Per asset one analyst is live (it places orders). Shadows (`BOTLIB_SHADOWS`, names from the
arena file `BOTLIB_ARENA_FILE`) run after each live cycle that asked its analyst, every
`BOTLIB_SHADOW_EVERY`-th cycle: each gets the identical bars, features, SMC summary and price
(`FixedFeatures` hands the live frame to a shadow `Engine`), decides, passes the same checks and
risk gate, and trades in its own simulated books (`SimBroker` on the live market's prices, the
simulator's fees and resting stops) in its own database, `<db>.arena/<name>.db`, where its
cycles, decision logs (prompt, raw answer, tokens, cost, latency, under its own name), trades
and equity land exactly as a live cycle's do.

A shadow never touches the live cycle: it runs after the live cycle committed, and any failure
(a missing key, a broken database, a crash) is logged and returned, never raised. Model shadows
spend from the same daily budget as the live analyst but only what it leaves: their guard counts
the live spend and every shadow's, so shadows stop first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from botlib.arena.analysts import arena_analyst
from botlib.clock import day_start
from botlib.core.engine import Engine
from botlib.core.orders.protection import Protection
from botlib.models import AssetSettings, CycleReport, CycleStatus
from botlib.ports import Analyst, Clock, MarketContext, MarketData
from botlib.reporting.arena_board import shadow_folder
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker

__all__ = ["FixedFeatures", "Shadows", "ShadowBooks", "shadow_folder"]

log = logging.getLogger(__name__)


class FixedFeatures:
    """The live cycle's frame and SMC summary, handed unchanged to a shadow's engine."""

    def __init__(self, context: MarketContext) -> None:
        self.context = context

    def features(self, asset: AssetSettings, now: datetime) -> pd.DataFrame:
        return self.context.bars

    def summary(self, features: pd.DataFrame) -> dict[str, Any]:
        return self.context.smc


@dataclass(frozen=True)
class ShadowBooks:
    """A shadow account's terms: the simulator's cash, fee and slippage, the venue's stop."""

    cash: float = 100_000.0
    fee_rate: float = 0.0025
    slippage_bps: float = 5.0
    protection: Protection | None = None


class Shadows:
    """Run the configured shadows after a live cycle (`after`), each in its own database."""

    def __init__(
        self, analysts: Mapping[str, Any], folder: Path, market: MarketData, clock: Clock, *,
        books: ShadowBooks = ShadowBooks(), every: int = 1, budget_usd: float = 5.0,
        live_spent: Callable[[datetime], float] = lambda now: 0.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.analysts, self.folder, self.market, self.clock = analysts, folder, market, clock
        self.books, self.every, self.budget_usd = books, every, budget_usd
        self.live_spent, self.environ = live_spent, environ or {}

    def due(self, cycles_run: int) -> bool:
        """Whether the live cycle numbered `cycles_run` (1 = the first) gets shadows."""
        return bool(self.analysts) and cycles_run % self.every == 0

    def after(self, live: Engine, report: CycleReport) -> dict[str, CycleReport | str]:
        """Run every shadow on the context `live` just decided on; return each one's report or
        the error that stopped it. Nothing when the live cycle did not ask its analyst."""
        context = live.last_context
        if report.status is not CycleStatus.OK or context is None:
            return {}
        self.folder.mkdir(parents=True, exist_ok=True)
        outcome: dict[str, CycleReport | str] = {}
        for name, spec in self.analysts.items():
            try:
                outcome[name] = self._shadow(name, spec, context, report.cycle_id)
            except Exception as exc:  # a shadow's failure is its own: logged, never raised
                log.warning("shadow %s failed: %s: %s", name, type(exc).__name__, exc)
                outcome[name] = f"{type(exc).__name__}: {exc}"
        return outcome

    def _shadow(
        self, name: str, spec: Any, context: MarketContext, live_cycle: str
    ) -> CycleReport:  # fmt: skip
        with Store(self.folder / f"{name}.db") as store:
            store.ensure_asset(context.symbol, **_asset_fields(context.asset))
            books = self.books
            broker = SimBroker(
                store, self.market, self.clock, cash=books.cash, fee_rate=books.fee_rate,
                slippage_bps=books.slippage_bps,
            )  # fmt: skip
            engine = Engine(self.market, broker, self._analyst(name, spec, store), store,
                            clock=self.clock, protection=books.protection,
                            features=FixedFeatures(context))  # fmt: skip
            return engine.run_cycle(context.symbol, force=True, cycle_id=f"{live_cycle}-{name}")

    def _analyst(self, name: str, spec: Any, store: Store) -> Analyst:
        return arena_analyst(name, spec, store, self.clock, environ=self.environ,
                             budget_usd=self.budget_usd, spent=self.spent)  # fmt: skip

    def spent(self, now: datetime) -> float:
        """Today's LLM spend of the live analyst and of every shadow (the shared budget)."""
        since = day_start(now)
        total = self.live_spent(now)
        for path in sorted(self.folder.glob("*.db")):
            with Store(path, read_only=True) as store:
                total += store.llm_spend_since(since)
        return total


def _asset_fields(asset: AssetSettings) -> dict[str, Any]:
    """The live asset's settings for the shadow's copy (its books, its timeframe)."""
    return asset.model_dump(include={"timeframe", "interval_minutes", "position_size_pct",
                                     "stop_loss_pct", "take_profit_pct"})  # fmt: skip
