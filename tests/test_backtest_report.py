"""The backtest report: buy-and-hold from the same cash, fills on their candles, bounded arrays,
the metrics table without wall-time figures, and the widget the notebook shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ipywidgets import Box, Widget

from botlib.backtest import BacktestResult, run_backtest
from botlib.backtest.sweep import COLUMNS, SweepResult
from botlib.ui import charts  # bqplot, imported warning-free
from botlib.ui.backtest_report import (
    buy_and_hold,
    metrics_table_html,
    report,
    report_bars,
    report_data,
    starting_cash,
    sweep_chart_data,
    sweep_report,
    sweep_table_html,
)
from botlib.ui.performance import MAX_POINTS
from botlib.ui.shaping.charts import MAX_CANDLES
from botlib.venues.sim import SimMarket
from botlib.venues.stored_bars import FrameMarket

Figure, Lines = charts.Figure, charts.Lines

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
SLIPPAGE = 5 / 10_000  # run_backtest's default slippage_bps


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    """A 2-day 15-minute BTC/USD run (fast path) with trades on both sides."""
    path = tmp_path_factory.mktemp("report") / "two_days.db"
    result = run_backtest("BTC/USD", END - timedelta(days=2), END, timeframe="15Min", db_path=path)
    assert (result.trades["side"] == "buy").any() and (result.trades["side"] == "sell").any()
    return result


def naive_ms(times: pd.Series | pd.Index) -> np.ndarray:
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return index.tz_convert(None).to_numpy().astype("datetime64[ms]")


def test_every_line_pairs_its_x_and_y_and_short_runs_are_drawn_whole(
    two_days: BacktestResult,
) -> None:
    bars = report_bars(two_days)
    data = report_data(two_days, bars)
    for name in ("equity", "hold", "drawdown"):
        assert len(data[f"{name}_x"]) == len(data[f"{name}_y"]) == two_days.cycles
        assert data[f"{name}_x"].dtype == np.dtype("datetime64[ms]")
    assert len(bars) == two_days.cycles == 193  # one bar per cycle, none before the window
    assert data["ohlc"].shape == (len(bars), 4) and len(data["volume"]) == len(bars)
    np.testing.assert_array_equal(data["equity_y"], two_days.equity.to_numpy())
    np.testing.assert_array_equal(data["hold_x"], data["equity_x"])
    np.testing.assert_allclose(data["drawdown_y"], two_days.drawdown.to_numpy())
    # candles are drawn at their close: the first closes at the window's start, the last at its end
    assert data["candle_x"][0] == naive_ms(pd.Index([two_days.start]))[0]
    assert data["candle_x"][-1] == naive_ms(pd.Index([two_days.end]))[0]


def test_buy_and_hold_grows_the_same_cash_to_the_runs_buy_and_hold_return(
    two_days: BacktestResult,
) -> None:
    data = report_data(two_days, report_bars(two_days))
    assert starting_cash(two_days) == 100_000.0
    assert data["hold_y"][0] == 100_000.0 == data["equity_y"][0]  # no trade in the first cycle
    assert data["hold_y"][-1] == pytest.approx(100_000 * (1 + two_days.buy_and_hold_pct / 100))
    # at every cycle: cash times the price the backtest saw then over the first one
    market = SimMarket()
    times = two_days.equity.index[[0, 40, 117, -1]]
    prices = np.array([market.latest_price("BTC/USD", t.to_pydatetime()) for t in times])
    np.testing.assert_allclose(data["hold_y"][[0, 40, 117, -1]], 100_000 * prices / prices[0])


def test_buy_and_hold_prices_a_time_at_the_last_bar_completed_by_then() -> None:
    index = pd.date_range("2026-11-20", periods=3, freq="15min", tz="UTC")
    bars = pd.DataFrame({"close": [100.0, 120.0, 80.0]}, index=index)
    times = pd.DatetimeIndex([index[1], index[1] + timedelta(minutes=7), index[2], index[2] + STEP])
    # the first bar closes at index[1]; between closes the last completed close holds
    assert buy_and_hold(times, bars, STEP, 50.0).tolist() == [50.0, 50.0, 60.0, 40.0]
    early = buy_and_hold(pd.DatetimeIndex([index[0]]), bars, STEP, 50.0)
    assert early.isna().all()  # no bar has completed yet: no price, no made-up value


def test_starting_cash_is_the_runs_own(tmp_path: Path, two_days: BacktestResult) -> None:
    # a run that buys in its first cycle: its first equity is already net of the fee
    bought = replace(two_days, equity=pd.Series([99_750.0, 101_000.0]), return_pct=1.0)
    assert starting_cash(bought) == 100_000.0
    result = run_backtest("SOL/USD", END - timedelta(days=1), END, timeframe="15Min",
                          cash=25_000.0, db_path=tmp_path / "sol.db")  # fmt: skip
    assert starting_cash(result) == 25_000.0
    assert report_data(result, report_bars(result))["hold_y"][0] == 25_000.0


def test_markers_sit_at_the_trades_times_and_prices_on_their_candles(
    two_days: BacktestResult,
) -> None:
    data = report_data(two_days, report_bars(two_days))
    trades = two_days.trades
    for side, name in (("buy", "buys"), ("sell", "sells")):
        done = trades[trades["side"] == side]
        np.testing.assert_array_equal(data[f"{name}_y"], done["price"].to_numpy())
        np.testing.assert_array_equal(data[f"{name}_x"], naive_ms(done["created_at"]))
        # a market fill is on the candle it was priced from: that candle's close plus slippage;
        # the venue's stop fills inside a candle, at a price that candle traded at
        market = (done["reason"] != "venue_stop").to_numpy()
        x, y = data[f"{name}_x"], data[f"{name}_y"]
        candle = np.searchsorted(data["candle_x"], x)
        assert (data["candle_x"][candle[market]] == x[market]).all()
        closes = data["ohlc"][candle[market], 3]
        sign = 1 if side == "buy" else -1
        np.testing.assert_allclose(y[market], closes * (1 + sign * SLIPPAGE), rtol=1e-9)
        low, high = data["ohlc"][candle[~market], 2], data["ohlc"][candle[~market], 1]
        assert ((low <= y[~market]) & (y[~market] <= high)).all()
    assert (trades["reason"] == "venue_stop").any(), "the window should hold a venue stop fill"


def test_a_month_of_minutes_is_thinned_to_the_bounds_and_keeps_its_extremes(
    tmp_path: Path,
) -> None:
    result = run_backtest("BTC/USD", END - timedelta(days=30), END, timeframe="1Min",
                          db_path=tmp_path / "month.db")  # fmt: skip
    bars = report_bars(result)
    data = report_data(result, bars)
    assert result.cycles == len(bars) == 30 * 1440 + 1
    for name in ("equity", "hold", "drawdown"):
        assert 100 < len(data[f"{name}_x"]) <= MAX_POINTS
    assert 100 < len(data["candle_x"]) <= MAX_CANDLES and data["ohlc"].shape[1] == 4
    assert data["equity_y"].max() == result.equity.max()
    assert data["equity_y"].min() == result.equity.min()
    assert data["drawdown_y"].min() == pytest.approx(-result.metrics.max_drawdown_pct)
    assert data["ohlc"][:, 1].max() == bars["high"].max()
    assert data["ohlc"][:, 2].min() == bars["low"].min()
    assert data["ohlc"][0, 0] == bars["open"].iloc[0]
    assert data["ohlc"][-1, 3] == bars["close"].iloc[-1]
    assert data["candle_x"][-1] == naive_ms(pd.Index([result.end]))[0]
    # every trade keeps its marker
    assert len(data["buys_x"]) + len(data["sells_x"]) == len(result.trades) > 100


def test_metrics_table_has_every_number_but_no_wall_time(two_days: BacktestResult) -> None:
    table = two_days.table()
    assert "bars/s" not in table["metric"].tolist()
    timed = two_days.table(throughput=True).set_index("metric")["value"]
    assert timed["bars/s"] == pytest.approx(two_days.bars_per_s)
    page = metrics_table_html(two_days)
    assert page.count("<tr><td>") == len(table) and "bars/s" not in page
    n = two_days.metrics.n_trades
    assert f"<tr><td>trades (closed)</td><td>{n}</td></tr>" in page
    assert "<tr><td>net P&amp;L</td><td>" in page  # escaped
    assert f"<tr><td>bars replayed</td><td>{two_days.cycles}</td></tr>" in page
    assert "<tr><td>LLM tokens</td><td>0</td></tr>" in page
    assert "<tr><td>LLM cost $</td><td>$0.00</td></tr>" in page


def figures(widget: Widget) -> list[Figure]:
    """Every bqplot figure in a widget tree, in display order."""
    if isinstance(widget, Figure):
        return [widget]
    if isinstance(widget, Box):
        return [f for child in widget.children for f in figures(child)]
    return []


def test_report_builds_four_figures_with_the_runs_arrays(two_days: BacktestResult) -> None:
    widget = report(two_days)
    found = figures(widget)
    assert len(found) == 4  # equity vs buy-and-hold, drawdown, price, volume
    equity, drawdown, price, volume = found
    data = report_data(two_days, report_bars(two_days))
    hold, strategy = equity.marks
    assert isinstance(hold, Lines) and hold.labels == ["buy and hold"]
    np.testing.assert_array_equal(strategy.y, data["equity_y"])
    np.testing.assert_array_equal(hold.y, data["hold_y"])
    np.testing.assert_allclose(drawdown.marks[0].y, data["drawdown_y"])
    buys = [m for m in price.marks if getattr(m, "marker", None) == "triangle-up"]
    assert len(buys) == 1 and list(buys[0].y) == list(data["buys_y"])
    assert len(volume.marks[0].y) == two_days.cycles
    title = widget.children[1].value
    assert "Backtest BTC/USD 15Min" in title and "2026-11-20 12:00 UTC" in title
    assert "trades (closed)" in widget.children[-1].value


def test_report_of_stored_bars_reads_them_from_the_market_replayed(tmp_path: Path) -> None:
    """A FrameMarket with a gap: the chart shows the stored bars, not the simulator's."""
    bars = SimMarket().bars("SOL/USD", "15Min", END, 200)
    stored = pd.concat([bars.iloc[:150], bars.iloc[170:]])  # five hours missing
    market = FrameMarket("SOL/USD", "15Min", stored)
    result = run_backtest("SOL/USD", END - timedelta(days=1), END, timeframe="15Min",
                          market=market, db_path=tmp_path / "frame.db")  # fmt: skip
    shown = report_bars(result, market)
    assert len(shown) == result.cycles == 97 - 20
    data = report_data(result, shown)
    assert data["hold_y"][-1] == pytest.approx(100_000 * (1 + result.buy_and_hold_pct / 100))
    assert len(figures(report(result, market))) == 4


