"""What the engine checks around a cycle: the account's trading state and the alerts to raise.

Kept out of `engine.py` so the cycle reads as a sequence of steps; every alert goes through
`CycleAlerts`, which never lets an alert (a full disk, a dead webhook) fail a cycle.
"""

from __future__ import annotations

import logging
from datetime import datetime

from botlib.clock import day_start, iso
from botlib.core.risk import RiskLimits, TradingStatus, trading_state
from botlib.ops.alerts import KINDS, Alerts
from botlib.ports import BUDGET_REACHED
from botlib.storage.store import Store

__all__ = ["CycleAlerts", "account_status", "day_start_equity"]

log = logging.getLogger(__name__)


def day_start_equity(store: Store, now: datetime) -> float | None:
    """Return the equity the UTC day of `now` began with.

    That is the last snapshot before 00:00 UTC, or the day's first snapshot when the bot did
    not run before today; None when there is neither.
    """
    midnight = iso(day_start(now))
    before = store.rows(
        "SELECT equity FROM equity_snapshots WHERE ts < ? ORDER BY ts DESC, id DESC LIMIT 1",
        [midnight],
    )
    if not before:
        before = store.rows(
            "SELECT equity FROM equity_snapshots WHERE ts >= ? AND ts <= ? ORDER BY ts, id LIMIT 1",
            [midnight, iso(now)],
        )
    return float(before[0]["equity"]) if before else None


def account_status(store: Store, equity: float, now: datetime, limits: RiskLimits) -> TradingStatus:
    """Judge `equity` against the recorded peak and the day's start (see `trading_state`)."""
    peak = store.rows("SELECT max(equity) AS peak FROM equity_snapshots")[0]["peak"]
    return trading_state(equity, peak or equity, limits, day_start_equity(store, now))


class CycleAlerts:
    """Raise the engine's alerts through `alerts` (None: alerts are off)."""

    def __init__(self, alerts: Alerts | None, failure_alert_after: int = 3) -> None:
        if failure_alert_after < 1:
            raise ValueError("failure_alert_after must be at least 1")
        self.alerts = alerts
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
            last = self.alerts.store.rows(
                "SELECT status, reason FROM cycles WHERE symbol = ? AND status != 'running'"
                " ORDER BY started_at DESC, rowid DESC LIMIT ?",
                [symbol, k],
            )
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
            self.alerts.raise_alert(
                kind, message, now=now, severity=KINDS[kind], symbol=symbol, cycle_id=cycle_id
            )
        except Exception:  # an alert is advisory: never fail the cycle over one
            log.warning("could not record the %s alert", kind, exc_info=True)
