"""Baseline analysts: the textbook strategies an AI analyst has to beat.

`BuyAndHold` buys once and holds, `Flat` never trades: the arena ranks every analyst against
them (a model that cannot beat holding, or not trading, after its fees and LLM spend is noise).

`SmaCross` buys when the fast simple moving average of the closes crosses above the slow one
and sells when it crosses back: the strategy every backtesting library shows first, so the
engine path can be measured against one (`make bench` runs it beside backtesting.py). It is also
the smallest example of a custom analyst: a `name`, `decide` (context in, `Decision` out) and
`reflect`; pass an instance to `run_backtest(analyst=...)` or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from botlib.models import Action, Decision
from botlib.ports import AnalystResult, CallRecord, MarketContext, ReflectionResult, TradeReview

__all__ = ["SmaCross", "BuyAndHold", "Flat"]


@dataclass
class SmaCross:
    """BUY all in (`size_pct` of equity, the risk gate's cap still applies) on a golden cross of
    SMA(`fast`) over SMA(`slow`) of the closes; SELL on the death cross; HOLD otherwise."""

    fast: int = 10
    slow: int = 30
    size_pct: float = 100.0
    name: str = "sma_cross"

    def decide(self, context: MarketContext) -> AnalystResult:
        close = context.bars["close"].to_numpy(dtype=float)
        action, why = Action.HOLD, "no crossing"
        if len(close) > self.slow:
            now = close[-self.fast :].mean() - close[-self.slow :].mean()
            before = close[-self.fast - 1 : -1].mean() - close[-self.slow - 1 : -1].mean()
            if now > 0 >= before:
                action, why = Action.BUY, f"SMA({self.fast}) crossed above SMA({self.slow})"
            elif now < 0 <= before:
                action, why = Action.SELL, f"SMA({self.fast}) crossed below SMA({self.slow})"
        else:
            why = f"fewer than {self.slow + 1} bars"
        decision = Decision(
            symbol=context.symbol,
            action=action,
            confidence=0.0 if action is Action.HOLD else 1.0,
            position_size_pct=self.size_pct if action is Action.BUY else 0.0,
            reasoning=f"{action.value}: {why}",
        )
        model = f"sma-{self.fast}-{self.slow}"
        return AnalystResult(decision, self.name, model, call=CallRecord(output_mode="rules"))

    def reflect(self, review: TradeReview) -> ReflectionResult:
        """A one-line review: a baseline has nothing to learn."""
        return ReflectionResult(
            summary=review.describe(),
            what_worked="the crossing" if review.realized_pnl > 0 else "fees and limits held",
            what_failed="nothing material" if review.realized_pnl > 0 else "a false crossing",
            suggestions=[],
            analyst=self.name,
            call=CallRecord(output_mode="rules"),
        )


@dataclass
class BuyAndHold:
    """BUY `size_pct` of equity on the first cycle that is flat, then HOLD: the market's own
    return, net of one entry's fee. Its target sits at 100x the price and its stop as far below
    as the asset allows (`max_stop_pct`, 10 % by default): a decision without levels would get
    the asset's 2 % / 4 % defaults and trade, and no stop at all is not allowed."""

    size_pct: float = 100.0
    name: str = "buy_and_hold"

    def decide(self, context: MarketContext) -> AnalystResult:
        if context.position is not None:
            return _hold(self.name, context, "holding since the first cycle")
        decision = Decision(
            symbol=context.symbol, action=Action.BUY, confidence=1.0,
            position_size_pct=self.size_pct, reasoning="BUY: buy and hold",
            stop_loss=_widest_stop(context), take_profit=round(context.price * 100, 2),
        )  # fmt: skip
        return AnalystResult(decision, self.name, "baseline", call=CallRecord(output_mode="rules"))

    def reflect(self, review: TradeReview) -> ReflectionResult:
        return _no_lesson(self.name, review)


@dataclass
class Flat:
    """HOLD every cycle: the zero line (cash, no fees, no spend)."""

    name: str = "flat"

    def decide(self, context: MarketContext) -> AnalystResult:
        return _hold(self.name, context, "never trades")

    def reflect(self, review: TradeReview) -> ReflectionResult:
        return _no_lesson(self.name, review)


def _widest_stop(context: MarketContext) -> float:
    """The lowest stop the asset allows below the price (a hair inside `max_stop_pct`)."""
    return round(context.price * (1 - 0.999 * context.asset.max_stop_pct / 100), 8)


def _hold(name: str, context: MarketContext, why: str) -> AnalystResult:
    decision = Decision.hold(context.symbol, f"HOLD: {why}")
    return AnalystResult(decision, name, "baseline", call=CallRecord(output_mode="rules"))


def _no_lesson(name: str, review: TradeReview) -> ReflectionResult:
    return ReflectionResult(
        summary=review.describe(), what_worked="", what_failed="", suggestions=[],
        analyst=name, call=CallRecord(output_mode="rules"),
    )  # fmt: skip
