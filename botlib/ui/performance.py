"""The performance section: account equity and drawdown charts, and a metrics table.

The data comes from `botlib.reporting.monitoring.read_performance` (SQL aggregates, a curve of
at most ~1000 buckets), and the lines are thinned once more with `minmax_line`, so however long the
history, the browser receives at most `MAX_POINTS` points per line.
"""

from __future__ import annotations

import html
import warnings

import numpy as np
import pandas as pd
from ipywidgets import HTML, HBox, Layout, VBox

from botlib.reporting.analytics import drawdown
from botlib.reporting.monitoring import Performance, PerformanceRow
from botlib.ui.shaping.downsample import minmax_line
from botlib.ui.shaping.text import NONE, money, percent, signed_money

with warnings.catch_warnings():
    # see botlib/ui/charts.py: bqscales warns at import time
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Axis, DateScale, Figure, LinearScale, Lines

__all__ = [
    "PerformanceSection", "MAX_POINTS", "curve_arrays", "drawdown_arrays", "metrics_html",
    "line_figure",
]  # fmt: skip

MAX_POINTS = 1000  # most points one line sends to the browser
_COLUMNS = (
    "Asset", "Net P&amp;L", "Before fees", "Fees", "LLM spend", "After LLM", "Trades",
    "Win rate", "Avg win", "Avg loss", "Profit factor", "Sharpe", "Max DD",
)  # fmt: skip
_NOTE = (
    "Net P&amp;L is after trading fees (fills and equity are booked net of fees, so fees are "
    "not subtracted twice). Before fees = net + fees; After LLM = net − LLM spend (decisions "
    "and reflections). Sharpe and max drawdown use the equity curve sampled as the last "
    "snapshot of each of ≤ 1000 time buckets; an asset's curve is the starting equity plus "
    "its P&amp;L."
)
_NO_TIMES = np.array([], dtype="datetime64[ms]")
_NO_VALUES = np.array([], dtype=float)


def _times(index: pd.Index) -> np.ndarray:
    """Return UTC times without a zone, in ms (what bqplot's DateScale expects)."""
    return pd.DatetimeIndex(index).tz_convert(None).to_numpy().astype("datetime64[ms]")


def curve_arrays(curve: pd.Series, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Return the equity line's x and y, thinned to at most ~`max_points` points."""
    if curve.empty:
        return _NO_TIMES, _NO_VALUES
    return minmax_line(_times(curve.index), curve.to_numpy(dtype=float), max_points)


def drawdown_arrays(
    curve: pd.Series, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Return the drawdown line (percent below the running peak, <= 0), thinned likewise."""
    if curve.empty:
        return _NO_TIMES, _NO_VALUES
    return curve_arrays(drawdown(curve) * 100, max_points)


def _number(value: float | None, digits: int = 2) -> str:
    return NONE if value is None or not np.isfinite(value) else f"{value:,.{digits}f}"


def _cells(row: PerformanceRow) -> list[str]:
    """Format one metrics row (escaped: the label is an asset symbol from the database)."""
    m = row.metrics
    return [
        html.escape(row.label),
        signed_money(m.total_pnl),
        signed_money(row.gross_pnl),
        money(row.fees),
        money(row.llm_usd),
        signed_money(row.cost_adjusted_pnl),
        str(m.n_trades),
        percent(m.win_rate),
        signed_money(m.avg_win),
        signed_money(m.avg_loss),
        _number(m.profit_factor),
        _number(m.sharpe),
        f"{m.max_drawdown_pct:.2f} %",
    ]


def metrics_html(rows: tuple[PerformanceRow, ...] | list[PerformanceRow]) -> str:
    """Render the metrics table, one row per asset and the total last."""
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    body = "".join(
        f'<tr class="{"botlib-total" if row.label == "Total" else ""}">'
        + "".join(f"<td>{cell}</td>" for cell in _cells(row))
        + "</tr>"
        for row in rows
    )
    return (
        f'<table class="botlib-metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        f'</table><p class="botlib-note">{_NOTE}</p>'
    )


def line_figure(title: str, color: str, tick_format: str) -> tuple[Figure, Lines]:
    """Build an empty one-line time chart."""
    x, y = DateScale(), LinearScale()
    line = Lines(x=_NO_TIMES, y=_NO_VALUES, scales={"x": x, "y": y}, colors=[color],
                 stroke_width=1.6)  # fmt: skip
    figure = Figure(
        marks=[line],
        axes=[
            Axis(scale=x, grid_lines="none"),
            Axis(scale=y, side="left", grid_lines="dashed", tick_format=tick_format),
        ],
        title=title,
        fig_margin={"top": 30, "bottom": 30, "left": 75, "right": 20},
        padding_y=0.05,
        layout=Layout(width="100%", height="220px", min_width="0"),
    )
    return figure, line


class PerformanceSection:
    """Equity and drawdown charts over the metrics table; `show` only assigns new values."""

    def __init__(self) -> None:
        self.equity_figure, self.equity = line_figure("Account equity (USD)", "#0969da", ",.0f")
        self.drawdown_figure, self.drawdown = line_figure(
            "Drawdown from peak (%)", "#cf222e", ".2f"
        )
        self.equity_figure.add_class("botlib-equity-chart")
        self.drawdown_figure.add_class("botlib-drawdown-chart")
        self.table = HTML(metrics_html([]))
        self.table.add_class("botlib-metrics-box")
        title = HTML("<h3>Performance</h3>")
        charts = HBox([self.equity_figure, self.drawdown_figure])
        charts.add_class("botlib-performance-charts")
        self.widget = VBox([title, charts, self.table])
        self.widget.add_class("botlib-performance")

    def show(self, performance: Performance) -> None:
        """Draw a `Performance` (one message per line, via `hold_sync`)."""
        for line, (x, y) in (
            (self.equity, curve_arrays(performance.curve)),
            (self.drawdown, drawdown_arrays(performance.curve)),
        ):
            with line.hold_sync():
                line.x, line.y = x, y
        self.table.value = metrics_html(performance.rows)
