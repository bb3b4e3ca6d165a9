"""Is an asset due? The scheduler asks every minute, so this imports nothing heavy.

A tick with nothing due reads a few rows and exits; keeping pandas-ta, numba and the SDKs out
of this question keeps that tick well under a second.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botlib.models import AssetSettings

if TYPE_CHECKING:
    from botlib.storage.store import Store

__all__ = ["skip_reason", "skip_reason_in"]


def skip_reason(asset: AssetSettings, now: datetime, holding: bool = False) -> str | None:
    """Say why the asset should not run now (paused, not due), or None when it is due.

    A paused asset that still holds a position keeps its schedule: its cycles only watch the
    stop-loss and take-profit (pausing must not leave a position unprotected).
    """
    if asset.paused and not holding:
        return "paused"
    if asset.last_cycle_at is not None:
        due = asset.last_cycle_at + timedelta(minutes=asset.interval_minutes)
        if now < due - timedelta(seconds=1):
            return f"not due until {due:%Y-%m-%d %H:%M:%S}Z"
    return None


def skip_reason_in(store: Store, asset: AssetSettings, now: datetime) -> str | None:
    """`skip_reason`, knowing from `store` whether a paused asset still holds a position."""
    holding = asset.paused and store.get_position(asset.symbol) is not None
    return skip_reason(asset, now, holding)
