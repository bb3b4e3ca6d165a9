import math
from datetime import datetime

import pytest
from pydantic import ValidationError

from botlib.models import Action, AssetSettings, Decision, OrderRequest


def _decision(**kw: object) -> Decision:
    base: dict[str, object] = {
        "symbol": "BTC/USD",
        "action": "BUY",
        "confidence": 0.5,
        "position_size_pct": 5,
        "reasoning": "x",
    }
    return Decision.model_validate(base | kw)


def test_valid_decision_parses_action() -> None:
    assert _decision().action is Action.BUY


@pytest.mark.parametrize(
    "bad",
    [
        {"confidence": 1.5},
        {"confidence": math.nan},
        {"position_size_pct": -1},
        {"position_size_pct": math.inf},
        {"stop_loss": -5},
        {"action": "SHORT"},
        {"unexpected": 1},
        {"reasoning": "x" * 9000},
    ],
)
def test_invalid_decisions_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _decision(**bad)


def test_hold_is_a_valid_zero_size_decision() -> None:
    hold = Decision.hold("SOL/USD", "because")
    assert (hold.action, hold.position_size_pct, hold.confidence) == (Action.HOLD, 0.0, 0.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"timeframe": "2Hour"},
        {"interval_minutes": 0},
        {"interval_minutes": 61},
        {"position_size_pct": 0},
        {"stop_loss_pct": 100},
        {"last_cycle_at": datetime(2026, 1, 1)},  # noqa: DTZ001 - naive on purpose
    ],
)
def test_asset_settings_bounds(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AssetSettings.model_validate({"symbol": "BTC/USD"} | bad)


def test_order_request_needs_exactly_one_size() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        OrderRequest("BTC/USD", "buy", "c1", notional=10, qty=1)
    with pytest.raises(ValueError, match="exactly one"):
        OrderRequest("BTC/USD", "buy", "c1")
    with pytest.raises(ValueError, match="side"):
        OrderRequest("BTC/USD", "short", "c1", qty=1)


def test_a_limit_decision_carries_its_price_and_a_market_one_none() -> None:
    limit = _decision(order_type="limit", limit_price=95.5)
    assert (limit.order_type, limit.limit_price) == ("limit", 95.5)
    assert (_decision().order_type, _decision().limit_price) == ("market", None)
    assert Decision.hold("BTC/USD", "x").order_type == "market"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"order_type": "limit"}, "order_type 'limit' needs a limit_price"),
        ({"order_type": "limit", "limit_price": None}, "order_type 'limit' needs a limit_price"),
        ({"limit_price": 95.0}, "a market order takes no limit_price"),
        ({"order_type": "limit", "limit_price": 0}, "greater than 0"),
        ({"order_type": "limit", "limit_price": -3}, "greater than 0"),
        ({"order_type": "limit", "limit_price": math.inf}, "finite"),
        ({"order_type": "limit", "limit_price": math.nan}, "greater than 0"),
        ({"order_type": "stop_limit", "limit_price": 95.0}, "'market' or 'limit'"),
    ],
)
def test_entry_fields_that_disagree_are_rejected(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _decision(**bad)
