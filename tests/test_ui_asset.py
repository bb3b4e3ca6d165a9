"""One asset's panel: chart arrays and stat texts (pure functions), without a browser."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botlib.features.indicators import add_indicators
from botlib.features.smc import smc_features
from botlib.models import AssetSettings
from botlib.reporting.analytics import metrics
from botlib.reporting.queries import DashboardData
from botlib.ui import asset_panel
from botlib.ui.asset_panel import PAUSED_BADGE, asset_texts, cost_text, resting_text, title_html
from botlib.ui.shaping.charts import OVERLAYS, RESTING_KINDS, chart_data
from botlib.ui.shaping.text import money, percent, signed_money, slug
from botlib.venues.sim import SimMarket

END = datetime(2026, 11, 20, 12, tzinfo=UTC)
BARS = SimMarket().bars("BTC/USD", "15Min", END, 1200)  # the real simulator's bars
WIDTH = pd.Timedelta(minutes=15)


def _data(window: int = 150, warm_up: int = 50, **changes: Any) -> DashboardData:
    """Build a DashboardData from simulated bars: `warm_up` bars, then a `window`, one buy."""
    frame = BARS.iloc[len(BARS) - window - warm_up :]
    bars, history = frame.iloc[warm_up:], frame.iloc[:warm_up]
    inside = bars.index[-min(3, len(bars))] + WIDTH
    trades = pd.DataFrame(
        [
            {"side": "buy", "price": 102.1, "filled_at": inside.isoformat()},
            {"side": "sell", "price": 90.0, "filled_at": bars.index[0].isoformat()},  # too old
        ]
    )
    fields: dict[str, Any] = {
        "asset": AssetSettings(symbol="BTC/USD", timeframe="15Min", interval_minutes=15),
        "bars": bars,
        "history": history,
        "trades": trades,
        "position": {"qty": 2.0, "avg_entry_price": 100.0, "stop_loss": 98.0, "take_profit": 104.0},
        "metrics": metrics(pd.Series(dtype=float), pd.Series([5.0, -2.0]), -12.5),
        "last_decision": {
            "action": "BUY",
            "analyst": "openai",
            "confidence": 0.75,
            "created_at": "2026-11-20T10:45:00+00:00",
            "reasoning": "<img src=x onerror=alert(1)> trend up",
            "total_tokens": 1234,
            "cost_usd": 0.00185,
        },
        "last_cycle": {"started_at": "2026-11-20T10:45:00+00:00", "status": "ok", "reason": None},
        "last_reflection": None,
        "cycles": 7,
    }
    return DashboardData(**(fields | changes))


def _ends(bars: pd.DataFrame) -> np.ndarray:
    return (bars.index + WIDTH).tz_convert(None).to_numpy().astype("datetime64[ms]")


# formatters ----------------------------------------------------------------------------------
def test_formatters_show_signs_units_and_missing_values() -> None:
    assert slug("BTC/USD") == "BTCUSD"
    assert money(1234.5) == "$1,234.50"
    assert money(float("nan")) == money(None) == "—"
    assert signed_money(12.345) == "+$12.35"
    assert signed_money(-0.001) == "$0.00"
    assert percent(0.25) == "25.0 %"


# chart arrays --------------------------------------------------------------------------------
def test_candles_volume_and_overlays_match_the_bars() -> None:
    data = _data(window=150, warm_up=50)
    chart = chart_data(data)
    bars = data.bars
    np.testing.assert_array_equal(chart.x, _ends(bars))  # drawn at each bar's close time
    ohlc = bars[["open", "high", "low", "close"]].to_numpy()
    np.testing.assert_array_equal(chart.ohlc, ohlc)
    np.testing.assert_array_equal(chart.volume, bars["volume"].to_numpy())
    np.testing.assert_array_equal(chart.rising, (ohlc[:, 3] >= ohlc[:, 0]).astype(float))
    full = add_indicators(pd.concat([data.history, bars])).iloc[50:]
    for name in OVERLAYS:
        np.testing.assert_allclose(chart.overlays[name], full[name].to_numpy())
        x, y = chart.overlay_line(name)
        assert len(x) == len(y) == len(bars)  # the warm-up bars define the first drawn bar
    features = smc_features(pd.concat([data.history, bars])).iloc[50:]
    np.testing.assert_array_equal(chart.smc.zones["bull_fvg"][0], features["bull_fvg_top"])


def test_without_warm_up_bars_overlays_start_where_they_are_defined() -> None:
    chart = chart_data(_data(window=120, warm_up=0))
    x, y = chart.overlay_line("sma_50")
    assert len(y) == 120 - 49 and np.isfinite(y).all()
    assert x[0] == chart.x[49]


@settings(max_examples=25, deadline=None)
@given(window=st.integers(1, 1100), cap=st.integers(1, 300))
def test_downsampling_caps_candles_and_keeps_the_window_extremes(window: int, cap: int) -> None:
    data = _data(window=window, warm_up=50)
    chart = chart_data(data, max_candles=cap)
    bars = data.bars
    assert len(chart.x) == len(chart.ohlc) == len(chart.volume) <= cap
    assert len(chart.x) == window or window > cap  # merged only when there are too many
    assert (np.diff(chart.x) > np.timedelta64(0)).all()
    assert chart.ohlc[0, 0] == bars["open"].iloc[0]
    assert chart.ohlc[-1, 3] == bars["close"].iloc[-1]
    assert chart.ohlc[:, 1].max() == bars["high"].max()
    assert chart.ohlc[:, 2].min() == bars["low"].min()
    assert chart.volume.sum() == pytest.approx(bars["volume"].sum())
    assert chart.x[-1] == _ends(bars)[-1]
    # overlays are read at each candle's last bar, which closes at the candle's x
    full = add_indicators(pd.concat([data.history, bars])).iloc[50:]
    last_rows = np.searchsorted(_ends(bars), chart.x)
    np.testing.assert_allclose(chart.overlays["sma_20"], full["sma_20"].to_numpy()[last_rows])


def test_overlay_at_each_bar_uses_only_the_bars_up_to_it() -> None:
    data = _data(window=160, warm_up=50)
    chart = chart_data(data)
    for i in [*range(0, 160, 9), 159]:
        cut = chart_data(_data(window=160, warm_up=50, bars=data.bars.iloc[: i + 1]))
        for name in OVERLAYS:
            assert cut.overlays[name][-1] == pytest.approx(chart.overlays[name][i], nan_ok=True)
            assert np.isfinite(chart.overlays[name][i])
        for name, (top, _) in chart.smc.zones.items():
            assert cut.smc.zones[name][0][-1] == pytest.approx(top[i], nan_ok=True)


def test_fills_outside_the_window_are_not_drawn_and_levels_span_it() -> None:
    chart = chart_data(_data())
    assert chart.buys_y.tolist() == [102.1]
    assert len(chart.sells_x) == 0  # filled at the first bar's open: before the window
    x, y = chart.level_line("stop_loss")
    assert x.tolist() == [chart.x[0], chart.x[-1]]
    assert y.tolist() == [98.0, 98.0]


def test_chart_data_without_position_or_bars_has_empty_marks() -> None:
    empty = BARS.iloc[:0]
    chart = chart_data(_data(position=None, bars=empty, history=empty, trades=pd.DataFrame()))
    assert len(chart.x) == len(chart.ohlc) == len(chart.volume) == len(chart.buys_x) == 0
    assert chart.ohlc.shape == (0, 4)
    assert [len(a) for a in chart.level_line("take_profit")] == [0, 0]
    assert [len(a) for a in chart.overlay_line("sma_20")] == [0, 0]


# resting orders ------------------------------------------------------------------------------
STOP = {
    "order_type": "stop_limit", "side": "sell", "qty": 2.0, "notional": None, "stop_price": 98.0,
    "limit_price": 97.51, "reason": "venue_stop", "status": "pending", "revision": 2,
    "created_at": "2026-11-20T10:45:00+00:00", "expires_at": None,
}  # fmt: skip
ENTRY = {
    "order_type": "limit", "side": "buy", "qty": None, "notional": 500.0, "stop_price": None,
    "limit_price": 95.5, "reason": "signal", "status": "pending", "revision": None,
    "created_at": "2026-11-20T11:00:00+00:00", "expires_at": "2026-11-20T14:00:00+00:00",
}  # fmt: skip


def test_resting_orders_are_labelled_levels_across_the_chart() -> None:
    second = ENTRY | {"limit_price": 93.25}
    chart = chart_data(_data(resting=[ENTRY, STOP, second]))
    x, y = chart.resting_lines("resting_stop")
    assert x.tolist() == [chart.x[0], chart.x[-1]] and y.tolist() == [[98.0, 98.0]]
    x, y, text = chart.resting_labels("resting_stop")
    assert (x.tolist(), y.tolist(), text) == ([chart.x[0]], [98.0], ["stop 98 (open, rev 2)"])
    _, y = chart.resting_lines("resting_stop_limit")
    _, _, text = chart.resting_labels("resting_stop_limit")
    assert y.tolist() == [[97.51, 97.51]] and text == ["stop limit 97.51 (open, rev 2)"]
    _, y = chart.resting_lines("resting_limit")
    assert y.tolist() == [[95.5, 95.5], [93.25, 93.25]]
    _, y, text = chart.resting_labels("resting_limit")
    assert y.tolist() == [95.5, 93.25]
    assert text == ["buy limit 95.5 (open)", "buy limit 93.25 (open)"]


def test_no_resting_orders_or_no_bars_draw_no_levels() -> None:
    for chart in (
        chart_data(_data()),
        chart_data(_data(resting=[STOP], bars=BARS.iloc[:0], history=BARS.iloc[:0])),
        chart_data(_data(resting=[STOP | {"stop_price": None, "limit_price": float("nan")}])),
    ):
        for kind in RESTING_KINDS:
            assert [len(a) for a in chart.resting_lines(kind)] == [0, 0]
            assert [len(a) for a in chart.resting_labels(kind)] == [0, 0, 0]


def test_resting_text_lists_each_order_or_none() -> None:
    assert asset_texts(_data())["resting"] == resting_text([]) == "none"
    text = asset_texts(_data(resting=[ENTRY, STOP]))["resting"]
    assert text.split("<br>") == [
        "limit buy $500.00 limit 95.5 (open, expires 2026-11-20 14:00 UTC)"
        " · placed 2026-11-20 11:00 UTC",
        "stop_limit sell 2 stop 98 limit 97.51 (open, rev 2) · placed 2026-11-20 10:45 UTC",
    ]
    hostile = resting_text([STOP | {"side": "<img src=x>", "status": "<b>", "revision": None}])
    assert "<img" not in hostile and "<b>" not in hostile
    assert hostile.startswith("stop_limit &lt;img src=x&gt; 2 stop 98") and "(&lt;b&gt;)" in hostile


# texts ---------------------------------------------------------------------------------------
def test_asset_texts_format_position_schedule_and_decision() -> None:
    data = _data()
    texts = asset_texts(data)
    last = float(data.bars["close"].iloc[-1])
    assert texts["price"] == money(last)
    assert texts["position"] == "2"
    assert texts["unrealized"] == signed_money(2.0 * (last - 100.0)).join(
        ['<span class="botlib-gain">', "</span>"]
    )
    assert texts["levels"] == "$98.00 / $104.00"
    assert texts["pnl"] == '<span class="botlib-loss">−$12.50</span>'
    assert texts["interval"] == "every 15 min · 15Min bars"
    assert texts["state"] == "active"
    assert texts["cycles"] == "7"
    assert texts["decision"] == (
        '<span class="botlib-action-buy">BUY</span> · confidence 75 % · 2026-11-20 10:45 UTC'
        " · 1,234 tokens · $0.00185"
    )
    assert "<img" not in texts["reasoning"] and "&lt;img" in texts["reasoning"]
    assert texts["cycle"] == "2026-11-20 10:45 UTC · ok"
    assert not {"win-rate", "sharpe", "drawdown"} & set(texts)  # in the performance table


def test_rules_decisions_have_no_tokens() -> None:
    assert cost_text({"analyst": "rules", "total_tokens": None, "cost_usd": None}) == (
        "rules: no tokens"
    )
    assert cost_text({"total_tokens": 10, "cost_usd": None}) == "10 tokens · cost unknown"
    assert cost_text({"analyst": "<b>x</b>"}) == "&lt;b&gt;x&lt;/b&gt;: no tokens"
    assert cost_text({}) == "no tokens"


def test_paused_asset_shows_a_badge_in_the_state_and_title() -> None:
    paused = AssetSettings(symbol="BTC/USD", timeframe="15Min", interval_minutes=15, paused=True)
    assert asset_texts(_data(asset=paused))["state"] == PAUSED_BADGE
    assert "PAUSED" in PAUSED_BADGE and "PAUSED" not in title_html("BTC/USD", paused=False)
    assert title_html("<x>", paused=True) == f"<h3>&lt;x&gt; {PAUSED_BADGE}</h3>"


def test_analyst_shows_the_override_or_the_default() -> None:
    override = AssetSettings(symbol="BTC/USD", analyst="openai")
    assert asset_texts(_data(asset=override))["analyst"] == "openai · asset override"
    assert asset_texts(_data(default_analyst="rules"))["analyst"] == "rules · default"
    assert asset_texts(_data())["analyst"] == "default (last: openai)"
    assert asset_texts(_data(last_decision=None))["analyst"] == "default"


def test_reflection_texts_are_escaped_and_structured() -> None:
    reflection = {
        "created_at": "2026-11-20T11:00:00+00:00",
        "trade_id": 12,
        "analyst": "openai",
        "what_worked": "<script>x</script> entry",
        "what_failed": None,
        "suggestions": '["tighten & trail", "wait"]',
        "content": "ignored when the parts exist",
    }
    texts = asset_texts(_data(last_reflection=reflection))
    assert texts["reflected"] == "2026-11-20 11:00 UTC · trade #12 · openai"
    assert texts["reflection"] == (
        "<b>Worked:</b> &lt;script&gt;x&lt;/script&gt; entry<br>"
        "<b>Next:</b> tighten &amp; trail; wait"
    )
    plain = asset_texts(_data(last_reflection={"content": "a" * 700 + "<"}))
    assert plain["reflection"] == "a" * 599 + "…"
    assert asset_texts(_data())["reflection"] == "—"


def test_cycle_reason_and_unknown_actions_are_escaped() -> None:
    texts = asset_texts(
        _data(
            last_cycle={"started_at": "2026-11-20T10:45:00+00:00", "status": "<b>", "error": "<i>"},
            last_decision={"action": '"><script>', "created_at": None},
        )
    )
    assert texts["cycle"].endswith("&lt;b&gt;") and texts["cycle-reason"] == "&lt;i&gt;"
    assert texts["decision"].startswith(
        '<span class="botlib-action-&quot;&gt;&lt;script&gt;">&quot;&gt;&lt;script&gt;</span>'
    )
    assert texts["decision"].endswith(" · — · no tokens")  # no time, no analyst


def test_asset_texts_when_flat_and_never_decided() -> None:
    texts = asset_texts(_data(position=None, last_decision=None, last_cycle=None))
    assert texts["position"] == "flat"
    assert texts["entry"] == texts["decision"] == texts["cycle"] == "—"


def test_docstring_examples_run() -> None:
    result = doctest.testmod(asset_panel)
    assert result.attempted > 0 and result.failed == 0
