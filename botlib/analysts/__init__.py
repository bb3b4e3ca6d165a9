"""Analysts turn a market context into a `Decision`; see `base` for the shared types."""

from botlib.analysts.base import (
    AnalystResult,
    CallRecord,
    MarketContext,
    ReflectionResult,
    TradeReview,
)

__all__ = ["AnalystResult", "CallRecord", "MarketContext", "ReflectionResult", "TradeReview"]
