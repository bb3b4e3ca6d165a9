from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botlib.analysts.rules import RuleParams, RulesAnalyst
from botlib.core.decision_checks import decision_problem
from botlib.features.indicators import add_indicators
from botlib.features.smc.summary import smc_features, summary
from botlib.models import Account, Action, AssetSettings, Position
from botlib.ports import MarketContext
from tests.test_indicators import random_bars

ACCOUNT = Account(cash=100_000, equity=100_000, buying_power=100_000, mode="sim")
ASSET = AssetSettings(symbol="BTC/USD", position_size_pct=10)


def context(
    bars: pd.DataFrame, position: Position | None = None, smc: dict[str, Any] | None = None
) -> MarketContext:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    price = float(bars.close.iloc[-1])
    return MarketContext("BTC/USD", now, bars, ASSET, ACCOUNT, position, price, smc or {})


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


LIMITS = RulesAnalyst(RuleParams(limit_entries=True))
FVG = {"top": 98.0, "bottom": 97.0}
SETUP = {"trend": "bullish", "premium_discount": {"zone": "discount", "position": 0.3},
         "sweep": None, "last_break": None}  # fmt: skip


def test_limit_entries_buy_at_the_top_of_the_zone_under_the_price() -> None:
    ctx = context(row(), smc={"fvg_below": FVG})
    d = LIMITS.decide(ctx).decision
    assert (d.action, d.order_type, d.limit_price) == (Action.BUY, "limit", 98.0)
    # stop 0.1 ATR under the zone, target 3 ATR over the limit price: levels hang off the fill
    assert (d.stop_loss, d.take_profit) == pytest.approx((96.8, 104.0))
    assert "limit entry at the top of the bullish FVG 97-98 under the price 100" in d.reasoning
    assert decision_problem(d, ctx) is None


def test_limit_entries_pick_the_zone_nearest_the_price_and_the_setups_lowest_stop() -> None:
    smc = SETUP | {
        "fvg_below": {"top": 95.0, "bottom": 94.0},
        "ob_below": {"top": 97.0, "bottom": 96.0},
    }
    ctx = context(row(), smc=smc)
    d = LIMITS.decide(ctx).decision
    assert (d.order_type, d.limit_price) == ("limit", 97.0)
    assert d.stop_loss == pytest.approx(93.8)  # under the setup's lowest zone, the FVG at 94
    assert "bullish order block 96-97" in d.reasoning and decision_problem(d, ctx) is None


@pytest.mark.parametrize(
    ("params", "smc"),
    [
        (RuleParams(), {"fvg_below": FVG}),  # off by default
        (RuleParams(limit_entries=True), {}),  # no zone to rest in
        (RuleParams(limit_entries=True), {"fvg_below": {"top": 101.0, "bottom": 99.0}}),  # in it
    ],
    ids=["default-off", "no-zone", "price-inside-the-zone"],
)
def test_a_buy_stays_a_market_order_without_a_zone_under_the_price(
    params: RuleParams, smc: dict[str, Any]
) -> None:
    d = RulesAnalyst(params).decide(context(row(), smc=smc)).decision
    assert (d.action, d.order_type, d.limit_price) == (Action.BUY, "market", None)
    assert (d.stop_loss, d.take_profit) == (96.0, 106.0)


def test_limit_mode_changes_only_the_entry_of_a_buy_on_real_bars() -> None:
    """On simulated bars with the real SMC summary, limit mode decides the same action, size and
    confidence; its limit buys pass `decision_problem`; its other decisions equal the default's."""
    limits = 0
    for seed in range(12):
        full = add_indicators(random_bars(seed, 260))
        features = smc_features(full)
        for cut in range(120, 260, 7):
            smc = summary(full.iloc[: cut + 1], features=features.iloc[: cut + 1])
            ctx = context(full.iloc[: cut + 1], smc=smc)
            market, limit = RulesAnalyst().decide(ctx).decision, LIMITS.decide(ctx).decision
            assert market.order_type == "market"
            if limit.order_type == "market":
                assert limit == market
                continue
            limits += 1
            assert (limit.action, limit.confidence, limit.position_size_pct) == (
                market.action, market.confidence, market.position_size_pct)  # fmt: skip
            assert limit.limit_price is not None and limit.limit_price < ctx.price
            assert decision_problem(limit, ctx) is None, decision_problem(limit, ctx)
    assert limits >= 5, limits  # the sweep reached limit entries
