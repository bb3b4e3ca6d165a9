"""A backtest's report: equity against buy-and-hold, drawdown, price with the fills, numbers.

The shaping (`buy_and_hold`, `report_data`, `metrics_table_html`) is pure, so every number is
unit-tested without a browser; `report` draws it with the dashboard's own pieces (its price
chart with volume and fill markers, the performance section's line charts, its stylesheet).
Lines are thinned by `minmax_line` and candles merged by `ohlc_buckets`, so a year of 1-minute
bars still sends at most `MAX_POINTS` points per line and `MAX_CANDLES` candles; fill markers
are all drawn (one per trade).
"""

from __future__ import annotations

import html
import math
import numbers
import warnings
from datetime import timedelta

import numpy as np
import pandas as pd
from ipywidgets import HTML, Layout, VBox, Widget

from botlib.backtest.results import BacktestResult
from botlib.backtest.sweep import SweepResult
from botlib.models import TIMEFRAMES
from botlib.ports import MarketData
from botlib.ui.charts import COLORS, PriceChart
from botlib.ui.parts import CSS
from botlib.ui.performance import MAX_POINTS, curve_arrays, drawdown_arrays, line_figure
from botlib.ui.shaping.charts import MAX_CANDLES, OVERLAYS, ChartData
from botlib.ui.shaping.downsample import ohlc_buckets
from botlib.ui.shaping.text import NONE, money, signed_money, utc_minute
from botlib.venues.sim import SimMarket

with warnings.catch_warnings():
    # see botlib/ui/charts.py: bqscales warns at import time
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Axis, Bars, Figure, LinearScale, Lines, OrdinalScale

__all__ = [
    "report", "report_data", "report_bars", "buy_and_hold", "starting_cash",
    "metrics_table_html", "sweep_report", "sweep_chart_data", "sweep_table_html", "format_value",
    "REPORT_CSS",
]  # fmt: skip

REPORT_CSS = """<style>
.botlib-backtest .botlib-metrics { width: auto; min-width: 340px; }
.botlib-backtest-note { font-size: 12px; color: #59636e; margin: 0; }
</style>"""
_COUNTS = {
    "Sharpe bars/year",
    "bars replayed",
    "trades (closed)",
    "trades",
    "LLM calls",
    "LLM tokens",
    "rank",
    "cycles",
}
_MONEY = {"fees", "LLM cost $", "LLM spend"}
_SIGNED = {"net P&L", "P&L after fees", "P&L after LLM"}
_PRICE_NOTE = (
    "price (candles drawn at their close, when the run traded on them), buys ▲ and sells ▼ at "
    "their fill prices"
)
_HOLD_COLOR = "#8c959f"
_EQUITY_COLOR = "#0969da"


def starting_cash(result: BacktestResult) -> float:
    """Recover the run's starting cash from its final equity and return (to the cent)."""
    final = float(result.equity.iloc[-1])
    return round(final / (1 + result.return_pct / 100), 2)


def report_bars(result: BacktestResult, market: MarketData | None = None) -> pd.DataFrame:
    """Return the bars the run replayed (closing within its window), from the same market."""
    source = market or SimMarket()
    bars = source.bars(result.symbol, result.timeframe, result.end, max(result.cycles, 1))
    closes = bars.index + timedelta(minutes=TIMEFRAMES[result.timeframe])
    return bars[closes >= pd.Timestamp(result.start)]


def buy_and_hold(
    times: pd.DatetimeIndex, bars: pd.DataFrame, width: timedelta, cash: float
) -> pd.Series:
    """Value `cash` put into the asset at the first time, at each of `times`: the price at a
    time is the close of the last bar completed by then (what the backtest traded on).

    >>> idx = pd.date_range("2026-11-20", periods=3, freq="15min", tz="UTC")
    >>> bars = pd.DataFrame({"close": [100.0, 110.0, 90.0]}, index=idx)
    >>> buy_and_hold(idx + pd.Timedelta("15min"), bars, timedelta(minutes=15), 1000.0).tolist()
    [1000.0, 1100.0, 900.0]
    """
    closes = bars.index + width
    last = closes.searchsorted(times, side="right") - 1
    prices = bars["close"].to_numpy(dtype=float)[np.maximum(last, 0)]
    prices = np.where(last >= 0, prices, np.nan)
    first = prices[0] if len(prices) else np.nan
    return pd.Series(cash * prices / first, index=times, name="buy_and_hold", dtype=float)


