"""One asset's panel: candle chart with overlays, and its stats' texts, updated in place.

The texts are pure functions of a `DashboardData` (tested without a browser). Every string that
came from the database is HTML-escaped here: the widgets render HTML, and model output (reasoning,
reflections) is untrusted text.
"""

from __future__ import annotations

import contextlib
import html
import json
from typing import Any

import ipywidgets as widgets

from botlib.reporting.queries import DashboardData
from botlib.ui.charts import COLORS, PriceChart
from botlib.ui.parts import stat, value_widgets
from botlib.ui.shaping.charts import chart_data, order_status
from botlib.ui.shaping.smc import BREAKS, ZONES
from botlib.ui.shaping.text import (
    NONE,
    money,
    percent,
    quantity,
    signed_money,
    slug,
    tone,
    utc_minute,
)

__all__ = ["ASSET_STATS", "AssetPanel", "PANEL_CSS", "asset_texts", "resting_text", "title_html"]

# (key, caption): the key names the value widget's CSS class, `botlib-<key>-<slug>`.
ASSET_STATS: tuple[tuple[str, str], ...] = (
    ("price", "Last price"),
    ("position", "Position"),
    ("entry", "Entry"),
    ("unrealized", "Unrealised P&L"),
    ("levels", "Stop / target"),
    ("resting", "Resting at the venue"),
    ("pnl", "Asset P&L"),
    ("interval", "Schedule"),
    ("state", "State"),
    ("analyst", "Analyst"),
    ("cycles", "Cycles"),
    ("decision", "Last AI decision"),
    ("reasoning", "Reasoning"),
    ("cycle", "Last cycle"),
    ("cycle-reason", "Cycle result"),
    ("reflected", "Last reflection"),
    ("reflection", "Reflection"),
)
_WIDE = ("resting", "decision", "reasoning", "cycle", "cycle-reason", "reflected", "reflection")
_CLIP = 600  # characters of one reflection part shown; the AI-log explorer has the rest
# inline style as well as the class: the badge must show even where PANEL_CSS is not loaded
PAUSED_BADGE = (
    '<span class="botlib-badge botlib-paused" style="background:#cf222e;color:#fff;'
    'border-radius:4px;padding:1px 6px;font-size:12px;font-weight:700">PAUSED</span>'
)
PANEL_CSS = """<style>
.botlib-chart-box { gap: 0; }
.botlib-badge { letter-spacing: 0.05em; vertical-align: middle; margin-left: 6px; }
.botlib-reflection b { font-weight: 600; }
</style>"""


def title_html(symbol: str, paused: bool) -> str:
    """Return the panel's heading: the symbol, and a PAUSED badge while the asset is paused."""
    return f"<h3>{html.escape(symbol)}{' ' + PAUSED_BADGE if paused else ''}</h3>"


def _position_texts(data: DashboardData) -> dict[str, str]:
    pos = data.position
    if not pos or not pos.get("qty"):
        return {"position": "flat", "entry": NONE, "unrealized": NONE, "levels": NONE}
    unrealized = data.unrealized_pnl
    return {
        "position": quantity(float(pos["qty"])),
        "entry": money(pos.get("avg_entry_price")),
        "unrealized": tone(unrealized, signed_money(unrealized)),
        "levels": f"{money(pos.get('stop_loss'))} / {money(pos.get('take_profit'))}",
    }


def _settings_texts(data: DashboardData) -> dict[str, str]:
    """Describe the schedule, the paused flag and which analyst decides for this asset."""
    asset = data.asset
    if asset.analyst:
        analyst = f"{html.escape(asset.analyst)} · asset override"
    elif data.default_analyst:
        analyst = f"{html.escape(data.default_analyst)} · default"
    else:  # the configured default is unknown here: show what decided last
        used = (data.last_decision or {}).get("analyst")
        analyst = f"default (last: {html.escape(str(used))})" if used else "default"
    return {
        "interval": (f"every {asset.interval_minutes} min · {html.escape(asset.timeframe)} bars"),
        "state": PAUSED_BADGE if asset.paused else "active",
        "analyst": analyst,
    }


