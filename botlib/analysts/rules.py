"""The offline analyst: a deterministic trend/momentum strategy with the LLM's decision schema.

It needs no key and no network, so the demo, the tests and backtests run anywhere, and its
rule trace is logged like a prompt so every decision can be audited the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botlib.analysts.schema import smc_reading
from botlib.analysts.smc_rules import LimitZone, SmcSetup, exit_setup, limit_zone, long_setup
from botlib.models import Action, Decision
from botlib.ports import AnalystResult, CallRecord, MarketContext, ReflectionResult, TradeReview

__all__ = ["RulesAnalyst", "RuleParams", "choose", "confidence", "entry_levels"]


@dataclass(frozen=True, slots=True)
class RuleParams:
    """The rules' numbers, stated once: the analyst and the fast backtest both read them."""

    atr_stop: float = 2.0  # stop this many ATRs below the close
    atr_target: float = 3.0  # take-profit this many ATRs above it
    zone_pad_atr: float = 0.1  # an SMC stop sits this many ATRs under its zone or sweep
    rsi_band: tuple[float, float] = (50.0, 70.0)  # momentum without being overbought: bullish
    rsi_exit: float = 78.0  # sell a long above this RSI
    trend_votes: int = 3  # bullish signals (of 4) for an entry in an uptrend
    setup_votes: int = 2  # bullish signals (of 4) for an entry on an SMC setup
    exit_votes: int = 3  # bearish signals (of 4) for an exit in a downtrend
    fresh_choch_bars: int = 3  # a bearish CHoCH younger than this many bars exits a long
    # Buy with a limit at the top of a bullish FVG/OB under the price instead of at the market.
    # Off by default: the fast backtest replays market entries only (its fills are immediate).
    limit_entries: bool = False


def choose(
    p: RuleParams, holding: bool, uptrend: bool, n_bull: int, n_bear: int, rsi: float,
    setup: bool, smc_exit: bool,
) -> Action:  # fmt: skip
    """The rules' action on one bar, in the order `RulesAnalyst` explains it."""
    if holding:
        exits = rsi > p.rsi_exit or smc_exit or (not uptrend and n_bear >= p.exit_votes)
        return Action.SELL if exits else Action.HOLD
    enters = (setup and n_bull >= p.setup_votes) or (uptrend and n_bull >= p.trend_votes)
    return Action.BUY if enters else Action.HOLD


def confidence(n_bull: int, n_bear: int, setup: bool) -> float:
    """Signal agreement (of 4), a quarter more for an SMC setup behind a buy, at most 1."""
    return round(min(1.0, max(n_bull, n_bear) / 4 + 0.25 * setup), 2)


def entry_levels(
    p: RuleParams, close: float, atr: float, stop_level: float | None
) -> tuple[float | None, float]:
    """A buy's stop and take-profit: ATR multiples, the stop just under an SMC zone if any."""
    stop = float(close - p.atr_stop * atr)
    if stop_level is not None:
        below = stop_level - p.zone_pad_atr * float(atr)
        stop = below if 0 < below < close else stop
    return (stop if stop > 0 else None), float(close + p.atr_target * atr)