def sweep_table() -> pd.DataFrame:
    """Three runs as `run_sweep` returns them, the second one failed."""
    rows = [
        {"label": "BTC/USD pos=10%", "return_pct": 1.5, "buy_and_hold_pct": -2.0, "trades": 4,
         "win_rate_pct": 50.0, "max_drawdown_pct": 3.25, "sharpe": 1.1, "fees": 12.5,
         "error": None},
        {"label": "BTC/USD <bad>", "error": "DataError: no bars & no luck"},
        {"label": "SOL/USD pos=50%", "return_pct": -4.0, "buy_and_hold_pct": 6.0, "trades": 9,
         "win_rate_pct": 22.2, "max_drawdown_pct": 7.5, "sharpe": -0.4, "fees": 80.0,
         "error": None},
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def test_the_sweep_chart_numbers_the_finished_runs_as_the_table_does() -> None:
    data = sweep_chart_data(sweep_table())
    assert data["runs"].tolist() == ["#1", "#3"]  # the failed #2 has no bars, keeps its number
    assert data["return_pct"].tolist() == [1.5, -4.0]
    assert data["buy_and_hold_pct"].tolist() == [-2.0, 6.0]
    assert data["max_drawdown_pct"].tolist() == [-3.25, -7.5]  # drawn downwards
    text = sweep_table_html(sweep_table())
    assert text.count("<tr>") == 4  # the header and three runs
    assert "<td>#2</td><td>BTC/USD &lt;bad&gt;</td>" in text
    assert "failed: DataError: no bars &amp; no luck" in text
    assert "<td>1.50</td><td>-2.00</td><td>4</td><td>50.00</td><td>3.25</td>" in text


def test_the_sweep_report_draws_one_grouped_bar_chart_over_its_table() -> None:
    widget = sweep_report(SweepResult(sweep_table()))
    (figure,) = [w for w in widget.children if isinstance(w, Figure)]
    (bars,) = figure.marks
    assert bars.type == "grouped" and list(bars.x) == ["#1", "#3"]
    assert np.asarray(bars.y).shape == (3, 2)
    assert figure.title == "Sweep: 2 of 3 runs finished (%)"
    assert "failed: DataError" in widget.children[-1].value
