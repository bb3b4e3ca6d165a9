"""Build an engine from settings: the one place that decides which adapters a run uses."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from botlib.ai_logs import spend_today
from botlib.alerts import Alerts
from botlib.analysts.budget import BudgetGuard
from botlib.analysts.rules import RulesAnalyst
from botlib.clock import ManualClock, SystemClock
from botlib.config import Settings
from botlib.engine import Engine, new_cycle_id, skip_reason_in
from botlib.errors import ConfigError
from botlib.guards import CycleAlerts
from botlib.limits import load_limits
from botlib.llm import ChatModel, LlmCache
from botlib.models import TIMEFRAMES, CycleReport, CycleStatus
from botlib.ports import Analyst, Broker, Clock, MarketData
from botlib.pricing import load_prices
from botlib.risk import RiskLimits
from botlib.sim import SimBroker, SimMarket
from botlib.store import Store

__all__ = [
    "build_engine",
    "build_alerts",
    "CycleRunner",
    "raise_if_unconfigured",
    "build_analyst",
    "build_alpaca",
    "ensure_assets",
    "backfill",
    "backfill_to_now",
    "run_cycles",
    "reports_table",
]

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
    # History replays record their alerts but page nobody about days long gone.
    settings = settings.model_copy(update={"alert_webhook_url": None})
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
    cycle_id: str | None = None,
) -> list[CycleReport]:
    """Run one cycle per symbol (the trading-cycle notebook's body); `at` fixes the sim clock.

    A tick passes one symbol and the `cycle_id` it archives the notebook under, so the row and
    the file match; by hand, any symbols (each cycle named by the engine). Raise ConfigError
    (after recording the failures) when no cycle could run at all.
    """
    from botlib.config import load_settings
    from botlib.logs import configure_logging, register_secrets

    if cycle_id is not None and len(symbols) != 1:
        raise ValueError("cycle_id names one cycle: give one symbol")
    settings = load_settings(db_path=db, mode=mode)
    configure_logging(settings.log_level, settings.log_json)
    register_secrets(settings.secret_values())
    clock: Clock = ManualClock(datetime.fromisoformat(at)) if at else SystemClock()
    with Store(settings.db_path) as store:
        ensure_assets(store, symbols)
        runner = CycleRunner(settings, store, clock)
        reports = [runner.run(symbol, force=force, cycle_id=cycle_id) for symbol in symbols]
    raise_if_unconfigured(reports)
    return reports


class CycleRunner:
    """Run assets' cycles, each with its own analyst (one engine per analyst, built on first use).

    An engine that cannot be built (a ConfigError such as a missing OPENAI_API_KEY) fails only
    the cycles of the assets that need it, each recorded with the message that says the fix.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self._engines: dict[str, Engine | ConfigError] = {}

    def engine_for(self, analyst: str) -> Engine:
        """Return the engine deciding with `analyst`; raise its ConfigError (remembered)."""
        if analyst not in self._engines:
            try:
                self._engines[analyst] = build_engine(
                    self.settings, self.store, self.clock, analyst
                )
            except ConfigError as exc:
                self._engines[analyst] = exc
        built = self._engines[analyst]
        if isinstance(built, ConfigError):
            raise built
        return built

    def run(self, symbol: str, *, force: bool = False, cycle_id: str | None = None) -> CycleReport:
        """Run the symbol's cycle if due (or `force`d); a ConfigError becomes a failed cycle."""
        asset = self.store.get_asset(symbol)
        now = self.clock.now()
        reason = None if force else skip_reason_in(self.store, asset, now)
        if reason:
            return CycleReport("-", symbol, CycleStatus.SKIPPED, reason=reason)
        analyst = asset.analyst or self.settings.resolved_analyst
        try:
            engine = self.engine_for(analyst)
        except ConfigError as exc:
            return self._record_failure(symbol, analyst, now, exc, cycle_id)
        return engine.run_cycle(symbol, force=force, cycle_id=cycle_id)

    def _record_failure(
        self, symbol: str, analyst: str, now: datetime, exc: ConfigError, cycle_id: str | None
    ) -> CycleReport:
        log.debug("%s cannot run: %s", symbol, exc)  # the cycle row and the report carry it
        cycle_id, store = cycle_id or new_cycle_id(symbol, now), self.store
        store.fail_running_cycles(symbol, now)
        store.start_cycle(cycle_id, symbol, now, mode=self.settings.resolved_mode, analyst=analyst)
        store.finish_cycle(cycle_id, now, status="failed", reason=str(exc), error="ConfigError")
        store.update_asset(symbol, last_cycle_at=now)  # retried next interval, not every tick
        watch = CycleAlerts(self._alerts(), self.settings.failure_alert_after)
        watch.after_failure(symbol, now, cycle_id)
        details = {"error": "ConfigError"}
        return CycleReport(cycle_id, symbol, CycleStatus.FAILED, reason=str(exc), details=details)

    def _alerts(self) -> Alerts | None:
        try:
            return build_alerts(self.settings, self.store)
        except ConfigError:  # a bad webhook URL: the failure itself is already recorded
            return Alerts(self.store)


def raise_if_unconfigured(reports: list[CycleReport]) -> None:
    """Raise the ConfigError when no asset that was due could run: the whole setup is wrong.

    Then a command-line tick says so in one line (as before per-asset analysts existed),
    after the failed cycles are recorded.
    """
    ran = [r for r in reports if r.cycle_id != "-"]
    if ran and all(r.details.get("error") == "ConfigError" for r in ran):
        raise ConfigError(ran[0].reason)


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
