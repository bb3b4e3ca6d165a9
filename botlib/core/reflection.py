"""Reflections on closed trades: gather the trade and its decisions, ask the analyst, store it.

The engine calls `reflect_pending` at the end of every cycle, outside any transaction (an LLM
call can take seconds), so a reflection a crash prevented is written by the next cycle.
A failed reflection is stored with its error, so it is never retried into a loop.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from botlib.clock import iso
from botlib.core.orders.execution import PROTECT
from botlib.ports import Analyst, CallRecord, ReflectionResult, TradeReview
from botlib.storage.store import Store

__all__ = [
    "trade_review",
    "exit_note",
    "generate_reflection",
    "reflect_pending",
    "pending_trades",
    "price_text",
]

log = logging.getLogger(__name__)

# how a closing trade ended, by its `reason` (the venue's stop and a gap exit add the stop's levels)
_ENDINGS = {
    "take_profit": "take-profit at {price}",
    "signal": "sold on the analyst's SELL at {price}",
    "manual": "closed by the operator at {price}",
    "stop_loss": "stopped out by the bot's own stop-loss at market at {price}"
    " (no stop rested at the venue)",
    "guard_exit": "stopped out by the guard's stop-loss at market at {price} between cycles"
    " (no stop rested at the venue)",
}


def pending_trades(store: Store, symbol: str) -> list[int]:
    """Return ids of closing trades of `symbol` that have no reflection yet, oldest first."""
    return store.unreflected_trades(symbol)


def trade_review(store: Store, trade_id: int) -> TradeReview:
    """Describe closing trade `trade_id` with the entry before it and both decisions."""
    exit_ = store.trade(trade_id)
    entry = store.entry_before(exit_["symbol"], trade_id) or {}
    qty, price = float(exit_["qty"]), float(exit_["price"] or 0.0)
    pnl, fee = float(exit_["realized_pnl"]), float(exit_["fee"] or 0.0)
    entry_price = price - (pnl + fee) / qty if qty else price  # the executor's P&L, inverted
    return TradeReview(
        symbol=exit_["symbol"],
        trade_id=trade_id,
        qty=qty,
        entry_price=entry_price,
        exit_price=price,
        exit_reason=exit_["reason"],
        realized_pnl=pnl,
        fees=fee + float(entry.get("fee") or 0.0),
        entry_time=entry.get("filled_at") or entry.get("created_at"),
        exit_time=exit_["filled_at"] or exit_["created_at"],
        entry_decision=store.decision_summary(entry.get("decision_id")),
        exit_decision=store.decision_summary(exit_["decision_id"]),
        exit_note=exit_note(store, exit_),
    )


def exit_note(store: Store, exit_: dict[str, Any]) -> str:
    """Say how closing trade `exit_` ended: who or what sold, how, at what price.

    A venue-stop fill names its stop_limit's stop and limit (its own intent); a gap exit the
    limit of the stop that rested when the price fell through it.
    """
    reason, price = str(exit_["reason"]), price_text(float(exit_["price"] or 0.0))
    if reason == PROTECT:
        levels = _stop_levels(store.intent(exit_["client_order_id"]))
        return f"stopped out at the venue at {price} (resting stop_limit{levels})"
    if reason == "gap_exit":
        when = exit_["filled_at"] or exit_["created_at"]
        stop = store.last_intent(exit_["symbol"], PROTECT, when) or {}
        limit = f" {price_text(stop['limit_price'])}" if stop.get("limit_price") else ""
        level = f" (stop {price_text(stop['stop_price'])})" if stop.get("stop_price") else ""
        fell = f"the price fell through the resting stop's limit{limit}{level}"
        return f"gap exit at market at {price}: {fell}"
    return _ENDINGS.get(reason, "closed by {reason} at {price}").format(price=price, reason=reason)


def price_text(value: float) -> str:
    """Write a price for a sentence: thousands separated, no trailing zeros, no e-notation.

    >>> price_text(59000.0), price_text(58804.5), price_text(0.00001234)
    ('59,000', '58,804.5', '0.00001234')
    """
    text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.8f}"
    return text.rstrip("0").rstrip(".")


def _stop_levels(intent: dict[str, Any] | None) -> str:
    """The stop_limit's levels as ", stop X, limit Y" (empty when its intent is unknown)."""
    if not intent or intent.get("stop_price") is None or intent.get("limit_price") is None:
        return ""
    stop, limit = price_text(intent["stop_price"]), price_text(intent["limit_price"])
    return f", stop {stop}, limit {limit}"


def generate_reflection(
    store: Store, analyst: Analyst, trade_id: int, now: datetime, cycle_id: str | None = None
) -> ReflectionResult:
    """Ask `analyst` to review the closed trade and store the result (errors included)."""
    review = trade_review(store, trade_id)
    try:
        result = analyst.reflect(review)
    except Exception as exc:  # a reflection must never break the cycle that closed the trade
        log.warning("reflection failed: %s: %s", type(exc).__name__, exc)
        error = f"{type(exc).__name__}: {exc}"
        result = ReflectionResult(
            review.describe(), "", "", [], analyst.name, None, CallRecord(error=error)
        )
    store.add_reflection(
        {
            "symbol": review.symbol,
            "trade_id": trade_id,
            "cycle_id": cycle_id,
            "created_at": iso(now),
            "called_at": iso(datetime.now(UTC)),
            "analyst": result.analyst,
            "model": result.model,
            "content": _content(result),
            "what_worked": result.what_worked,
            "what_failed": result.what_failed,
            "suggestions": result.suggestions,
        }
        | result.call.columns()
    )
    return result


def reflect_pending(
    store: Store, analyst: Analyst, symbol: str, now: datetime, cycle_id: str | None = None
) -> int:
    """Reflect on every closed trade of `symbol` that has no reflection; return how many."""
    pending = pending_trades(store, symbol)
    for trade_id in pending:
        generate_reflection(store, analyst, trade_id, now, cycle_id)
    return len(pending)


def _content(result: ReflectionResult) -> str:
    parts = [result.summary]
    if result.what_worked:
        parts.append(f"Worked: {result.what_worked}")
    if result.what_failed:
        parts.append(f"Failed: {result.what_failed}")
    if result.suggestions:
        parts.append("Next: " + "; ".join(result.suggestions))
    if result.call.error:
        parts.append(f"(reflection error: {result.call.error})")
    return " ".join(parts)
