"""One asset's panel: data shaping (pure functions) and chart data, without a browser."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from botlib.analytics import metrics
from botlib.models import AssetSettings
from botlib.queries import DashboardData
from botlib.ui.shaping import (
    asset_texts,
    chart_data,
    money,
    percent,
    signed_money,
    slug,
)

T = pd.Timestamp("2026-11-20T10:00:00Z")


def _data(**changes: Any) -> DashboardData:
    """Build a small hand-made DashboardData: three 15-minute bars, a buy, an open position."""
    index = pd.DatetimeIndex([T + pd.Timedelta(minutes=15 * i) for i in range(3)], name="ts")
    bars = pd.DataFrame(
        {"open": 100.0, "high": 103.0, "low": 99.0, "close": [100.0, 102.0, 101.0]}, index=index
    )
    trades = pd.DataFrame(
        [
            {"side": "buy", "price": 102.1, "filled_at": "2026-11-20T10:30:00+00:00"},
            {"side": "sell", "price": 90.0, "filled_at": "2026-11-19T10:30:00+00:00"},  # too old
        ]
    )
    fields: dict[str, Any] = {
        "asset": AssetSettings(symbol="BTC/USD", timeframe="15Min", interval_minutes=15),
        "bars": bars,
        "trades": trades,
        "position": {"qty": 2.0, "avg_entry_price": 100.0, "stop_loss": 98.0, "take_profit": 104.0},
        "metrics": metrics(pd.Series(dtype=float), pd.Series([5.0, -2.0]), -12.5),
        "last_decision": {
            "action": "BUY",
            "confidence": 0.75,
            "created_at": "2026-11-20T10:45:00+00:00",
            "reasoning": "<img src=x onerror=alert(1)> trend up",
        },
        "last_cycle": {"started_at": "2026-11-20T10:45:00+00:00", "status": "ok", "reason": None},
        "last_reflection": None,
        "cycles": 7,
    }
    return DashboardData(**(fields | changes))


# pure shaping --------------------------------------------------------------------------------
def test_formatters_show_signs_units_and_missing_values() -> None:
    assert slug("BTC/USD") == "BTCUSD"
    assert money(1234.5) == "$1,234.50"
    assert money(float("nan")) == money(None) == "—"
    assert signed_money(12.345) == "+$12.35"
    assert signed_money(-0.001) == "$0.00"
    assert percent(0.25) == "25.0 %"


def test_chart_data_plots_closes_at_bar_end_and_keeps_only_fills_in_view() -> None:
    chart = chart_data(_data())
    assert chart.x.dtype == np.dtype("datetime64[ms]")
    assert str(chart.x[0]) == "2026-11-20T10:15:00.000"  # first bar's close time
    assert chart.close.tolist() == [100.0, 102.0, 101.0]
    assert chart.buys_y.tolist() == [102.1]
    assert len(chart.sells_x) == 0  # the sell predates the window: it would stretch the axis
    x, y = chart.level_line("stop_loss")
    assert [str(v) for v in x] == ["2026-11-20T10:15:00.000", "2026-11-20T10:45:00.000"]
    assert y.tolist() == [98.0, 98.0]


def test_chart_data_without_position_or_bars_has_empty_marks() -> None:
    empty = pd.DataFrame(columns=["open", "high", "low", "close"], dtype=float)
    empty.index = pd.DatetimeIndex([], tz="UTC")
    chart = chart_data(_data(position=None, bars=empty, trades=pd.DataFrame()))
    assert len(chart.x) == len(chart.close) == len(chart.buys_x) == 0
    assert [len(a) for a in chart.level_line("take_profit")] == [0, 0]


def test_asset_texts_format_position_metrics_and_escape_reasoning() -> None:
    texts = asset_texts(_data())
    assert texts["price"] == "$101.00"
    assert texts["position"] == "2"
    assert texts["unrealized"] == '<span class="botlib-gain">+$2.00</span>'
    assert texts["levels"] == "$98.00 / $104.00"
    assert texts["pnl"] == '<span class="botlib-loss">−$12.50</span>'
    assert (texts["win-rate"], texts["trades"], texts["cycles"]) == ("50.0 %", "2", "7")
    assert "BUY</span> · confidence 75 %" in texts["decision"]
    assert "<img" not in texts["reasoning"] and "&lt;img" in texts["reasoning"]
    assert texts["cycle"] == "2026-11-20 10:45 UTC · ok"


def test_asset_texts_when_flat_and_never_decided() -> None:
    texts = asset_texts(_data(position=None, last_decision=None, last_cycle=None))
    assert texts["position"] == "flat"
    assert texts["entry"] == texts["decision"] == texts["cycle"] == "—"
