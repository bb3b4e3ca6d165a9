"""The offline analyst: a deterministic trend/momentum strategy with the LLM's decision schema.

It needs no key and no network, so the demo, the tests and backtests run anywhere, and its
rule trace is logged like a prompt so every decision can be audited the same way.
"""

from __future__ import annotations

import time
from typing import Any

from botlib.analysts.schema import smc_reading
from botlib.analysts.smc_rules import SmcSetup, exit_setup, long_setup
from botlib.models import Action, Decision
from botlib.ports import AnalystResult, CallRecord, MarketContext, ReflectionResult, TradeReview

__all__ = ["RulesAnalyst"]


def _signals(row: Any) -> tuple[list[str], list[str]]:
    """Return the bullish and bearish reasons that hold on this bar."""
    bull, bear = [], []
    if row.sma_20 > row.sma_50:
        bull.append(f"SMA20 {row.sma_20:,.2f} > SMA50 {row.sma_50:,.2f} (uptrend)")
    else:
        bear.append(f"SMA20 {row.sma_20:,.2f} <= SMA50 {row.sma_50:,.2f} (downtrend)")
    if row.macd_hist > 0:
        bull.append(f"MACD histogram {row.macd_hist:+.4g} > 0")
    else:
        bear.append(f"MACD histogram {row.macd_hist:+.4g} <= 0")
    if 50 <= row.rsi < 70:
        bull.append(f"RSI {row.rsi:.1f} in 50-70 (momentum, not overbought)")
    elif row.rsi < 50:
        bear.append(f"RSI {row.rsi:.1f} < 50")
    if row.close > row.bb_middle:
        bull.append(f"close {row.close:,.2f} above Bollinger middle {row.bb_middle:,.2f}")
    else:
        bear.append(f"close {row.close:,.2f} below Bollinger middle {row.bb_middle:,.2f}")
    return bull, bear


class RulesAnalyst:
    """Trade indicator trend/momentum, with ICT/SMC setups from `context.smc` as confluence.

    BUY when flat on 3+ of 4 bullish signals in an uptrend, or on an SMC long setup (bullish
    structure in discount with a bullish FVG/OB below or a sell-side sweep) with 2+ of 4; the
    stop then goes just under the zone or sweep. SELL when long on RSI > 78, an SMC exit (fresh
    bearish CHoCH, buy-side sweep in premium) or 3+ bearish signals in a downtrend.
    """

    name = "rules"
    model = "rules-v1"

    def __init__(self, atr_stop: float = 2.0, atr_target: float = 3.0) -> None:
        self.atr_stop, self.atr_target = atr_stop, atr_target

    def decide(self, context: MarketContext) -> AnalystResult:
        started = time.perf_counter()
        row = context.bars.iloc[-1]
        bull, bear = _signals(row)
        setup = long_setup(context.smc)
        action, reasons = self._choose(context, bull, bear, row.rsi, setup)
        confluence = 0.25 if setup.found and action is Action.BUY else 0.0
        confidence = round(min(1.0, max(len(bull), len(bear)) / 4 + confluence), 2)
        size = context.asset.position_size_pct * confidence if action is Action.BUY else 0.0
        stop = take = None
        if action is Action.BUY:
            stop = float(row.close - self.atr_stop * row.atr)
            if setup.found and setup.stop_level is not None:
                below = setup.stop_level - 0.1 * float(row.atr)  # just under the zone or sweep
                stop = below if 0 < below < row.close else stop
            take = float(row.close + self.atr_target * row.atr)
        decision = Decision(
            symbol=context.symbol,
            action=action,
            confidence=confidence if action is not Action.HOLD else 0.0,
            position_size_pct=round(size, 4),
            stop_loss=stop if stop and stop > 0 else None,
            take_profit=take,
            reasoning=f"{action.value}: " + "; ".join(reasons),
            signals={
                "smc": smc_reading(context.smc).model_dump(),
                "bullish": len(bull),
                "bearish": len(bear),
                "rsi": round(float(row.rsi), 2),
            },
        )
        return AnalystResult(
            decision=decision,
            analyst=self.name,
            model=self.model,
            request=_request(context, row),
            call=CallRecord(
                prompt={"bullish": bull, "bearish": bear},
                response=decision.model_dump(mode="json"),
                latency_ms=(time.perf_counter() - started) * 1000,
                output_mode="rules",
            ),
        )

    def reflect(self, review: TradeReview) -> ReflectionResult:
        """Write a deterministic review, so sim mode keeps reflections without a model."""
        won = review.realized_pnl > 0
        entry = (review.entry_decision or {}).get("reasoning") or "no recorded entry decision"
        suggestions = []
        if review.exit_reason == "stop_loss":
            suggestions.append("wait for a stronger setup or widen the stop beyond the zone")
        if not won and review.exit_reason == "signal":
            suggestions.append("exit signal came after the move: tighten the take-profit")
        return ReflectionResult(
            summary=review.describe(),
            what_worked=f"entry: {entry[:300]}" if won else "fees and risk limits held",
            what_failed="nothing material" if won else f"{review.exit_reason} at a loss",
            suggestions=suggestions,
            analyst=self.name,
            model=self.model,
            call=CallRecord(response={"facts": review.describe()}, output_mode="rules"),
        )

    def _choose(
        self,
        context: MarketContext,
        bull: list[str],
        bear: list[str],
        rsi: float,
        setup: SmcSetup,
    ) -> tuple[Action, list[str]]:
        holding = context.position is not None and context.position.qty > 0
        if holding and rsi > 78:
            return Action.SELL, [f"RSI {rsi:.1f} > 78: take profits while overbought", *bear]
        smc_exit = exit_setup(context.smc)
        if holding and smc_exit.found:
            return Action.SELL, [*smc_exit.reasons, *bear]
        if not holding and setup.found and len(bull) >= 2:
            return Action.BUY, [*setup.reasons, *bull, f"SMC setup with {len(bull)}/4 bullish"]
        downtrend = bear and bear[0].startswith("SMA20")
        if holding and downtrend and len(bear) >= 3:
            return Action.SELL, [*bear, f"{len(bear)}/4 bearish in a downtrend while long"]
        uptrend = bull and bull[0].startswith("SMA20")
        if not holding and uptrend and len(bull) >= 3:
            return Action.BUY, [*bull, f"{len(bull)}/4 bullish while flat"]
        state = "long" if holding else "flat"
        return Action.HOLD, [f"{len(bull)}/4 bullish, {len(bear)}/4 bearish while {state}"]


def _request(context: MarketContext, row: Any) -> dict[str, Any]:
    """Return what the rules looked at (the log row's `request`)."""
    return {
        "symbol": context.symbol,
        "bar_time": context.last_bar_time.isoformat(),
        "close": float(row.close),
        "indicators": {k: _num(row[k]) for k in ("rsi", "macd_hist", "sma_20", "sma_50", "atr")},
        "position_qty": context.position.qty if context.position else 0.0,
        "smc": context.smc,
    }


def _num(value: Any) -> float | None:
    number = float(value)
    return None if number != number else round(number, 6)
