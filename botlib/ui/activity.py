"""The activity feed: the newest cycles, fills, AI decisions, risk denials, alerts and operator
actions, newest first, as one HTML table whose value is replaced on refresh.

The events come from `botlib.reporting.activity.read_activity`. Every text from the database
is escaped here: reasoning and alert messages are untrusted.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from botlib.reporting.activity import ActivityItem
from botlib.ui.shaping.text import NONE, money, percent, quantity, signed_money

__all__ = ["ActivityFeed", "CAUSES", "activity_html", "item_text", "trade_cause", "LABELS"]

# rendering ------------------------------------------------------------------------------------

_CLIP = 200  # characters of a reasoning or message shown in one row
LABELS = {
    "cycle": "cycle",
    "denied": "risk denied",
    "trade": "fill",
    "decision": "AI decision",
    "alert": "alert",
    "operator": "operator",
}
# a fill's `reason` in words: why it happened
CAUSES = {
    "signal": "signal",
    "stop_loss": "stop-loss (the bot's own stop)",
    "take_profit": "take-profit",
    "venue_stop": "stopped out at the venue",
    "gap_exit": "gap exit at market (the price gapped below the stop's limit)",
    "guard_exit": "guard exit at market",
    "manual": "manual order",
}


def _clip(text: object) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= _CLIP else value[: _CLIP - 1] + "…"


def _cycle(row: dict[str, Any]) -> str:
    parts = [str(row.get("status") or "?"), str(row.get("action") or "")]
    why = row.get("reason") or row.get("error")
    text = " · ".join(p for p in parts if p)
    return f"{text} — {_clip(why)}" if why else text


def _denied(row: dict[str, Any]) -> str:
    return f"{row.get('action') or '?'} denied: {_clip(row.get('risk_reason') or NONE)}"


def trade_cause(row: dict[str, Any]) -> str:
    """Say why a fill happened, from its reason and its order's type and prices.

    >>> trade_cause({"reason": "venue_stop", "stop_price": 59000.0})
    'stopped out at the venue at $59,000.00'
    >>> trade_cause({"reason": "signal", "order_type": "limit", "limit_price": 57000.0})
    'signal, limit order at $57,000.00'
    >>> trade_cause({"reason": "take_profit"}), trade_cause({"reason": "rebalance"})
    ('take-profit', 'rebalance')
    """
    reason = row.get("reason")
    cause = CAUSES.get(str(reason), str(reason or NONE))
    if reason == "venue_stop" and row.get("stop_price") is not None:
        return f"{cause} at {money(row['stop_price'])}"
    if reason == "signal" and row.get("order_type") == "limit":
        return f"{cause}, limit order at {money(row.get('limit_price'))}"
    return cause


def _trade(row: dict[str, Any]) -> str:
    side = str(row.get("side") or "?").upper()
    qty = NONE if row.get("qty") is None else quantity(float(row["qty"]))
    text = f"{side} {qty} @ {money(row.get('price'))} · {trade_cause(row)}"
    if row.get("realized_pnl") is not None:
        text += f" · P&L {signed_money(float(row['realized_pnl']))}"
    if row.get("status") and row["status"] != "filled":
        text += f" · {row['status']}"
    return text


def _decision(row: dict[str, Any]) -> str:
    text = f"{row.get('action') or '?'} · confidence {percent(row.get('confidence'), 0)}"
    if row.get("error"):
        text += f" · error: {_clip(row['error'])}"
    return f"{text} — {_clip(row.get('reasoning') or NONE)}"


def _alert(row: dict[str, Any]) -> str:
    return f"[{row.get('severity') or '?'}] {row.get('kind') or '?'}: {_clip(row.get('message'))}"


def _operator(row: dict[str, Any]) -> str:
    text = f"{row.get('action') or '?'} → {row.get('result') or '?'}"
    if row.get("actor"):
        text += f" by {row['actor']}"
    return f"{text}: {_clip(row['message'])}" if row.get("message") else text


_TEXTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "cycle": _cycle,
    "denied": _denied,
    "trade": _trade,
    "decision": _decision,
    "alert": _alert,
    "operator": _operator,
}


def item_text(item: ActivityItem) -> str:
    """Return an item's plain-text detail (not yet escaped)."""
    return _TEXTS[item.kind](item.row)


def _row_class(item: ActivityItem) -> str:
    """Mark rows that need attention: failures, denials, critical alerts, rejected actions."""
    row = item.row
    loud = (
        (item.kind == "cycle" and row.get("status") == "failed")
        or item.kind == "denied"
        or (item.kind == "alert" and row.get("severity") == "critical")
        or (item.kind == "operator" and row.get("result") == "rejected")
    )
    return f"botlib-activity-{item.kind}" + (" botlib-activity-attention" if loud else "")


def activity_html(items: Sequence[ActivityItem]) -> str:
    """Render the feed as one escaped HTML table (newest first, as given)."""
    if not items:
        return '<p class="botlib-note">No activity yet.</p>'
    rows = "".join(
        f'<tr class="{_row_class(item)}"><td>{item.when:%Y-%m-%d %H:%M:%S}</td>'
        f"<td>{html.escape(LABELS[item.kind])}</td>"
        f"<td>{html.escape(item.symbol or NONE)}</td>"
        f"<td>{html.escape(item_text(item))}</td></tr>"
        for item in items
    )
    head = "<th>Time (UTC)</th><th>Event</th><th>Asset</th><th>Details</th>"
    return f'<table class="botlib-feed"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


class ActivityFeed:
    """A titled HTML table; `show` replaces its value (the widget is kept)."""

    def __init__(self) -> None:
        self.table = widgets.HTML(activity_html([]))
        self.table.add_class("botlib-activity-table")
        title = widgets.HTML("<h3>Activity</h3>")
        self.widget = widgets.VBox([title, self.table])
        self.widget.add_class("botlib-activity")

    def show(self, items: Sequence[ActivityItem]) -> None:
        """Show the feed's items (unchanged HTML sends nothing to the browser)."""
        self.table.value = activity_html(items)
