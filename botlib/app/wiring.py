"""Build an engine from settings: the one place that decides which adapters a run uses."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botlib.analysts import factory
from botlib.analysts.factory import LlmConfig
from botlib.app.config import Settings
from botlib.clock import SystemClock
from botlib.core.cycle_alerts import CycleAlerts
from botlib.core.engine import Engine
from botlib.core.orders.guard import Guard
from botlib.core.orders.protection import Protection
from botlib.errors import ConfigError
from botlib.ops.alerts import Alerts
from botlib.ops.limits import load_limits
from botlib.ports import Analyst, Broker, Clock, MarketData
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket

if TYPE_CHECKING:
    from botlib.arena.shadows import Shadows

__all__ = [
    "build_engine", "build_alerts", "build_analyst", "build_alpaca", "build_guard",
    "build_venue", "ensure_assets", "failure_watch", "llm_config", "protection",
]  # fmt: skip

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings, store: Store, clock: Clock | None = None, analyst: str | None = None
) -> Engine:
    """Wire market, broker and analyst for the configured mode: sim, or Alpaca paper/live.

    `analyst` ("rules", "openai" or an arena analyst's name) overrides the configured one (an
    asset's own choice). The risk limits and LLM budget are read from the store, so an
    operator's change applies from the next engine built, i.e. the next tick.
    """
    clock = clock or SystemClock()
    promoted = analyst is not None and analyst not in factory.ANALYSTS
    if analyst is not None and not promoted:
        settings = settings.model_copy(update={"analyst": analyst})
    market, broker = build_venue(settings, store, clock)
    limits = load_limits(store, settings.limits)
    if promoted:  # an arena analyst promoted to live (a ConfigError fails its asset's cycles)
        decider = promoted_analyst(settings, store, clock, str(analyst), limits.llm_budget_usd)
    else:
        decider = build_analyst(settings, store, clock, budget_usd=limits.llm_budget_usd)
    return Engine(
        market, broker, decider, store, risk=limits, clock=clock,
        alerts=build_alerts(settings, store), failure_alert_after=settings.failure_alert_after,
        protection=protection(settings), limit_expiry_bars=settings.limit_expiry_bars,
    )  # fmt: skip


def build_venue(settings: Settings, store: Store, clock: Clock) -> tuple[MarketData, Broker]:
    """Return the market and broker of the configured mode: the simulator, or Alpaca."""
    if settings.resolved_mode != "sim":
        return build_alpaca(settings, store)
    market = SimMarket()
    broker = SimBroker(
        store, market, clock, cash=settings.sim_cash, fee_rate=settings.sim_fee_rate,
        slippage_bps=settings.sim_slippage_bps,
    )  # fmt: skip
    return market, broker


def protection(settings: Settings) -> Protection | None:
    """The resting stop's settings, or None when BOTLIB_VENUE_STOPS=false (the bot's stop only)."""
    return Protection(settings.stop_limit_band_pct) if settings.venue_stops else None


def build_guard(settings: Settings, store: Store, clock: Clock) -> Guard:
    """Return the between-cycles guard on the configured venue (no analyst is built)."""
    market, broker = build_venue(settings, store, clock)
    return Guard(market, broker, store, protection(settings), build_alerts(settings, store))


def build_alerts(settings: Settings, store: Store) -> Alerts:
    """Return the alert recorder, posting to BOTLIB_ALERT_WEBHOOK_URL when it is set."""
    url = settings.alert_webhook_url
    return Alerts(store, url.get_secret_value() if url else None)


def failure_watch(settings: Settings, store: Store) -> CycleAlerts:
    """Return the failure-streak alerts for cycles that fail outside the engine (a setup
    error, a dead notebook kernel), as the engine raises them for its own failures."""
    try:
        alerts = build_alerts(settings, store)
    except ConfigError:  # a bad webhook URL: the failure itself is still recorded
        alerts = Alerts(store)
    return CycleAlerts(store, alerts, settings.failure_alert_after)


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


def llm_config(settings: Settings, budget_usd: float | None = None) -> LlmConfig:
    """Return the model analyst's configuration; `budget_usd` (the operator's limit) replaces
    BOTLIB_MAX_LLM_USD_PER_DAY when given."""
    return LlmConfig(
        api_key=settings.openai_api_key,
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        timeout_s=settings.openai_timeout_s,
        max_retries=settings.openai_max_retries,
        max_output_tokens=settings.llm_max_output_tokens,
        prices=settings.llm_prices,
        cache=settings.llm_cache,
        budget_usd=settings.max_llm_usd_per_day if budget_usd is None else budget_usd,
    )


def build_analyst(
    settings: Settings,
    store: Store,
    clock: Clock,
    budget_usd: float | None = None,
    cache_store: Store | None = None,
) -> Analyst:
    """Return the configured analyst: the rules, or the OpenAI analyst behind the spend guard."""
    llm = llm_config(settings, budget_usd)
    return factory.build_analyst(settings.resolved_analyst, store, clock, llm, cache_store)


def ensure_assets(store: Store, symbols: Iterable[str], **defaults: Any) -> None:
    """Create missing `trading_assets` rows (existing rows keep their settings)."""
    for symbol in symbols:
        store.ensure_asset(symbol, **defaults)


def arena_keys(analysts: dict[str, Any]) -> dict[str, str]:
    """The model analysts' key variables, from the environment or `.env`, registered as secrets
    (blanked in every log line) before any client is built."""
    import os

    from dotenv import dotenv_values

    from botlib.redact import register_secrets

    found = {k: v for k, v in dotenv_values(".env").items() if v is not None} | dict(os.environ)
    names = {spec.key_env for spec in analysts.values() if spec.kind == "llm"}
    keys = {name: found[name] for name in names if found.get(name)}
    register_secrets(list(keys.values()))
    return keys


def build_shadows(settings: Settings, store: Store, engine: Engine, clock: Clock) -> Shadows | None:
    """The live arena's shadows (`BOTLIB_SHADOWS`), or None when none are configured.

    A bad arena file or an unknown name raises ConfigError: the caller logs it and runs the
    live cycles without shadows.
    """
    if not settings.shadows:
        return None
    from botlib.arena.config import arena_from
    from botlib.arena.shadows import ShadowBooks, Shadows, shadow_folder
    from botlib.clock import day_start

    arena = arena_from(settings.arena_file)
    analysts = arena.select(list(settings.shadows))
    books = ShadowBooks(settings.sim_cash, settings.sim_fee_rate, settings.sim_slippage_bps,
                        protection(settings))  # fmt: skip
    return Shadows(
        analysts, shadow_folder(settings.db_path), engine.market, clock, books=books,
        every=settings.shadow_every, budget_usd=load_limits(store, settings.limits).llm_budget_usd,
        live_spent=lambda now: store.llm_spend_since(day_start(now)),
        environ=arena_keys(analysts),
    )  # fmt: skip


def promoted_analyst(
    settings: Settings, store: Store, clock: Clock, name: str, budget_usd: float
) -> Analyst:
    """The arena file's analyst `name`, deciding live (its calls logged in the bot's store)."""
    from botlib.arena.analysts import arena_analyst
    from botlib.arena.config import arena_from

    arena = arena_from(settings.arena_file)
    spec = arena.select([name])[name]
    keys = arena_keys({name: spec})
    return arena_analyst(name, spec, store, clock, environ=keys, budget_usd=budget_usd)
