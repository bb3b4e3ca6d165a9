"""Build an engine from settings: the one place that decides which adapters a run uses."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from botlib.ai_logs import spend_today
from botlib.analysts.budget import BudgetGuard
from botlib.analysts.rules import RulesAnalyst
from botlib.clock import ManualClock, SystemClock
from botlib.config import Settings
from botlib.engine import Engine
from botlib.errors import ConfigError
from botlib.llm import ChatModel, LlmCache
from botlib.models import TIMEFRAMES, CycleReport
from botlib.ports import Analyst, Broker, Clock, MarketData
from botlib.pricing import load_prices
from botlib.risk import RiskLimits
from botlib.sim import SimBroker, SimMarket
from botlib.store import Store

__all__ = [
    "build_engine",
    "build_analyst",
    "build_alpaca",
    "ensure_assets",
    "backfill",
    "backfill_to_now",
    "run_cycles",
    "reports_table",
]

log = logging.getLogger(__name__)


def build_engine(settings: Settings, store: Store, clock: Clock | None = None) -> Engine:
    """Wire market, broker and analyst for the configured mode: sim, or Alpaca paper/live."""
    clock = clock or SystemClock()
    market: MarketData
    broker: Broker
    if settings.resolved_mode == "sim":
        market = SimMarket()
        broker = SimBroker(
            store,
            market,
            clock,
            cash=settings.sim_cash,
            fee_rate=settings.sim_fee_rate,
            slippage_bps=settings.sim_slippage_bps,
        )
    else:
        market, broker = build_alpaca(settings, store)
    risk = RiskLimits(max_drawdown_pct=settings.max_drawdown_pct)
    analyst = build_analyst(settings, store, clock)
    return Engine(market, broker, analyst, store, risk=risk, clock=clock)


def build_alpaca(settings: Settings, store: Store) -> tuple[MarketData, Broker]:
    """Return Alpaca market data and broker; live trading needs an explicit opt-in."""
    from botlib.alpaca.broker import AlpacaBroker
    from botlib.alpaca.http import data_client, trading_client
    from botlib.alpaca.market import AlpacaMarket

    mode = settings.resolved_mode
    if mode == "live" and settings.live_confirm.strip().lower() != "yes":
        raise ConfigError(
            "BOTLIB_MODE=live trades real money: also set BOTLIB_LIVE_CONFIRM=yes to confirm"
            " (or use BOTLIB_MODE=paper)"
        )
    key, secret = settings.alpaca_api_key, settings.alpaca_secret_key
    missing = [n for n, v in (("ALPACA_API_KEY", key), ("ALPACA_SECRET_KEY", secret)) if not v]
    if missing or key is None or secret is None:
        raise ConfigError(
            f"BOTLIB_MODE={mode} needs {' and '.join(missing)} (environment or .env);"
            " or BOTLIB_MODE=sim for the simulator"
        )
    timeout = settings.alpaca_timeout_s
    trading = trading_client(
        key.get_secret_value(), secret.get_secret_value(), paper=mode == "paper",
        url=settings.alpaca_trading_url, timeout_s=timeout,
    )  # fmt: skip
    log.info("trading on the Alpaca %s account", mode.upper())
    broker = AlpacaBroker(trading, mode, fill_wait_s=settings.alpaca_fill_wait_s)
    return AlpacaMarket(data_client(settings.alpaca_data_url, timeout), store), broker


def build_analyst(settings: Settings, store: Store, clock: Clock) -> Analyst:
    """Return the rules analyst, or the OpenAI analyst behind the daily spend guard."""
    if settings.resolved_analyst == "rules":
        return RulesAnalyst()
    from botlib.analysts.openai import OpenAIAnalyst, make_client

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key and settings.llm_cache != "replay":
        raise ConfigError(
            "BOTLIB_ANALYST=openai needs OPENAI_API_KEY (in the environment or .env);"
            " or BOTLIB_LLM_CACHE=replay to answer from recorded responses only"
        )
    client = (
        make_client(key, settings.openai_base_url, settings.openai_timeout_s,
                    settings.openai_max_retries)
        if key else None
    )  # fmt: skip
    chat = ChatModel(
        client,
        settings.openai_model,
        prices=load_prices(settings.llm_prices),
        cache=LlmCache(store),
        cache_mode=settings.llm_cache,
        max_completion_tokens=settings.llm_max_output_tokens,
    )
    return BudgetGuard(
        OpenAIAnalyst(chat),
        lambda now: spend_today(store, now),
        settings.max_llm_usd_per_day,
        clock,
    )


def ensure_assets(store: Store, symbols: Iterable[str], **defaults: Any) -> None:
    """Create missing `trading_assets` rows (existing rows keep their settings)."""
    for symbol in symbols:
        store.ensure_asset(symbol, **defaults)


def backfill(
    settings: Settings,
    store: Store,
    symbols: list[str],
    start: datetime,
    end: datetime,
    step: timedelta,
    progress: bool = False,
) -> list[CycleReport]:
    """Replay cycles from `start` to `end` through the real engine on a manual clock.

    The OpenAI analyst is swapped for the rules analyst unless its answers come from the replay
    cache: days of history would be hundreds of paid calls nobody asked for.
    """
    if settings.resolved_mode != "sim":
        raise ConfigError(
            f"backfill replays history in the simulator, not on Alpaca (BOTLIB_MODE is"
            f" {settings.resolved_mode}): use BOTLIB_MODE=sim with its own BOTLIB_DB"
        )
    if settings.resolved_analyst == "openai" and settings.llm_cache != "replay":
        log.info("backfill decides with the offline rules analyst (BOTLIB_LLM_CACHE=replay"
                 " replays recorded LLM answers instead)")  # fmt: skip
        settings = settings.model_copy(update={"analyst": "rules"})
    clock = ManualClock(start)
    engine = build_engine(settings, store, clock)
    reports: list[CycleReport] = []
    steps = int((end - start) / step) + 1
    for _ in tqdm(range(steps), desc="backfill", disable=not progress, unit="step"):
        reports.extend(engine.run_cycle(symbol) for symbol in symbols)
        clock.advance(step)
    return reports


def backfill_to_now(
    settings: Settings, store: Store, days: float, progress: bool = False
) -> list[CycleReport]:
    """Fill the gap from the last recorded cycle (at most `days` ago) to now, a bar per step."""
    if days <= 0:
        raise ConfigError("--days must be positive")
    assets = store.list_assets()
    if not assets:
        return []
    now = datetime.now(UTC)
    step = timedelta(minutes=min(TIMEFRAMES[a.timeframe] for a in assets))
    start = now - timedelta(days=days)
    last = store.rows("SELECT max(started_at) AS t FROM cycles")[0]["t"]
    if last:
        start = max(start, datetime.fromisoformat(last) + step)
    if start > now:
        return []
    symbols = [a.symbol for a in assets]
    return backfill(settings, store, symbols, start, now, step, progress=progress)


def run_cycles(
    symbols: list[str],
    db: str,
    mode: str = "sim",
    force: bool = False,
    at: str | None = None,
) -> list[CycleReport]:
    """Run one cycle per symbol (the trading-cycle notebook's body); `at` fixes the sim clock."""
    from botlib.config import load_settings
    from botlib.logs import configure_logging, register_secrets

    settings = load_settings(db_path=db, mode=mode)
    configure_logging(settings.log_level, settings.log_json)
    register_secrets(settings.secret_values())
    clock: Clock = ManualClock(datetime.fromisoformat(at)) if at else SystemClock()
    store = Store(settings.db_path)
    try:
        ensure_assets(store, symbols)
        engine = build_engine(settings, store, clock)
        return [engine.run_cycle(symbol, force=force) for symbol in symbols]
    finally:
        store.close()


def reports_table(reports: list[CycleReport]) -> Any:
    """Return the reports as a DataFrame, one row per cycle, for notebooks."""
    import pandas as pd

    columns = ["symbol", "status", "action", "orders", "equity", "reason", "cycle_id"]
    rows = [
        {
            "symbol": r.symbol,
            "status": r.status.value,
            "action": r.action or "",
            "orders": ",".join(r.orders),
            "equity": None if r.equity is None else round(r.equity, 2),
            "reason": r.reason,
            "cycle_id": r.cycle_id,
        }
        for r in reports
    ]
    return pd.DataFrame(rows, columns=columns)
