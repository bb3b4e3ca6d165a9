import pytest
from hypothesis import given
from hypothesis import strategies as st

from botlib.core.risk import RiskLimits, TradingState, check, is_halted, trading_state
from botlib.models import Account, Action, AssetSettings, Decision, Position

ASSET = AssetSettings(symbol="BTC/USD", position_size_pct=10, stop_loss_pct=2, take_profit_pct=4)
RICH = Account(cash=50_000, equity=100_000, buying_power=50_000, mode="sim")


def decide(action: str = "BUY", **kw: object) -> Decision:
    return Decision.model_validate(
        {
            "symbol": "BTC/USD",
            "action": action,
            "confidence": 0.8,
            "position_size_pct": 50,
            "reasoning": "r",
        }
        | kw
    )


def run(decision: Decision, account: Account = RICH, position: Position | None = None, **kw):  # type: ignore[no-untyped-def]
    return check(
        decision,
        asset=ASSET,
        account=account,
        position=position,
        price=100.0,
        client_order_id="cid",
        **kw,
    )


def test_buy_is_capped_by_the_asset_limit_and_gets_default_stops() -> None:
    v = run(decide())
    assert v.approved and v.order is not None
    assert v.order.notional == 10_000.0  # 50% asked, 10% allowed
    assert (v.stop_loss, v.take_profit) == pytest.approx((98.0, 104.0))


def test_buy_is_capped_by_cash() -> None:
    poor = Account(cash=1_000, equity=100_000, buying_power=1_000, mode="sim")
    v = run(decide(), poor)
    assert v.order is not None and v.order.notional == 990.0


@pytest.mark.parametrize(
    ("decision", "position", "account", "reason"),
    [
        (decide("HOLD"), None, RICH, "hold"),
        (decide("SELL"), None, RICH, "no shorting"),
        (decide(), Position("BTC/USD", 1, 90), RICH, "already holding"),
        (decide(), None, Account(0.5, 0.5, 0.5, "sim"), "below the 1 USD minimum"),
        (decide(stop_loss=101.0), None, RICH, "stop-loss 101 must be below entry"),
        (decide(take_profit=99.0), None, RICH, "take-profit 99 must be above entry"),
    ],
)
def test_denials_say_why(decision, position, account, reason) -> None:  # type: ignore[no-untyped-def]
    v = run(decision, account, position)
    assert not v.approved and v.order is None
    assert reason in v.reason


def test_sell_closes_the_whole_position() -> None:
    v = run(decide("SELL"), position=Position("BTC/USD", 0.25, 90))
    assert v.approved and v.order is not None
    assert (v.order.side, v.order.qty) == ("sell", 0.25)


def test_drawdown_halts_strictly_beyond_the_limit() -> None:
    limits = RiskLimits(max_drawdown_pct=20)
    halted = trading_state(79, 100, limits)
    assert (halted.state, halted.halt) == (TradingState.HALTED, "drawdown")
    assert trading_state(80, 100, limits).state is TradingState.ACTIVE
    assert "21.00% below its peak" in halted.detail


def test_daily_loss_halts_at_the_limit() -> None:
    limits = RiskLimits(max_daily_loss_pct=5)
    assert trading_state(95.01, 100, limits, day_start=100).state is TradingState.ACTIVE
    halted = trading_state(95, 100, limits, day_start=100)
    assert (halted.state, halted.halt) == (TradingState.HALTED, "daily_loss")
    assert halted.limit == "daily loss limit 5.0%"
    assert trading_state(95, 100, limits, day_start=None).state is TradingState.ACTIVE
    # a day that started lower is judged from its own start
    assert trading_state(95, 100, limits, day_start=96).state is TradingState.ACTIVE


def test_drawdown_is_named_first_when_both_limits_are_crossed() -> None:
    status = trading_state(70, 100, RiskLimits(max_drawdown_pct=20), day_start=100)
    assert status.halt == "drawdown"


