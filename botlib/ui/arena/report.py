"""The research arena's page: the leaderboard, every analyst's equity on one chart, the
bootstrap's verdict and the warnings (`notebooks/arena.ipynb` shows it)."""

from __future__ import annotations

import html
import warnings

import pandas as pd
from ipywidgets import HTML, Layout, VBox, Widget

from botlib.arena.research import ArenaResult
from botlib.arena.stats import BootstrapReport
from botlib.ui.backtest_report import REPORT_CSS, format_value
from botlib.ui.parts import CSS
from botlib.ui.performance import curve_arrays, line_figure
from botlib.ui.shaping.text import NONE, utc_minute

with warnings.catch_warnings():
    # see botlib/ui/charts.py: bqscales warns at import time
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Figure, Lines

__all__ = ["arena_report", "leaderboard_html", "statistics_html", "overlaid_curves", "PALETTE"]

PALETTE = ("#0969da", "#8c959f", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#0a3069")
_BOARD = (
    ("rank", "rank"), ("return %", "return_pct"), ("P&L after fees", "pnl_after_fees"),
    ("LLM spend", "llm_spend"), ("P&L after LLM", "pnl_after_llm"), ("trades", "trades"),
    ("win rate %", "win_rate_pct"), ("max drawdown %", "max_drawdown_pct"), ("Sharpe", "sharpe"),
)  # fmt: skip


def leaderboard_html(board: pd.DataFrame) -> str:
    """`ArenaResult.leaderboard()` as a table: best first, a failed analyst with its error."""
    head = "".join(f"<th>{name}</th>" for name, _ in _BOARD)
    rows = []
    for row in board.to_dict("records"):
        name = f"<td>{html.escape(str(row['analyst']))}</td>"
        if isinstance(row.get("error"), str):
            failed = f"failed: {html.escape(row['error'])}"
            cells = f'<td>{row["rank"]}</td><td colspan="{len(_BOARD) - 1}">{failed}</td>'
        else:
            cells = "".join(f"<td>{format_value(label, row[key])}</td>" for label, key in _BOARD)
        rows.append(f"<tr>{name}{cells}</tr>")
    return (f'<table class="botlib-metrics"><thead><tr><th>analyst</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def statistics_html(report: BootstrapReport) -> str:
    """Each analyst's return with its interval and its chance to beat the benchmark."""
    beats = f"P(beats {html.escape(report.benchmark)})" if report.benchmark else "P(beats)"
    rows = "".join(
        f"<tr><td>{html.escape(a.analyst)}</td><td>{a.total_return_pct:,.2f}</td>"
        f"<td>{a.low_pct:,.2f} … {a.high_pct:,.2f}</td>"
        f"<td>{NONE if a.p_beats_benchmark is None else f'{a.p_beats_benchmark:.0%}'}</td></tr>"
        for a in report.analysts
    )
    level = f"{report.confidence:.0%} interval"
    return (
        f'<p class="botlib-backtest-note">{html.escape(report.method)}</p>'
        f'<table class="botlib-metrics"><thead><tr><th>analyst</th><th>return %</th>'
        f"<th>{level}</th><th>{beats}</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def overlaid_curves(title: str, curves: dict[str, pd.Series]) -> Figure:
    """One line per analyst on the same scales (thinned like the dashboard's curves)."""
    figure, first = line_figure(title, PALETTE[0], ",.0f")
    lines = []
    for k, (name, curve) in enumerate(curves.items()):
        x, y = curve_arrays(curve)
        lines.append(Lines(x=x, y=y, scales=first.scales, colors=[PALETTE[k % len(PALETTE)]],
                           stroke_width=1.4, labels=[name], display_legend=True))  # fmt: skip
    figure.marks = lines or [first]
    figure.legend_location = "top-left"
    return figure


def _curves_figure(result: ArenaResult) -> Figure:
    """Every finished analyst's equity on one chart."""
    curves = {e.name: e.result.equity for e in result.finished if e.result is not None}
    figure = overlaid_curves("Equity by analyst (USD)", curves)
    figure.add_class("botlib-arena-equity")
    return figure


def arena_report(result: ArenaResult) -> Widget:
    """The arena's page: leaderboard, equity curves overlaid, statistics, warnings."""
    title = (
        f"<h3>Arena {html.escape(result.symbol)} {html.escape(result.timeframe)}</h3>"
        f'<p class="botlib-backtest-note">{utc_minute(result.start)} → '
        f"{utc_minute(result.end)}, ranked by P&amp;L after fees and LLM spend</p>"
    )
    parts: list[Widget] = [HTML(CSS + REPORT_CSS), HTML(title)]
    parts += [HTML(leaderboard_html(result.leaderboard())), _curves_figure(result)]
    if len(result.finished) >= 2:
        parts.append(HTML(statistics_html(result.statistics())))
    notes = "".join(f"<p>⚠ {html.escape(w)}</p>" for w in result.warnings())
    if notes:
        parts.append(HTML(f'<div class="botlib-backtest-note">{notes}</div>'))
    widget = VBox(parts, layout=Layout(width="100%"))
    widget.add_class("botlib-dashboard")
    widget.add_class("botlib-arena")
    return widget
