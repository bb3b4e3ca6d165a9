"""What every analyst receives and returns, so the engine logs them all the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from botlib.models import Account, AssetSettings, Decision, Position

__all__ = ["MarketContext", "AnalystResult"]


@dataclass(frozen=True)
class MarketContext:
    """Everything an analyst may look at: bars (with indicators) up to `now`, never later."""

    symbol: str
    now: datetime
    bars: pd.DataFrame
    asset: AssetSettings
    account: Account
    position: Position | None
    price: float
    smc: dict[str, Any] = field(default_factory=dict)  # botlib.smc.summary at the last bar

    @property
    def last_bar_time(self) -> datetime:
        return self.bars.index[-1].to_pydatetime()


@dataclass(frozen=True)
class AnalystResult:
    """A decision plus the audit trail that goes into `ai_decision_logs`."""

    decision: Decision
    analyst: str
    model: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    prompt: Any = None
    response: Any = None
    raw_response: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    error: str | None = None