@pytest.mark.parametrize(
    ("equity", "day_start", "reason"),
    [
        (79, None, "denied: trading halted (drawdown limit 20.0%), exits only"),
        (94, 100, "denied: trading halted (daily loss limit 5.0%), exits only"),
    ],
)
def test_halted_denies_entries_with_its_reason_but_allows_exits(
    equity: float, day_start: float | None, reason: str
) -> None:
    status = trading_state(equity, 100, RiskLimits(), day_start=day_start)
    assert run(decide(), status=status).reason == reason
    sell = run(decide("SELL"), position=Position("BTC/USD", 1, 90), status=status)
    assert sell.approved and sell.order is not None and sell.order.side == "sell"


def test_position_cap_beats_decision_and_asset() -> None:
    asset = ASSET.model_copy(update={"position_size_pct": 50})
    verdict = check(
        decide(position_size_pct=80),
        asset=asset,
        account=RICH,
        position=None,
        price=100.0,
        client_order_id="cid",
        limits=RiskLimits(max_position_pct=10),
    )
    assert verdict.order is not None
    assert verdict.order.notional == pytest.approx(RICH.equity * 0.10)
    assert "10.00% of equity" in verdict.reason


def test_model_output_cannot_raise_limits() -> None:
    greedy = decide(position_size_pct=100, confidence=1.0)
    v = run(greedy)
    assert v.order is not None and v.order.notional <= RICH.equity * ASSET.position_size_pct / 100
    assert Action.BUY is greedy.action


def test_a_limit_buy_rests_at_its_price_sized_like_a_market_buy() -> None:
    v = run(decide(order_type="limit", limit_price=95.0, stop_loss=93.0, take_profit=101.0))
    assert v.approved and v.order is not None
    assert (v.order.type, v.order.limit_price, v.order.side) == ("limit", 95.0, "buy")
    assert v.order.notional == 10_000.0 and v.order.rests
    assert (v.stop_loss, v.take_profit) == (93.0, 101.0)
    assert v.reason == "approved: limit buy 10,000.00 USD at 95 (10.00% of equity)"


def test_a_limit_buys_default_stop_and_target_hang_off_the_limit_price() -> None:
    v = run(decide(order_type="limit", limit_price=90.0))
    assert v.approved
    assert (v.stop_loss, v.take_profit) == pytest.approx((88.2, 93.6))  # 90 -2 % / +4 %


def test_a_market_buy_is_unchanged_by_the_entry_fields() -> None:
    v = run(decide(order_type="market"))
    assert v.order is not None and (v.order.type, v.order.limit_price) == ("market", None)
    assert v.reason == "approved: buy 10,000.00 USD (10.00% of equity)"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"limit_price": 100.5}, "denied: buy limit 100.5 above the price 100"),
        ({"limit_price": 95.0, "stop_loss": 96.0}, "stop-loss 96 must be below entry 95"),
        ({"limit_price": 95.0, "take_profit": 94.0}, "take-profit 94 must be above entry 95"),
    ],
)
def test_limit_buy_denials_measure_from_the_limit_price(kw: dict[str, float], reason: str) -> None:
    v = run(decide(order_type="limit", **kw))
    assert not v.approved and v.order is None
    assert reason in v.reason


def test_a_sell_is_a_market_order_whatever_else_it_says() -> None:
    v = run(decide("SELL", position_size_pct=0), position=Position("BTC/USD", 0.25, 90))
    assert v.order is not None and (v.order.type, v.order.qty) == ("market", 0.25)


def test_a_halted_account_denies_a_limit_entry_too() -> None:
    status = trading_state(79, 100, RiskLimits())
    v = run(decide(order_type="limit", limit_price=95.0), status=status)
    assert not v.approved and "trading halted" in v.reason


@given(
    st.floats(1, 1e6), st.floats(1, 1e6), st.one_of(st.none(), st.floats(0, 1e6)),
    st.floats(0.5, 50), st.floats(0.5, 50),
)  # fmt: skip
def test_is_halted_says_what_trading_state_says(
    equity: float, peak: float, day_start: float | None, drawdown: float, daily: float
) -> None:
    limits = RiskLimits(max_drawdown_pct=drawdown, max_daily_loss_pct=daily)
    expected = trading_state(equity, peak, limits, day_start).halted
    assert is_halted(equity, peak, limits, day_start) is expected