def cost_text(decision: dict[str, Any]) -> str:
    """Show a decision's tokens and cost, or that its analyst used none (rules).

    >>> cost_text({"analyst": "rules", "total_tokens": None})
    'rules: no tokens'
    >>> cost_text({"total_tokens": 1234, "cost_usd": 0.00185})
    '1,234 tokens · $0.00185'
    """
    tokens = decision.get("total_tokens")
    if tokens is None:
        analyst = decision.get("analyst")
        return f"{html.escape(str(analyst))}: no tokens" if analyst else "no tokens"
    cost = decision.get("cost_usd")
    return f"{int(tokens):,} tokens · {money(cost) if cost is not None else 'cost unknown'}"


def _order_line(order: dict[str, Any]) -> str:
    """Describe one resting order in plain text (escaped by the caller)."""
    qty, notional = order.get("qty"), order.get("notional")
    size = quantity(float(qty)) if qty is not None else money(notional)
    prices = "".join(
        f" {name} {float(order[key]):,.8g}"
        for name, key in (("stop", "stop_price"), ("limit", "limit_price"))
        if order.get(key) is not None
    )
    status = order_status(order)
    if order.get("expires_at"):
        status += f", expires {utc_minute(order['expires_at'])}"
    kind = f"{order.get('order_type') or '?'} {order.get('side') or '?'}"
    return f"{kind} {size}{prices} ({status}) · placed {utc_minute(order.get('created_at'))}"


def resting_text(orders: list[dict[str, Any]]) -> str:
    """List the orders resting at the venue, one per line (read-only: nothing to click).

    >>> resting_text([{"order_type": "stop_limit", "side": "sell", "qty": 0.0123,
    ...     "stop_price": 59000.0, "limit_price": 58705.0, "status": "pending", "revision": 2,
    ...     "created_at": "2026-11-20T10:45:00+00:00"}])
    'stop_limit sell 0.0123 stop 59,000 limit 58,705 (open, rev 2) · placed 2026-11-20 10:45 UTC'
    >>> resting_text([])
    'none'
    """
    if not orders:
        return "none"
    return "<br>".join(html.escape(_order_line(order)) for order in orders)


def _decision_texts(decision: dict[str, Any] | None) -> dict[str, str]:
    if not decision:
        return {"decision": NONE, "reasoning": NONE}
    action = html.escape(str(decision.get("action") or "?"))
    confidence = decision.get("confidence")
    when = utc_minute(decision.get("created_at"))
    return {
        "decision": (
            f'<span class="botlib-action-{action.lower()}">{action}</span>'
            f" · confidence {percent(confidence, 0)} · {when} · {cost_text(decision)}"
        ),
        "reasoning": html.escape(str(decision.get("reasoning") or NONE)),
    }


def _cycle_texts(cycle: dict[str, Any] | None) -> dict[str, str]:
    if not cycle:
        return {"cycle": NONE, "cycle-reason": NONE}
    status = html.escape(str(cycle.get("status") or "?"))
    why = cycle.get("reason") or cycle.get("error") or NONE
    return {
        "cycle": f"{utc_minute(cycle.get('started_at'))} · {status}",
        "cycle-reason": html.escape(str(why)),
    }


def _clip(text: object) -> str:
    """Escape a piece of model output, cut to `_CLIP` characters (cut before escaping, so no
    entity is split); a stored JSON list (suggestions) reads as items joined by "; "."""
    value = str(text)
    if value.startswith("["):
        with contextlib.suppress(ValueError):
            items = json.loads(value)
            value = "; ".join(map(str, items)) if isinstance(items, list) else value
    return html.escape(value if len(value) <= _CLIP else value[: _CLIP - 1] + "…")


