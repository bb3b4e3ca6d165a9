from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botlib.analysts.rules import RulesAnalyst
from botlib.features.indicators import add_indicators
from botlib.models import Account, Action, AssetSettings, Position
from botlib.ports import MarketContext
from tests.test_indicators import random_bars

ACCOUNT = Account(cash=100_000, equity=100_000, buying_power=100_000, mode="sim")
ASSET = AssetSettings(symbol="BTC/USD", position_size_pct=10)


def context(bars: pd.DataFrame, position: Position | None = None) -> MarketContext:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return MarketContext("BTC/USD", now, bars, ASSET, ACCOUNT, position, float(bars.close.iloc[-1]))


def row(**kw: float) -> pd.DataFrame:
    base = {
        "open": 100.0,
        "high": 101.0,
        "low": 99.0,
        "close": 100.0,
        "volume": 1.0,
        "rsi": 55.0,
        "macd": 1.0,
        "macd_signal": 0.5,
        "macd_hist": 0.5,
        "bb_lower": 95.0,
        "bb_middle": 99.0,
        "bb_upper": 105.0,
        "sma_20": 101.0,
        "sma_50": 99.0,
        "atr": 2.0,
    }
    idx = pd.DatetimeIndex([datetime(2029, 12, 31, 23, tzinfo=UTC)])
    return pd.DataFrame([base | kw], index=idx)


LONG = Position("BTC/USD", 1.0, 95.0)


@pytest.mark.parametrize(
    ("kw", "position", "action"),
    [
        ({}, None, Action.BUY),  # 4/4 bullish in an uptrend
        ({"sma_20": 98.0}, None, Action.HOLD),  # bullish signals but no uptrend
        ({"rsi": 45.0, "macd_hist": -0.1}, None, Action.HOLD),  # only 2/4 bullish
        ({}, LONG, Action.HOLD),  # already long: no second entry
        ({"rsi": 80.0}, LONG, Action.SELL),  # overbought while long
        ({"sma_20": 98.0, "macd_hist": -1.0, "rsi": 40.0, "close": 97.0}, LONG, Action.SELL),
        ({"sma_20": 98.0, "macd_hist": -1.0, "rsi": 40.0, "close": 97.0}, None, Action.HOLD),
    ],
)
def test_each_branch(kw: dict[str, float], position: Position | None, action: Action) -> None:
    result = RulesAnalyst().decide(context(row(**kw), position))
    assert result.decision.action is action
    assert result.decision.reasoning.startswith(action.value)


def test_buy_carries_atr_stops_and_scaled_size() -> None:
    d = RulesAnalyst().decide(context(row())).decision
    assert (d.stop_loss, d.take_profit) == (96.0, 106.0)  # close -/+ 2 and 3 ATR
    assert d.confidence == 1.0 and d.position_size_pct == 10.0


def test_result_is_auditable() -> None:
    result = RulesAnalyst().decide(context(row()))
    assert result.request["indicators"]["rsi"] == 55.0
    assert len(result.call.prompt["bullish"]) == 4
    assert result.call.response["action"] == "BUY"
    assert result.call.latency_ms is not None and result.call.latency_ms >= 0
    assert result.call.output_mode == "rules" and result.call.cost_usd is None


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(60, 199))
def test_decision_at_bar_i_ignores_later_bars(seed: int, cut: int) -> None:
    bars = random_bars(seed, 200)
    full = add_indicators(bars)
    truncated = add_indicators(bars.iloc[: cut + 1])
    a = RulesAnalyst().decide(context(full.iloc[: cut + 1])).decision
    b = RulesAnalyst().decide(context(truncated)).decision
    assert a == b