def _signals(row: Any, p: RuleParams) -> tuple[list[str], list[str]]:
    """Return the bullish and bearish reasons that hold on this bar."""
    low, high = p.rsi_band
    bull, bear = [], []
    if row.sma_20 > row.sma_50:
        bull.append(f"SMA20 {row.sma_20:,.2f} > SMA50 {row.sma_50:,.2f} (uptrend)")
    else:
        bear.append(f"SMA20 {row.sma_20:,.2f} <= SMA50 {row.sma_50:,.2f} (downtrend)")
    if row.macd_hist > 0:
        bull.append(f"MACD histogram {row.macd_hist:+.4g} > 0")
    else:
        bear.append(f"MACD histogram {row.macd_hist:+.4g} <= 0")
    if low <= row.rsi < high:
        bull.append(f"RSI {row.rsi:.1f} in {low:g}-{high:g} (momentum, not overbought)")
    elif row.rsi < low:
        bear.append(f"RSI {row.rsi:.1f} < {low:g}")
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
    bearish CHoCH, buy-side sweep in premium) or 3+ bearish signals in a downtrend. The numbers
    are `RuleParams` (the fast backtest replays the same ones). With `limit_entries` a BUY while
    the price is above a bullish FVG/OB becomes a limit buy at that zone's top, its stop under
    the zone and its levels measured from the limit price.
    """

    name = "rules"
    model = "rules-v1"

    def __init__(self, params: RuleParams | None = None) -> None:
        self.params = params or RuleParams()

    def decide(self, context: MarketContext) -> AnalystResult:
        started = time.perf_counter()
        row = context.bars.iloc[-1]
        bull, bear = _signals(row, self.params)
        setup = long_setup(context.smc)
        action, reasons = self._choose(context, bull, bear, row.rsi, setup)
        buy = action is Action.BUY
        score = confidence(len(bull), len(bear), setup.found and buy)
        size = context.asset.position_size_pct * score if buy else 0.0
        zone, stop, take = self._levels(context, row, setup) if buy else (None, None, None)
        if zone is not None:
            reasons.append(_limit_reason(zone, context.price))
        decision = Decision(
            symbol=context.symbol,
            action=action,
            confidence=score if action is not Action.HOLD else 0.0,
            position_size_pct=round(size, 4),
            order_type="market" if zone is None else "limit",
            limit_price=None if zone is None else zone.top,
            stop_loss=stop,
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
        if review.exit_reason in _STOPPED_OUT:
            suggestions.append("wait for a stronger setup or widen the stop beyond the zone")
        if review.exit_reason == "gap_exit":
            suggestions.append(
                "the price gapped through the stop's limit: widen the band or size down"
            )
        if not won and review.exit_reason == "signal":
            suggestions.append("exit signal came after the move: tighten the take-profit")
        return ReflectionResult(
            summary=review.describe(),  # says how it ended (`exit_note`)
            what_worked=f"entry: {entry[:300]}" if won else "fees and risk limits held",
            what_failed="nothing material" if won else f"{review.exit_reason} at a loss",
            suggestions=suggestions,
            analyst=self.name,
            model=self.model,
            call=CallRecord(response={"facts": review.describe()}, output_mode="rules"),
        )

    def _levels(
        self, context: MarketContext, row: Any, setup: SmcSetup
    ) -> tuple[LimitZone | None, float | None, float]:
        """A buy's limit zone (None: buy at the market), stop-loss and take-profit.

        A limit entry measures its levels from the zone's top, where it fills, with the stop
        under the zone (or under the setup's lower zone or sweep), as the checks require.
        """
        level = setup.stop_level if setup.found else None
        zone = limit_zone(context.smc, context.price) if self.params.limit_entries else None
        if zone is None:
            stop, take = entry_levels(self.params, row.close, row.atr, level)
            return None, stop, take
        below = zone.bottom if level is None else min(level, zone.bottom)
        stop, take = entry_levels(self.params, zone.top, row.atr, below)
        return zone, stop, take

    def _choose(
        self,
        context: MarketContext,
        bull: list[str],
        bear: list[str],
        rsi: float,
        setup: SmcSetup,
    ) -> tuple[Action, list[str]]:
        """`choose`'s action, with the reasons that decided it (the log's rule trace)."""
        p = self.params
        holding = context.position is not None and context.position.qty > 0
        uptrend = bool(bull) and bull[0].startswith("SMA20")
        smc_exit = exit_setup(context.smc, p.fresh_choch_bars) if holding else SmcSetup(False)
        action = choose(p, holding, uptrend, len(bull), len(bear), rsi, setup.found, smc_exit.found)
        if action is Action.SELL and rsi > p.rsi_exit:
            return action, [f"RSI {rsi:.1f} > {p.rsi_exit:g}: take profits while overbought", *bear]
        if action is Action.SELL and smc_exit.found:
            return action, [*smc_exit.reasons, *bear]
        if action is Action.SELL:
            return action, [*bear, f"{len(bear)}/4 bearish in a downtrend while long"]
        if action is Action.BUY and setup.found and len(bull) >= p.setup_votes:
            return action, [*setup.reasons, *bull, f"SMC setup with {len(bull)}/4 bullish"]
        if action is Action.BUY:
            return action, [*bull, f"{len(bull)}/4 bullish while flat"]
        state = "long" if holding else "flat"
        return action, [f"{len(bull)}/4 bullish, {len(bear)}/4 bearish while {state}"]


# exits at a stop: the venue's resting stop_limit, the bot's own stop, the guard's
_STOPPED_OUT = frozenset({"venue_stop", "stop_loss", "guard_exit"})


def _limit_reason(zone: LimitZone, price: float) -> str:
    return (
        f"limit entry at the top of the {zone.name} {zone.bottom:,.6g}-{zone.top:,.6g}"
        f" under the price {price:,.6g}"
    )


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
