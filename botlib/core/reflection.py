"""Reflections on closed trades: gather the trade and its decisions, ask the analyst, store it.

The engine calls `reflect_pending` at the end of every cycle, outside any transaction (an LLM
call can take seconds), so a reflection a crash prevented is written by the next cycle.
A failed reflection is stored with its error, so it is never retried into a loop.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from botlib.clock import iso
from botlib.ports import Analyst, CallRecord, ReflectionResult, TradeReview
from botlib.storage.store import Store

__all__ = ["trade_review", "generate_reflection", "reflect_pending", "pending_trades"]

log = logging.getLogger(__name__)


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
    )


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
