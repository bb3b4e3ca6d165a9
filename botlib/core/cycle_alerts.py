"""The alerts a cycle raises: halts, stale data, the LLM budget, failure streaks.

Kept out of `engine.py` so the cycle reads as a sequence of steps; every alert goes through
`CycleAlerts`, which never lets an alert (a full disk, a dead webhook) fail a cycle. Where the
alerts go is the `AlertSink` port (`botlib.ops.alerts.Alerts`), or nowhere.
"""

from __future__ import annotations

import logging
from datetime import datetime

from botlib.core.risk import TradingStatus
from botlib.ports import BUDGET_REACHED, AlertSink
from botlib.storage.store import Store

__all__ = ["CycleAlerts"]

log = logging.getLogger(__name__)


class CycleAlerts:
    """Raise the engine's alerts through `alerts` (None: alerts are off)."""

    def __init__(
        self, store: Store, alerts: AlertSink | None, failure_alert_after: int = 3
    ) -> None:
        if failure_alert_after < 1:
            raise ValueError("failure_alert_after must be at least 1")
        self.store, self.alerts = store, alerts
        self.failure_alert_after = failure_alert_after

    def halted(self, status: TradingStatus, now: datetime, cycle_id: str) -> None:
        """Alert that the account is HALTED (account-wide: once a day, not once per asset)."""
        if status.halt is None:
            return
        message = f"trading halted ({status.limit}): {status.detail}; exits only"
        self._raise(status.halt, message, now, None, cycle_id)

    def stale(self, symbol: str, message: str, now: datetime, cycle_id: str) -> None:
        self._raise("stale_data", f"{symbol}: {message}; cycle skipped", now, symbol, cycle_id)

    def budget(self, call_error: str | None, now: datetime, cycle_id: str) -> None:
        """Alert when the budget guard refused the analyst's call (HOLD without asking)."""
        if call_error and call_error.startswith(BUDGET_REACHED):
            self._raise("llm_budget", call_error, now, None, cycle_id)

    def after_failure(self, symbol: str, now: datetime, cycle_id: str) -> None:
        """Alert once the symbol's last K finished cycles all failed (once per streak)."""
        if self.alerts is None:
            return
        k = self.failure_alert_after
        try:
            last = self.store.last_finished_cycles(symbol, k)
        except Exception:
            log.warning("could not check %s's failure streak", symbol, exc_info=True)
            return
        if len(last) == k and all(row["status"] == "failed" for row in last):
            message = f"{symbol}: the last {k} cycles failed; last error: {last[0]['reason']}"
            self._raise("cycle_failures", message, now, symbol, cycle_id)

    def _raise(
        self, kind: str, message: str, now: datetime, symbol: str | None, cycle_id: str
    ) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(kind, message, now=now, symbol=symbol, cycle_id=cycle_id)
        except Exception:  # an alert is advisory: never fail the cycle over one
            log.warning("could not record the %s alert", kind, exc_info=True)
