"""Build an analyst by name: the rules, or an OpenAI-compatible model behind the spend guard.

`LlmConfig` is everything the model analyst needs; `botlib.app.wiring.llm_config` fills it in
from the settings, a backtest or a notebook may build one by hand. Keys stay `SecretStr`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from botlib.analysts.budget import BudgetGuard
from botlib.analysts.llm import CacheMode, ChatModel
from botlib.analysts.pricing import Price, PriceTable, load_prices
from botlib.analysts.rules import RulesAnalyst
from botlib.clock import day_start
from botlib.errors import ConfigError
from botlib.features.smc.higher import higher_timeframes
from botlib.models import TIMEFRAMES
from botlib.ports import (
    Analyst,
    AnalystResult,
    Clock,
    MarketContext,
    ReflectionResult,
    TradeReview,
)
from botlib.storage.llm_cache import LlmCache
from botlib.storage.store import Store

__all__ = [
    "ANALYSTS", "LlmConfig", "build_analyst", "HigherTimeframes", "with_higher_timeframes",
]  # fmt: skip

ANALYSTS = ("rules", "openai")


@dataclass(frozen=True)
class LlmConfig:
    """An OpenAI-compatible model: endpoint, bounds per call, prices, replay cache, budget."""

    api_key: SecretStr | None = None
    model: str = "gpt-4o"
    base_url: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2
    max_output_tokens: int = 700
    prices: Path | None = None  # a JSON file adding or replacing price entries
    price: Price | None = None  # this model's own price (an arena file's), over the table's
    cache: CacheMode = "off"
    budget_usd: float = 5.0  # per UTC day, decisions and reflections together
    temperature: float | None = 0.2  # None: the endpoint's default (some models accept no other)
    multi_timeframe: bool = False  # add the 4h and 1d structure to the prompt (`HigherTimeframes`)
    prompt_variant: str = "default"  # a key of `botlib.analysts.prompt.PROMPT_VARIANTS`


def build_analyst(
    name: str,
    store: Store,
    clock: Clock,
    llm: LlmConfig | None = None,
    cache_store: Store | None = None,
    spent: Callable[[datetime], float] | None = None,
) -> Analyst:
    """Return the analyst called `name` ("rules" or "openai"; the latter needs `llm`).

    The model's calls are logged and priced in `store`, whose spend today the guard checks
    (`spent`: another count of today's spend, e.g. a shadow's share of the live budget);
    `cache_store` keeps the replay cache elsewhere (backtests share one across runs).
    """
    if name == "rules":
        return RulesAnalyst()
    if name != "openai":
        raise ConfigError(f"analyst {name!r}: use one of {', '.join(ANALYSTS)}")
    from botlib.analysts.openai import OpenAIAnalyst, make_client

    llm = llm or LlmConfig()
    key = llm.api_key.get_secret_value() if llm.api_key else ""
    if not key and llm.cache != "replay":
        raise ConfigError(
            "BOTLIB_ANALYST=openai needs OPENAI_API_KEY (in the environment or .env);"
            " or BOTLIB_LLM_CACHE=replay to answer from recorded responses only"
        )
    client = make_client(key, llm.base_url, llm.timeout_s, llm.max_retries) if key else None
    chat = ChatModel(
        client,
        llm.model,
        prices=_prices(llm),
        cache=LlmCache(cache_store or store),
        cache_mode=llm.cache,
        max_completion_tokens=llm.max_output_tokens,
        temperature=llm.temperature,
    )
    if spent is None:
        spent = lambda now: store.llm_spend_since(day_start(now))  # noqa: E731
    model: Analyst = OpenAIAnalyst(chat, llm.prompt_variant)
    if llm.multi_timeframe:
        model = HigherTimeframes(model)
    return BudgetGuard(model, spent, llm.budget_usd, clock)


def _prices(llm: LlmConfig) -> PriceTable:
    """The price table (with `BOTLIB_LLM_PRICES`'s entries) and the model's own price over it."""
    table = load_prices(llm.prices)
    return table if llm.price is None else PriceTable(table.prices | {llm.model: llm.price})


class HigherTimeframes:
    """Give the analyst the 4h and 1d structure too (`smc.higher_timeframes` in its context),
    computed from the cycle's own bars (`botlib.features.smc.higher`): opt-in per analyst."""

    def __init__(self, inner: Analyst) -> None:
        self.inner, self.name = inner, inner.name
        self.model = getattr(inner, "model", None)

    def decide(self, context: MarketContext) -> AnalystResult:
        return self.inner.decide(with_higher_timeframes(context))

    def reflect(self, review: TradeReview) -> ReflectionResult:
        return self.inner.reflect(review)


def with_higher_timeframes(context: MarketContext) -> MarketContext:
    """`context` with the higher timeframes' summary added to its SMC summary."""
    width = timedelta(minutes=TIMEFRAMES[context.asset.timeframe])
    higher = higher_timeframes(context.bars, width)
    return replace(context, smc=context.smc | {"higher_timeframes": higher})
