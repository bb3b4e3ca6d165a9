"""Alerts: a row in `alerts` for the dashboard and, when configured, a JSON POST to a webhook.

An alert says something needs a human: the account halted, an asset keeps failing, the LLM
budget is spent, the market data went stale. Each is raised once, not every cycle:

- `drawdown`, `daily_loss`, `llm_budget`: once per UTC day per symbol (None: the account);
- `stale_data`: once per hour per symbol;
- `cycle_failures`: once per streak, i.e. not again until the symbol has a cycle that did not
  fail (an ok or skipped cycle ends the streak).

The webhook URL is a secret (a Slack-style URL carries its own token): it is never logged or
stored; a failed delivery is recorded as `failed: <short reason>` and logged as a warning.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from botlib.clock import day_start, iso
from botlib.errors import ConfigError
from botlib.redact import scrub
from botlib.storage.store import Store

__all__ = ["Alerts", "KINDS", "recent_alerts"]

log = logging.getLogger(__name__)

KINDS: dict[str, str] = {  # kind -> the severity it is raised with
    "drawdown": "critical",
    "daily_loss": "critical",
    "cycle_failures": "critical",
    "llm_budget": "warning",
    "stale_data": "warning",
    "gap_exit": "critical",  # a resting stop was gapped through; the bot sold at market
    "protection": "critical",  # a position's protective stop could not be placed at the venue
    "unknown_order": "warning",  # an open order at the venue the bot did not place
}
_SEVERITIES = ("warning", "critical")
MAX_TIMEOUT_S = 5.0  # a webhook must never hold a cycle for long


class Alerts:
    """Record alerts in `store` and POST each new one to `webhook_url` (None: record only)."""

    def __init__(
        self, store: Store, webhook_url: str | None = None, timeout_s: float = MAX_TIMEOUT_S
    ) -> None:
        if webhook_url and urllib.parse.urlsplit(webhook_url).scheme not in ("http", "https"):
            raise ConfigError("BOTLIB_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
        self.store = store
        self._url = webhook_url or None
        self.timeout_s = min(timeout_s, MAX_TIMEOUT_S)

    def raise_alert(
        self,
        kind: str,
        message: str,
        *,
        now: datetime,
        severity: str | None = None,
        symbol: str | None = None,
        cycle_id: str | None = None,
    ) -> int | None:
        """Record (and send) the alert; return its id, or None when it was already raised.

        `severity` defaults to the kind's (`KINDS`).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; known: {', '.join(KINDS)}")
        severity = severity or KINDS[kind]
        if severity not in _SEVERITIES:
            raise ValueError(f"alert severity must be one of {_SEVERITIES}, not {severity!r}")
        if self._already_raised(kind, symbol, now):
            return None
        row = {
            "ts": iso(now),
            "kind": kind,
            "severity": severity,
            "symbol": symbol,
            "message": scrub(message),
            "cycle_id": cycle_id,
        }
        alert_id = self.store.add_alert(row)
        log.warning("alert %s (%s): %s", kind, severity, row["message"])
        if self._url is not None:
            delivery = self._post(self._url, {"source": "botlib", "id": alert_id} | row)
            self.store.set_alert_delivery(alert_id, delivery)
        return alert_id

    def _already_raised(self, kind: str, symbol: str | None, now: datetime) -> bool:
        return self.store.alert_since(kind, symbol, _window_start(self.store, kind, symbol, now))

    def _post(self, url: str, body: dict[str, Any]) -> str:
        """POST `body` as JSON; return `sent` or `failed: <reason>` (never raises)."""
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "botlib-alerts"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            return self._failed(body["kind"], f"HTTP {exc.code}")
        except urllib.error.URLError as exc:
            return self._failed(body["kind"], self._short(exc.reason))
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
            return self._failed(body["kind"], self._short(exc))
        return "sent"

    def _short(self, reason: object) -> str:
        """Describe a delivery error in a few words, with the URL and its host blanked out."""
        text = str(reason) or type(reason).__name__
        host = urllib.parse.urlsplit(self._url or "").hostname
        for secret in (self._url, host):
            if secret:
                text = text.replace(secret, "<webhook>")
        return text[:120]

    def _failed(self, kind: str, reason: str) -> str:
        log.warning("alert %s was not delivered to the webhook: %s", kind, reason)
        return f"failed: {reason}"


def _window_start(store: Store, kind: str, symbol: str | None, now: datetime) -> str:
    """Return since when an earlier alert of this kind and symbol still counts (ISO text)."""
    if kind == "stale_data":
        return iso(now - timedelta(hours=1)) or ""
    if kind == "cycle_failures":
        return store.last_good_cycle_at(symbol) or ""
    return iso(day_start(now)) or ""


def recent_alerts(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Return the newest alerts first (works on a read-only store, even one from before alerts)."""
    return store.recent_alerts(limit)
