"""The account header: stats, scheduler heartbeat, a status light per asset, the HALTED banner.

Texts are pure functions of an `AccountHeader` and `now` (testable without widgets). The
header re-judges the clock-dependent parts (heartbeat age, stale lights) on every tick, from
the last status read: a scheduler that died writes nothing, so waiting for the database to
change would never show it.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import ipywidgets as widgets

from botlib.reporting.monitoring import AccountHeader, Heartbeat, Light
from botlib.ui.parts import stat, value_widgets
from botlib.ui.shaping.text import NONE, money, percent, signed_money, slug

__all__ = [
    "HEADER_STATS",
    "Header",
    "header_texts",
    "mode_text",
    "llm_spend_text",
    "heartbeat_text",
    "light_html",
    "banner_html",
    "tone",
]

# (key, caption): the key names the value widget's CSS class, `botlib-<key>`.
HEADER_STATS: tuple[tuple[str, str], ...] = (
    ("mode", "Mode"),
    ("equity", "Equity"),
    ("cash", "Cash"),
    ("day-pnl", "Day P&amp;L (UTC)"),
    ("pnl", "Total P&amp;L"),
    ("positions", "Open positions"),
    ("llm", "LLM spend today"),
    ("heartbeat", "Scheduler"),
)
_STATES = ("ok", "failed", "stale", "paused", "waiting", "late", "none")


def tone(value: float | None, text: str) -> str:
    """Wrap a P&L in a span whose class colours it green or red (zero stays plain)."""
    if value is None or round(value, 2) == 0:
        return text
    return f'<span class="botlib-{"gain" if value > 0 else "loss"}">{text}</span>'


def mode_text(mode: str | None) -> str:
    """Show the trading mode; LIVE is red, since it trades real money.

    >>> mode_text("live"), mode_text("sim"), mode_text(None)
    ('<span class="botlib-mode-live">LIVE</span>', 'SIM', '—')
    """
    if not mode:
        return NONE
    text = html.escape(mode.upper())
    return f'<span class="botlib-mode-live">{text}</span>' if text == "LIVE" else text


def llm_spend_text(spent: float | None, budget: float | None) -> str:
    """Show today's LLM spend against the daily budget, flagged once the budget is reached.

    >>> llm_spend_text(0.0123, 5.0)
    '$0.0123 / $5.00'
    >>> llm_spend_text(5.2, 5.0)
    '<span class="botlib-loss">$5.20 / $5.00 · budget reached</span>'
    """
    if spent is None:
        return NONE
    text = money(spent) if budget is None else f"{money(spent)} / {money(budget)}"
    if budget is not None and spent >= budget:
        return f'<span class="botlib-loss">{text} · budget reached</span>'
    return text


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def heartbeat_text(beat: Heartbeat, now: datetime) -> str:
    """Describe the last scheduler tick and the next one (HTML-escaped)."""
    state = beat.state(now)
    if state == "none" or beat.started_at is None:
        return "no scheduler yet"
    text = f"last tick {beat.started_at:%H:%M:%S} UTC ({_ago(now - beat.started_at)})"
    if beat.finished_at is None:
        text += " · running"
    if beat.failed:
        text += f" · {beat.failed} failed"
    if beat.next_at is not None:
        text += f" · next {beat.next_at:%H:%M:%S} UTC"
    return html.escape(("⚠ late: " if state == "late" else "") + text)


def light_html(light: Light) -> str:
    """Render a light as a coloured dot, the symbol and its state; the detail is the tooltip."""
    title = html.escape(light.detail or light.text, quote=True)
    text = html.escape(f"{light.symbol} · {light.text}")
    return f'<span class="botlib-light botlib-state-{light.state}" title="{title}">● {text}</span>'


def banner_html(status: AccountHeader) -> str:
    """Return the HALTED banner's text, or "" when no account limit is crossed."""
    reasons = status.halt_reasons()
    if not reasons:
        return ""
    why = html.escape("; ".join(reasons), quote=False)
    return f"<b>HALTED</b> — new entries blocked, exits still allowed: {why}"


def header_texts(status: AccountHeader, now: datetime) -> dict[str, str]:
    """Return the HTML text of every header stat, keyed like `HEADER_STATS`."""
    day, total = status.day_pnl, status.total_pnl
    day_pct = (
        f" ({'−' if day < 0 else '+'}{percent(abs(day) / status.day_start_equity, 2)})"
        if day is not None and status.day_start_equity and round(day, 2) != 0
        else ""
    )
    return {
        "mode": mode_text(status.mode),
        "equity": money(status.equity),
        "cash": money(status.cash),
        "day-pnl": tone(day, signed_money(day) + day_pct),
        "pnl": tone(total, signed_money(total)),
        "positions": f"{status.positions} · {money(status.positions_value)}",
        "llm": llm_spend_text(status.llm_today, status.limits.llm_budget_usd),
        "heartbeat": heartbeat_text(status.heartbeat, now),
    }


def _set_state(widget: widgets.Widget, state: str) -> None:
    """Swap the `botlib-state-*` class in place (the widget is kept, only its class changes)."""
    for other in _STATES:
        if other != state:
            widget.remove_class(f"botlib-state-{other}")
    widget.add_class(f"botlib-state-{state}")


class Header:
    """Header stats, the lights row and the banner; `show` and `tick` only change values."""

    def __init__(self) -> None:
        self.values = value_widgets([key for key, _ in HEADER_STATS], "")
        captions = dict(HEADER_STATS)
        self.widget = widgets.HBox([stat(captions[k], v) for k, v in self.values.items()])
        self.widget.add_class("botlib-header")
        self.banner = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.banner.add_class("botlib-banner")
        self.lights: dict[str, widgets.HTML] = {}
        caption = widgets.HTML("Assets")
        caption.add_class("botlib-caption")
        self.lights_row = widgets.HBox([caption])
        self.lights_row.add_class("botlib-lights")
        self.status: AccountHeader | None = None

    def show(self, status: AccountHeader, now: datetime) -> None:
        """Show a freshly read status (values, banner, lights)."""
        self.status = status
        for key, text in header_texts(status, now).items():
            self.values[key].value = text
        banner = banner_html(status)
        self.banner.value = banner
        self.banner.layout.display = None if banner else "none"
        self.tick(now)

    def tick(self, now: datetime) -> None:
        """Re-judge the heartbeat and the lights against `now` (no database read)."""
        if self.status is None:
            return
        beat = self.values["heartbeat"]
        beat.value = heartbeat_text(self.status.heartbeat, now)
        _set_state(beat, self.status.heartbeat.state(now))
        for asset in self.status.assets:
            light = asset.light(now)
            widget = self.lights.get(asset.symbol) or self._add_light(asset.symbol)
            widget.value = light_html(light)
            _set_state(widget, light.state)

    def _add_light(self, symbol: str) -> widgets.HTML:
        widget = widgets.HTML("")
        widget.add_class("botlib-light-box")
        widget.add_class(f"botlib-light-{slug(symbol)}")
        self.lights[symbol] = widget
        self.lights_row.children = (*self.lights_row.children, widget)
        return widget
