"""Analysts turn a market context into a `Decision`; see `base` for the shared types."""

from botlib.analysts.base import AnalystResult, MarketContext

__all__ = ["AnalystResult", "MarketContext"]