def _naive_ms(times: pd.Index | pd.Series) -> np.ndarray:
    """Return UTC times without a zone, in ms (what bqplot's DateScale expects)."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"))
    return index.tz_convert(None).to_numpy().astype("datetime64[ms]")


def _fills(trades: pd.DataFrame, side: str) -> tuple[np.ndarray, np.ndarray]:
    done = trades[trades["side"] == side]
    return _naive_ms(done["created_at"]), done["price"].to_numpy(dtype=float)


def _candles(bars: pd.DataFrame, width: timedelta, max_candles: int) -> dict[str, np.ndarray]:
    """Merge the bars into <= `max_candles` candles, each drawn at its last bar's close time
    (a trade is priced at the close of the bar that just completed: its marker sits there)."""
    merged = ohlc_buckets(bars, max_candles)
    starts = bars.index.get_indexer(merged.index)
    last_rows = np.append(starts[1:], len(bars)) - 1
    return {
        "candle_x": _naive_ms(bars.index[last_rows] + width),
        "ohlc": merged[["open", "high", "low", "close"]].to_numpy(dtype=float).reshape(-1, 4),
        "volume": merged["volume"].to_numpy(dtype=float),
    }


def report_data(
    result: BacktestResult,
    bars: pd.DataFrame,
    cash: float | None = None,
    max_points: int = MAX_POINTS,
    max_candles: int = MAX_CANDLES,
) -> dict[str, np.ndarray]:
    """Shape a run for its charts: equity and buy-and-hold lines (same starting cash, same
    times), drawdown, candles and fill markers; lines and candles are thinned to the bounds."""
    width = timedelta(minutes=TIMEFRAMES[result.timeframe])
    start = starting_cash(result) if cash is None else cash
    hold = buy_and_hold(pd.DatetimeIndex(result.equity.index), bars, width, start)
    equity_x, equity_y = curve_arrays(result.equity, max_points)
    hold_x, hold_y = curve_arrays(hold, max_points)
    drawdown_x, drawdown_y = drawdown_arrays(result.equity, max_points)
    buys_x, buys_y = _fills(result.trades, "buy")
    sells_x, sells_y = _fills(result.trades, "sell")
    return {
        "equity_x": equity_x, "equity_y": equity_y, "hold_x": hold_x, "hold_y": hold_y,
        "drawdown_x": drawdown_x, "drawdown_y": drawdown_y,
        **_candles(bars, width, max_candles),
        "buys_x": buys_x, "buys_y": buys_y, "sells_x": sells_x, "sells_y": sells_y,
    }  # fmt: skip


def format_value(metric: str, value: object) -> str:
    """Format one table value: counts whole, money in dollars, the rest with two decimals."""
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        return NONE
    number = float(value)
    if metric in _COUNTS:
        return f"{number:,.0f}"
    if metric in _SIGNED:
        return signed_money(number)
    return money(number) if metric in _MONEY else f"{number:,.2f}"


def metrics_table_html(result: BacktestResult) -> str:
    """Render `result.table()` (no wall-time figures) as the dashboard's metrics table."""
    rows = "".join(
        f"<tr><td>{html.escape(str(metric))}</td><td>{format_value(str(metric), value)}</td></tr>"
        for metric, value in result.table().itertuples(index=False)
    )
    head = "<thead><tr><th>Metric</th><th>Value</th></tr></thead>"
    return f'<table class="botlib-metrics">{head}<tbody>{rows}</tbody></table>'


def _title_html(result: BacktestResult) -> str:
    symbol = html.escape(result.symbol)
    return (
        f"<h3>Backtest {symbol} {html.escape(result.timeframe)}</h3>"
        f'<p class="botlib-backtest-note">{html.escape(result.analyst)} analyst, '
        f"{html.escape(result.path)} path, {utc_minute(result.start)} → "
        f"{utc_minute(result.end)}, {result.cycles:,} bars</p>"
    )


def _equity_figure(data: dict[str, np.ndarray]) -> Figure:
    """The performance section's equity chart with the buy-and-hold line behind the strategy."""
    figure, line = line_figure("Equity vs buy and hold (USD)", _EQUITY_COLOR, ",.0f")
    hold = Lines(x=data["hold_x"], y=data["hold_y"], scales=line.scales, colors=[_HOLD_COLOR],
                 stroke_width=1.2, opacities=[0.8], labels=["buy and hold"],
                 display_legend=True)  # fmt: skip
    line.x, line.y = data["equity_x"], data["equity_y"]
    line.labels, line.display_legend = ["strategy"], True
    figure.marks = [hold, line]
    figure.legend_location = "top-left"
    figure.legend_style = {"fill": "white", "fill-opacity": 0.85, "stroke": "#d0d7de"}
    figure.add_class("botlib-backtest-equity")
    return figure


def _drawdown_figure(data: dict[str, np.ndarray]) -> Figure:
    figure, line = line_figure("Drawdown from peak (%)", COLORS["sell"], ".2f")
    line.x, line.y = data["drawdown_x"], data["drawdown_y"]
    figure.add_class("botlib-backtest-drawdown")
    return figure


