"""The engine path of a backtest: the real `Engine`, one cycle per bar on a manual clock.

Every cycle, decision log, trade and equity snapshot lands in the run's own database, exactly as
live cycles write them; any analyst replays here (the rules, a custom one, or OpenAI answering
from the replay cache).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import cast

import pandas as pd
from tqdm import tqdm

from botlib.analysts.factory import LlmConfig, build_analyst
from botlib.analysts.llm import CacheMode
from botlib.backtest.block_features import BlockFeatures
from botlib.backtest.results import TRADE_COLUMNS, Replay, equity_series
from botlib.backtest.venue_stop import fill_timeframe
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.core.orders.protection import Protection
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.ports import Analyst, MarketData
from botlib.storage.backtests import last_decision_error, replayed_equity, replayed_trades
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker

__all__ = ["replay_engine"]

_BATCH = 500  # cycles per commit


def replay_engine(
    store: Store, market: MarketData, symbol: str, times: list[datetime],
    costs: tuple[float, float, float], analyst: str | Analyst, llm: LlmConfig | None,
    cache: tuple[str, Path], progress: bool = False, protection: Protection | None = None,
    limits: RiskLimits | None = None,
) -> Replay:  # fmt: skip
    """Run one engine cycle per time with the simulated broker; return what the books hold.

    `costs`: (cash, fee rate, slippage bps). `cache`: (record | replay, the cache's database)
    for a model analyst; a replay stops at its first cache miss. `protection`: the stop that
    rests at the simulated venue (None: the bot's own stop, once a cycle). `limits`: the
    account's (the cap on one entry); default the live defaults.
    """
    cash, fee_rate, slippage_bps = costs
    clock = ManualClock(times[0])  # the replay's, and the LLM budget's, day
    with ExitStack() as resources:
        decider = _analyst(analyst, store, clock, llm, cache, resources)
        replaying = analyst == "openai" and cache[0] == "replay"
        broker = SimBroker(store, market, clock, cash=cash, fee_rate=fee_rate,
                           slippage_bps=slippage_bps,
                           fill_timeframe=fill_timeframe(market))  # fmt: skip
        features = BlockFeatures(market, store, symbol, store.get_asset(symbol).timeframe, times)
        engine = Engine(market, broker, decider, store, risk=limits or RiskLimits(), clock=clock,
                        protection=protection, features=features)  # fmt: skip
        held, began = 0, time.perf_counter()
        with tqdm(total=len(times), desc=f"backtest {symbol}", disable=not progress,
                  unit="bar") as bar:  # fmt: skip
            for first in range(0, len(times), _BATCH):
                # One commit per batch: the run's own file, discarded whole if the run fails;
                # each cycle's writes nest in it as they would commit live.
                with store.transaction():
                    for when in times[first : first + _BATCH]:
                        clock.set(when)
                        engine.run_cycle(symbol)
                        held += broker.position(symbol) is not None
                        if replaying:
                            _refuse_cache_miss(store, when)
                bar.update(min(_BATCH, len(times) - first))
        elapsed = time.perf_counter() - began
    trades = pd.DataFrame(replayed_trades(store, TRADE_COLUMNS), columns=TRADE_COLUMNS)
    snaps = replayed_equity(store)
    equity = equity_series([r["ts"] for r in snaps], [r["equity"] for r in snaps])
    return Replay(trades, equity, held, elapsed)


def _analyst(
    analyst: str | Analyst, store: Store, clock: ManualClock, llm: LlmConfig | None,
    cache: tuple[str, Path], resources: ExitStack,
) -> Analyst:  # fmt: skip
    if not isinstance(analyst, str):
        return analyst
    if analyst == "rules":
        return build_analyst("rules", store, clock)
    mode, path = cache
    configured = replace(llm or LlmConfig(), cache=cast(CacheMode, mode))  # record | replay
    path.parent.mkdir(parents=True, exist_ok=True)
    # The cache outlives the run (record once, replay many): it has its own database.
    cache_store = resources.enter_context(Store(path))
    return build_analyst("openai", store, clock, configured, cache_store=cache_store)


def _refuse_cache_miss(store: Store, when: datetime) -> None:
    """A replay with a hole would be a backtest of HOLDs the model never said: stop instead."""
    if (last_decision_error(store) or "").startswith("CacheMissError"):
        raise ConfigError(
            f"the replay cache has no answer for the cycle at {when:%Y-%m-%d %H:%M}Z (this"
            " model, these bars): record it first with llm_cache='record' (--llm-cache record)"
        )
