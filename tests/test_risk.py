import pytest

from botlib.models import Account, Action, AssetSettings, Decision, Position
from botlib.risk import RiskLimits, TradingState, check, trading_state

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


def test_halted_allows_exits_only() -> None:
    assert trading_state(79, 100, RiskLimits(max_drawdown_pct=20)) is TradingState.HALTED
    assert trading_state(81, 100, RiskLimits(max_drawdown_pct=20)) is TradingState.ACTIVE
    assert "halted" in run(decide(), state=TradingState.HALTED).reason
    sell = run(decide("SELL"), position=Position("BTC/USD", 1, 90), state=TradingState.HALTED)
    assert sell.approved


def test_model_output_cannot_raise_limits() -> None:
    greedy = decide(position_size_pct=100, confidence=1.0)
    v = run(greedy)
    assert v.order is not None and v.order.notional <= RICH.equity * ASSET.position_size_pct / 100
    assert Action.BUY is greedy.action