def _price_chart(symbol: str, data: dict[str, np.ndarray]) -> PriceChart:
    """The dashboard's price chart (candles over volume) with the run's fills on it."""
    empty = np.array([], dtype=float)
    chart = PriceChart(symbol)
    chart.update(
        ChartData(
            x=data["candle_x"], ohlc=data["ohlc"], volume=data["volume"],
            overlays={name: empty for name in OVERLAYS}, buys_x=data["buys_x"],
            buys_y=data["buys_y"], sells_x=data["sells_x"], sells_y=data["sells_y"],
            levels={"stop_loss": None, "take_profit": None, "entry": None},
        )
    )  # fmt: skip
    return chart


def report(
    result: BacktestResult, market: MarketData | None = None, cash: float | None = None
) -> Widget:
    """Build the report of one run: equity vs buy-and-hold, drawdown, price with buy/sell
    markers and the metrics table. `market` must be the one replayed (simulated by default);
    `cash` the starting cash (recovered from the result when None)."""
    data = report_data(result, report_bars(result, market), cash)
    title = HTML(_title_html(result))
    chart = _price_chart(result.symbol, data)
    table = HTML(metrics_table_html(result))
    table.add_class("botlib-metrics-box")
    parts = [HTML(CSS + REPORT_CSS), title, _equity_figure(data), _drawdown_figure(data)]
    chart.widget.layout.flex = "0 0 auto"  # the dashboard's row sizing would collapse it here
    caption = HTML(f"<b>{html.escape(result.symbol)}</b> {_PRICE_NOTE}")
    widget = VBox([*parts, caption, chart.widget, table], layout=Layout(width="100%"))
    widget.add_class("botlib-dashboard")
    widget.add_class("botlib-backtest")
    return widget


# A sweep's comparison: one group of bars per run (numbered as in the table below it).
_SWEEP_SERIES = (("return_pct", "return %", _EQUITY_COLOR), ("buy_and_hold_pct", "buy and hold %",
                 _HOLD_COLOR), ("max_drawdown_pct", "max drawdown %", COLORS["sell"]))  # fmt: skip
_SWEEP_TABLE = (
    ("return %", "return_pct"), ("buy and hold %", "buy_and_hold_pct"), ("trades", "trades"),
    ("win rate %", "win_rate_pct"), ("max drawdown %", "max_drawdown_pct"), ("Sharpe", "sharpe"),
    ("fees", "fees"),
)  # fmt: skip


def sweep_chart_data(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The finished runs' numbers for the comparison chart, in the table's order: `runs` (their
    numbers, "#1".. as the table lists them) and one array per series; a drawdown is drawn down."""
    finished = table["error"].isna().to_numpy()
    data = {"runs": np.array([f"#{i + 1}" for i in np.flatnonzero(finished)], dtype=object)}
    for column, _, _ in _SWEEP_SERIES:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)[finished]
        data[column] = -np.abs(values) if column == "max_drawdown_pct" else values
    return data


def sweep_table_html(table: pd.DataFrame) -> str:
    """Every run, numbered as in the chart: its label and numbers, or the error that stopped it."""
    head = "".join(f"<th>{name}</th>" for name, _ in _SWEEP_TABLE)
    rows = []
    for i, row in enumerate(table.to_dict("records")):
        label = f"<td>#{i + 1}</td><td>{html.escape(str(row['label']))}</td>"
        if row["error"] is not None and row["error"] == row["error"]:  # NaN is not an error
            cells = (
                f'<td colspan="{len(_SWEEP_TABLE)}">failed: {html.escape(str(row["error"]))}</td>'
            )
        else:
            cells = "".join(
                f"<td>{format_value(name, row[key])}</td>" for name, key in _SWEEP_TABLE
            )
        rows.append(f"<tr>{label}{cells}</tr>")
    return (f'<table class="botlib-metrics"><thead><tr><th>run</th><th>label</th>{head}</tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def sweep_report(result: SweepResult) -> Widget:
    """One comparison chart (return, buy and hold, drawdown per run) over the table of runs."""
    data = sweep_chart_data(result.table)
    x, y = OrdinalScale(), LinearScale()
    bars = Bars(x=data["runs"], y=[data[c] for c, _, _ in _SWEEP_SERIES], type="grouped",
                scales={"x": x, "y": y}, colors=[c for _, _, c in _SWEEP_SERIES],
                labels=[name for _, name, _ in _SWEEP_SERIES], display_legend=True)  # fmt: skip
    figure = Figure(
        marks=[bars], title=f"Sweep: {len(data['runs'])} of {len(result.table)} runs finished (%)",
        axes=[Axis(scale=x), Axis(scale=y, side="left", tick_format=".1f",
                                  grid_lines="dashed")],
        legend_location="top-right", layout=Layout(width="100%", height="280px"),
        fig_margin={"top": 30, "bottom": 30, "left": 55, "right": 20},
    )  # fmt: skip
    figure.add_class("botlib-sweep-chart")
    table = HTML(sweep_table_html(result.table))
    widget = VBox([HTML(CSS + REPORT_CSS), figure, table], layout=Layout(width="100%"))
    widget.add_class("botlib-dashboard")
    widget.add_class("botlib-sweep")
    return widget