def _reflection_texts(reflection: dict[str, Any] | None) -> dict[str, str]:
    if not reflection:
        return {"reflected": NONE, "reflection": NONE}
    about = [utc_minute(reflection.get("created_at"))]
    if reflection.get("trade_id") is not None:
        about.append(f"trade #{html.escape(str(reflection['trade_id']))}")
    if reflection.get("analyst"):
        about.append(html.escape(str(reflection["analyst"])))
    parts = [
        f"<b>{caption}:</b> {_clip(reflection[key])}"
        for key, caption in (("what_worked", "Worked"), ("what_failed", "Failed"),
                             ("suggestions", "Next"))
        if reflection.get(key)
    ]  # fmt: skip
    body = "<br>".join(parts) if parts else _clip(reflection.get("content") or NONE)
    return {"reflected": " · ".join(about), "reflection": body}


def asset_texts(data: DashboardData) -> dict[str, str]:
    """Return the HTML text of every asset stat, keyed like `ASSET_STATS`."""
    total = data.metrics.total_pnl
    return {
        "price": money(data.last_price),
        **_position_texts(data),
        "resting": resting_text(data.resting),
        "pnl": tone(total, signed_money(total)),
        **_settings_texts(data),
        "cycles": str(data.cycles),
        **_decision_texts(data.last_decision),
        **_cycle_texts(data.last_cycle),
        **_reflection_texts(data.last_reflection),
    }


def _legend() -> widgets.HTML:
    items = [
        (COLORS["up"], "▮ up"),
        (COLORS["down"], "▮ down"),
        (COLORS["sma_20"], "━ SMA 20"),
        (COLORS["sma_50"], "━ SMA 50"),
        (COLORS["bb_upper"], "┄ Bollinger 20, 2σ"),
        (COLORS["buy"], "▲ buy"),
        (COLORS["sell"], "▼ sell"),
        (COLORS["stop_loss"], "┄ stop"),
        (COLORS["take_profit"], "┄ target"),
        (COLORS["entry"], "┈ entry"),
        (COLORS["resting_stop"], "━ venue stop"),
        (COLORS["resting_stop_limit"], "┄ its limit"),
        (COLORS["resting_limit"], "┄ limit order"),
        (ZONES["bull_fvg"][1], "▮ FVG"),
        (ZONES["bull_ob"][1], "▮ order block"),
        (BREAKS["bos"][1], "● BOS"),
        (BREAKS["choch"][1], "◆ CHoCH"),
    ]
    spans = "".join(f'<span style="color:{color}">{text}</span>' for color, text in items)
    legend = widgets.HTML(spans)
    legend.add_class("botlib-legend")
    return legend


class AssetPanel:
    """One asset's chart and stats; `show` changes their values, never the widgets."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.chart = PriceChart(symbol)
        self.values = value_widgets([key for key, _ in ASSET_STATS], slug(symbol))
        captions = dict(ASSET_STATS)
        narrow = [k for k in self.values if k not in _WIDE]
        stats = widgets.GridBox([stat(captions[k], self.values[k]) for k in narrow])
        stats.add_class("botlib-stats")
        wide = widgets.GridBox([stat(captions[k], self.values[k]) for k in _WIDE])
        wide.add_class("botlib-wide")
        self.values["reflection"].add_class("botlib-reflection")
        self.title = widgets.HTML(title_html(symbol, paused=False))
        self.title.add_class("botlib-title")
        body = widgets.HBox([self.chart.widget, stats])
        body.add_class("botlib-body")
        self.widget = widgets.VBox([widgets.HBox([self.title, _legend()]), body, wide])
        self.widget.add_class("botlib-panel")
        self.widget.add_class(f"botlib-panel-{slug(symbol)}")

    def show(self, data: DashboardData) -> None:
        """Draw a `DashboardData`; unchanged values send nothing to the browser."""
        self.chart.update(chart_data(data))
        self.title.value = title_html(self.symbol, data.asset.paused)
        for key, text in asset_texts(data).items():
            self.values[key].value = text
