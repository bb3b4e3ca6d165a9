"""The dashboard's Arena tab: the live analyst beside its shadows (read-only, like the page).

It shows `botlib.reporting.arena_board`: the overall leaderboard (P&L after fees, LLM spend,
P&L after it, trades, win rate, max drawdown), one per asset, every analyst's account equity
on one chart, the agreement matrix (how often two analysts took the same action on the same
live cycle) and, once they share `MIN_CYCLES` cycles, the research arena's bootstrap (is a lead
more than luck?). Built when the tab is first opened and re-read each time it is opened again.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd
from ipywidgets import HTML, Layout, VBox

from botlib.arena.stats import block_bootstrap
from botlib.reporting.arena_board import ArenaBoard, arena_board
from botlib.ui.arena.report import overlaid_curves, statistics_html
from botlib.ui.backtest_report import format_value

__all__ = ["ArenaTab", "board_html", "agreement_html"]

_COLUMNS = (
    ("return %", "return_pct"), ("P&L after fees", "pnl"), ("LLM spend", "llm_spend"),
    ("P&L after LLM", "pnl_after_llm"), ("trades", "trades"), ("win rate %", "win_rate_pct"),
    ("max drawdown %", "max_drawdown_pct"), ("Sharpe", "sharpe"), ("cycles", "cycles"),
)  # fmt: skip
MIN_CYCLES = 30  # common cycles before the bootstrap says anything
EMPTY = (
    "No shadows yet: name arena analysts in BOTLIB_SHADOWS (see the README, 'The arena') and"
    " they decide beside the live one from the next cycle on."
)


def board_html(rows: pd.DataFrame) -> str:
    """A leaderboard table: rank, analyst and the numbers, best first as given."""
    head = "".join(f"<th>{name}</th>" for name, _ in _COLUMNS)
    body = "".join(
        f"<tr><td>{rank}</td><td>{html.escape(str(row['analyst']))}</td>"
        + "".join(f"<td>{format_value(name, row.get(key))}</td>" for name, key in _COLUMNS)
        + "</tr>"
        for rank, row in enumerate(rows.to_dict("records"), start=1)
    )
    return (f'<table class="botlib-metrics"><thead><tr><th>rank</th><th>analyst</th>{head}'
            f"</tr></thead><tbody>{body}</tbody></table>")  # fmt: skip


def agreement_html(table: pd.DataFrame) -> str:
    """The agreement matrix as a table of percentages ("—" where two never met)."""
    names = [html.escape(str(n)) for n in table.columns]
    head = "".join(f"<th>{n}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{html.escape(str(a))}</th>"
        + "".join(f"<td>{_share(table.loc[a, b])}</td>" for b in table.columns)
        + "</tr>"
        for a in table.index
    )
    return (f'<table class="botlib-metrics botlib-agreement"><thead><tr><th></th>{head}</tr>'
            f"</thead><tbody>{rows}</tbody></table>")  # fmt: skip


def _share(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.0%}"


class ArenaTab:
    """The tab's widget; `refresh` re-reads the live database and the shadows'."""

    def __init__(self, db_path: Path | str) -> None:
        self.path = Path(db_path)
        self.widget = VBox([], layout=Layout(width="100%"))
        self.widget.add_class("botlib-arena-tab")
        self.refresh()

    def refresh(self) -> ArenaBoard:
        board = arena_board(self.path)
        if board.rows.empty:
            self.widget.children = (HTML(f'<p class="botlib-status">{html.escape(EMPTY)}</p>'),)
            return board
        parts = [HTML(f"<h3>Arena: live and shadows since {html.escape(str(board.since))}</h3>"
                      "<p>ranked by P&amp;L after fees and LLM spend</p>"),
                 HTML("<h4>All assets</h4>" + board_html(board.ranked()))]  # fmt: skip
        for symbol in sorted(set(board.rows["symbol"]) - {"all"}):
            table = board_html(board.ranked(symbol))
            parts.append(HTML(f"<h4>{html.escape(symbol)}</h4>{table}"))
        figure = overlaid_curves("Account equity by analyst (USD)", board.curves)
        figure.add_class("botlib-arena-curves")
        agreement = "<h4>Same action on the same cycle</h4>" + agreement_html(board.agreement)
        self.widget.children = (*parts, figure, HTML(agreement), HTML(_luck(board)))
        return board


def _luck(board: ArenaBoard) -> str:
    """The research arena's bootstrap on the live curves (the cycles every analyst ran)."""
    curves = pd.DataFrame(board.curves).dropna()
    if len(curves) < MIN_CYCLES or len(curves.columns) < 2:
        return (
            f'<p class="botlib-backtest-note">Is a lead more than luck? Shown once every'
            f" analyst has {MIN_CYCLES} cycles in common ({len(curves)} so far).</p>"
        )
    report = block_bootstrap(curves, benchmark="buy_and_hold" if "buy_and_hold" in curves
                             else None)  # fmt: skip
    return "<h4>Is a lead more than luck?</h4>" + statistics_html(report)
