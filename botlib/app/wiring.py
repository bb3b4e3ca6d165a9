"""Build an engine from settings: the one place that decides which adapters a run uses."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from botlib.analysts.budget import BudgetGuard
from botlib.analysts.llm import ChatModel
from botlib.analysts.pricing import load_prices
from botlib.analysts.rules import RulesAnalyst
from botlib.app.config import Settings
from botlib.clock import SystemClock
from botlib.core.engine import Engine
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.ops.alerts import Alerts
from botlib.ops.limits import load_limits
from botlib.ports import Analyst, Broker, Clock, MarketData
from botlib.reporting.ai_logs import spend_today
from botlib.storage.llm_cache import LlmCache
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket

__all__ = ["build_engine", "build_alerts", "build_analyst", "build_alpaca", "ensure_assets"]

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings, store: Store, clock: Clock | None = None, analyst: str | None = None
) -> Engine:
    """Wire market, broker and analyst for the configured mode: sim, or Alpaca paper/live.

    `analyst` ("rules" or "openai") overrides the configured one (an asset's own choice). The
    risk limits and LLM budget are read from the store, so an operator's change applies from
    the next engine built, i.e. the next tick.
    """
    clock = clock or SystemClock()
    if analyst is not None:
        settings = settings.model_copy(update={"analyst": analyst})
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
    limits = load_limits(store, settings)
    risk = RiskLimits(
        max_drawdown_pct=limits.max_drawdown_pct,
        max_daily_loss_pct=limits.max_daily_loss_pct,
        max_position_pct=limits.max_position_pct,
    )
    decider = build_analyst(settings, store, clock, budget_usd=limits.llm_budget_usd)
    return Engine(
        market, broker, decider, store, risk=risk, clock=clock,
        alerts=build_alerts(settings, store), failure_alert_after=settings.failure_alert_after,
    )  # fmt: skip


def build_alerts(settings: Settings, store: Store) -> Alerts:
    """Return the alert recorder, posting to BOTLIB_ALERT_WEBHOOK_URL when it is set."""
    url = settings.alert_webhook_url
    return Alerts(store, url.get_secret_value() if url else None)


def build_alpaca(settings: Settings, store: Store) -> tuple[MarketData, Broker]:
    """Return Alpaca market data and broker; live trading needs an explicit opt-in."""
    from botlib.venues.alpaca.broker import AlpacaBroker
    from botlib.venues.alpaca.http import data_client, trading_client
    from botlib.venues.alpaca.market import AlpacaMarket

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


def build_analyst(
    settings: Settings,
    store: Store,
    clock: Clock,
    budget_usd: float | None = None,
    cache_store: Store | None = None,
) -> Analyst:
    """Return the rules analyst, or the OpenAI analyst behind the daily spend guard.

    `budget_usd` (the operator's limit) replaces BOTLIB_MAX_LLM_USD_PER_DAY when given.
    `cache_store` keeps the replay cache elsewhere than `store` (backtests share one).
    """
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
        cache=LlmCache(cache_store or store),
        cache_mode=settings.llm_cache,
        max_completion_tokens=settings.llm_max_output_tokens,
    )
    return BudgetGuard(
        OpenAIAnalyst(chat),
        lambda now: spend_today(store, now),
        settings.max_llm_usd_per_day if budget_usd is None else budget_usd,
        clock,
    )


def ensure_assets(store: Store, symbols: Iterable[str], **defaults: Any) -> None:
    """Create missing `trading_assets` rows (existing rows keep their settings)."""
    for symbol in symbols:
        store.ensure_asset(symbol, **defaults)
