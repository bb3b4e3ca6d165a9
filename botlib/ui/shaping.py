"""Turn query results into the arrays and strings the dashboard's widgets show (pure, no widgets).

Kept apart from the widgets so unit tests can check every number and label without a browser.
Every string that came from the database is HTML-escaped here: the widgets render HTML, and an
analyst's reasoning is untrusted text.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from botlib.models import TIMEFRAMES
from botlib.queries import DashboardData
from botlib.store import parse_time
from botlib.ui.smc_shaping import SmcChartData, smc_chart_data

__all__ = [
    "ASSET_STATS",
    "HEADER_STATS",
    "NONE",
    "ChartData",
    "chart_data",
    "asset_texts",
    "header_texts",
    "llm_spend_text",
    "slug",
    "money",
    "signed_money",
    "percent",
    "quantity",
    "utc_minute",
]

# (key, caption): the key names the value widget's CSS class, `botlib-<key>-<slug>`.
ASSET_STATS: tuple[tuple[str, str], ...] = (
    ("price", "Last price"),
    ("position", "Position"),
    ("entry", "Entry"),
    ("unrealized", "Unrealised P&L"),
    ("levels", "Stop / target"),
    ("pnl", "Asset P&L"),
    ("win-rate", "Win rate"),
    ("sharpe", "Sharpe"),
    ("drawdown", "Max drawdown"),
    ("trades", "Closed trades"),
    ("cycles", "Cycles"),
    ("decision", "Last AI decision"),
    ("reasoning", "Reasoning"),
    ("cycle", "Last cycle"),
    ("cycle-reason", "Cycle result"),
)
HEADER_STATS: tuple[tuple[str, str], ...] = (
    ("mode", "Mode"),
    ("equity", "Equity"),
    ("cash", "Cash"),
    ("pnl", "Total P&L"),
    ("llm", "LLM spend today"),
    ("last-cycle", "Last cycle"),
)
NONE = "—"


def slug(symbol: str) -> str:
    """Make a CSS-safe name for a symbol.

    >>> slug("BTC/USD")
    'BTCUSD'
    """
    return "".join(ch for ch in symbol if ch.isalnum())


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def money(value: float | None) -> str:
    """Format dollars with cents (more digits below $1, where cents hide the price).

    >>> money(98315.856), money(0.01234), money(None)
    ('$98,315.86', '$0.01234', '—')
    """
    if _missing(value):
        return NONE
    assert value is not None
    return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:.4g}"


def signed_money(value: float | None) -> str:
    """Format a P&L with its sign in front, so gains and losses read at a glance.

    >>> signed_money(38.356), signed_money(-723.96), signed_money(0.0)
    ('+$38.36', '−$723.96', '$0.00')
    """
    if _missing(value):
        return NONE
    assert value is not None
    if round(value, 2) == 0:
        return "$0.00"
    return ("+" if value > 0 else "−") + money(abs(value))


def percent(fraction: float | None, digits: int = 1) -> str:
    """Format a fraction as a percentage.

    >>> percent(0.2), percent(None)
    ('20.0 %', '—')
    """
    return NONE if _missing(fraction) else f"{float(fraction or 0) * 100:.{digits}f} %"


def quantity(value: float) -> str:
    """Show six significant digits: enough for 0.105331 BTC and 65.1234 SOL.

    >>> quantity(0.10533122483720507)
    '0.105331'
    """
    return f"{value:,.6g}"


def utc_minute(value: str | datetime | None) -> str:
    """Format a stored ISO time as `YYYY-MM-DD HH:MM UTC`.

    >>> utc_minute("2026-11-20T12:00:00+00:00")
    '2026-11-20 12:00 UTC'
    """
    when = parse_time(value) if isinstance(value, str) else value
    return NONE if when is None else f"{when:%Y-%m-%d %H:%M} UTC"


def _tone(value: float | None, text: str) -> str:
    """Wrap a P&L in a span whose class colours it green or red."""
    if _missing(value) or round(value or 0.0, 2) == 0:
        return text
    return f'<span class="botlib-{"gain" if (value or 0) > 0 else "loss"}">{text}</span>'


@dataclass(frozen=True)
class ChartData:
    """Arrays for one price chart: close line, fills, and the open position's levels."""

    x: np.ndarray  # bar close times, datetime64[ms], UTC without tz (what bqplot expects)
    close: np.ndarray
    buys_x: np.ndarray
    buys_y: np.ndarray
    sells_x: np.ndarray
    sells_y: np.ndarray
    levels: dict[str, float | None]  # stop_loss, take_profit, entry
    smc: SmcChartData = field(default_factory=SmcChartData)  # FVG/OB zones, BOS/CHoCH points

    def level_line(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return a horizontal segment across the chart at a level (empty when there is none)."""
        level = self.levels.get(name)
        if level is None or not len(self.x):
            return np.array([], dtype="datetime64[ms]"), np.array([], dtype=float)
        ends = np.array([self.x[0], max(self.x[-1], *self.buys_x, *self.sells_x)])
        return ends.astype("datetime64[ms]"), np.array([level, level], dtype=float)


def _naive_utc(times: pd.Series | pd.Index) -> np.ndarray:
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"))
    return index.tz_convert(None).to_numpy().astype("datetime64[ms]")


def _fills(trades: pd.DataFrame, side: str, since: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
    """Return fill times and prices of one side, from `since` on (older ones would stretch x)."""
    if trades.empty or "price" not in trades:
        return np.array([], dtype="datetime64[ms]"), np.array([], dtype=float)
    done = trades[(trades["side"] == side) & trades["price"].notna() & trades["filled_at"].notna()]
    x = _naive_utc(done["filled_at"])
    keep = x >= since
    return x[keep], done["price"].to_numpy(dtype=float)[keep]


def chart_data(data: DashboardData) -> ChartData:
    """Shape one asset's bars, trades and position for the chart.

    Closes are plotted at the bar's end time, which is when a cycle trades on them, so a fill
    marker sits on the line it was priced from.
    """
    width = pd.Timedelta(minutes=TIMEFRAMES.get(data.asset.timeframe, 0))
    x = _naive_utc(data.bars.index + width) if len(data.bars) else np.array([], "datetime64[ms]")
    since = x[0] if len(x) else np.datetime64("1970-01-01T00:00", "ms")
    position = data.position or {}
    buys_x, buys_y = _fills(data.trades, "buy", since)
    sells_x, sells_y = _fills(data.trades, "sell", since)
    return ChartData(
        x=x,
        close=data.bars["close"].to_numpy(dtype=float),
        buys_x=buys_x,
        buys_y=buys_y,
        sells_x=sells_x,
        sells_y=sells_y,
        smc=smc_chart_data(data.bars, x),
        levels={
            "stop_loss": position.get("stop_loss"),
            "take_profit": position.get("take_profit"),
            "entry": position.get("avg_entry_price"),
        },
    )


def _position_texts(data: DashboardData) -> dict[str, str]:
    pos = data.position
    if not pos or not pos.get("qty"):
        return {"position": "flat", "entry": NONE, "unrealized": NONE, "levels": NONE}
    unrealized = data.unrealized_pnl
    return {
        "position": quantity(float(pos["qty"])),
        "entry": money(pos.get("avg_entry_price")),
        "unrealized": _tone(unrealized, signed_money(unrealized)),
        "levels": f"{money(pos.get('stop_loss'))} / {money(pos.get('take_profit'))}",
    }


def _decision_texts(decision: dict[str, Any] | None) -> dict[str, str]:
    if not decision:
        return {"decision": NONE, "reasoning": NONE}
    action = html.escape(str(decision.get("action") or "?"))
    confidence = decision.get("confidence")
    when = utc_minute(decision.get("created_at"))
    return {
        "decision": (
            f'<span class="botlib-action-{action.lower()}">{action}</span>'
            f" · confidence {percent(confidence, 0)} · {when}"
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


def asset_texts(data: DashboardData) -> dict[str, str]:
    """Return the HTML text of every asset stat, keyed like `ASSET_STATS`."""
    m = data.metrics
    return {
        "price": money(data.last_price),
        **_position_texts(data),
        "pnl": _tone(m.total_pnl, signed_money(m.total_pnl)),
        "win-rate": percent(m.win_rate),
        "sharpe": NONE if _missing(m.sharpe) else f"{m.sharpe:.2f}",
        "drawdown": f"{m.max_drawdown_pct:.2f} %",
        "trades": str(m.n_trades),
        "cycles": str(data.cycles),
        **_decision_texts(data.last_decision),
        **_cycle_texts(data.last_cycle),
    }


def header_texts(
    overview: dict[str, Any], last_cycle: dict[str, Any] | None, llm_budget: float | None = None
) -> dict[str, str]:
    """Return the HTML text of the account header, keyed like `HEADER_STATS`."""
    total = overview["metrics"].total_pnl if overview.get("metrics") else None
    mode = overview.get("mode")
    return {
        "mode": html.escape(str(mode).upper()) if mode else NONE,
        "equity": money(overview.get("equity")),
        "cash": money(overview.get("cash")),
        "pnl": _tone(total, signed_money(total)),
        "llm": llm_spend_text(overview.get("llm_today"), llm_budget),
        "last-cycle": utc_minute((last_cycle or {}).get("started_at")),
    }


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
