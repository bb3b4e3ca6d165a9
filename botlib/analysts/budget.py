"""The LLM spend guard: once today's spend reaches the budget, the model is not called.

Wrapping the analyst (rather than checking in the engine) keeps the engine unaware of prices,
and guards reflections with the same budget as decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from botlib.models import Decision
from botlib.ports import (
    BUDGET_REACHED,
    Analyst,
    AnalystResult,
    CallRecord,
    Clock,
    MarketContext,
    ReflectionResult,
    TradeReview,
)

__all__ = ["BudgetGuard"]


class BudgetGuard:
    """Answer HOLD (and skip reflections) without calling `inner` once the budget is spent."""

    def __init__(
        self,
        inner: Analyst,
        spent_today: Callable[[datetime], float],
        limit_usd: float,
        clock: Clock,
    ) -> None:
        self.inner, self.spent_today, self.clock = inner, spent_today, clock
        self.limit_usd = limit_usd
        self.name = inner.name

    @property
    def model(self) -> str | None:
        return getattr(self.inner, "model", None)

    def _over(self, now: datetime) -> str | None:
        spent = self.spent_today(now)
        if spent < self.limit_usd:
            return None
        return (
            f"{BUDGET_REACHED}: {spent:.4f} of {self.limit_usd:.2f} USD spent today (UTC);"
            " raise the budget (BOTLIB_MAX_LLM_USD_PER_DAY, or the operator's risk limits)"
            " or wait for tomorrow"
        )

    def decide(self, context: MarketContext) -> AnalystResult:
        why = self._over(context.now)
        if why is None:
            return self.inner.decide(context)
        decision = Decision.hold(context.symbol, BUDGET_REACHED)
        return AnalystResult(decision, self.name, self.model, call=CallRecord(error=why))

    def reflect(self, review: TradeReview) -> ReflectionResult:
        why = self._over(self.clock.now())
        if why is None:
            return self.inner.reflect(review)
        return ReflectionResult(
            review.describe(), "", "", [], self.name, self.model, CallRecord(error=why)
        )
