"""Limit entries at the zone: `decision_problem` accepts a BUY limit only at or below the price,
inside a bullish FVG or order block of the context's SMC summary, with its stop and target on
the right sides of the limit price; anything else is refused saying what would pass."""

from __future__ import annotations

from typing import Any

import pytest

from botlib.analysts.smc_rules import limit_zone
from botlib.core.decision_checks import ZONE_TOLERANCE, bullish_zones, decision_problem
from botlib.models import Decision
from tests.test_rules import context, row

SMC = {
    "fvg_below": {"top": 98.0, "bottom": 97.0},
    "ob_below": {"top": 95.0, "bottom": 93.0},
    "fvg_above": {"top": 104.0, "bottom": 103.0},  # bearish: never a place to buy
}


def limit_buy(limit_price: float | None, action: str = "BUY", **kw: Any) -> Decision:
    fields = {"symbol": "BTC/USD", "action": action, "confidence": 0.7, "reasoning": "r",
              "position_size_pct": 5.0 if action == "BUY" else 0.0}  # fmt: skip
    if limit_price is not None:
        fields |= {"order_type": "limit", "limit_price": limit_price}
    return Decision.model_validate(fields | kw)


def problem(decision: Decision, smc: dict[str, Any] = SMC) -> str | None:
    return decision_problem(decision, context(row(close=100.0), smc=smc))  # price 100


@pytest.mark.parametrize("limit_price", [98.0, 97.5, 97.0, 95.0, 93.0])
def test_a_limit_inside_a_bullish_zone_passes(limit_price: float) -> None:
    assert problem(limit_buy(limit_price, stop_loss=92.0, take_profit=101.0)) is None


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (limit_buy(100.5), "limit_price 100.5 is above the price 100: a BUY limit must be at or"
                           " below it"),
        (limit_buy(96.0), "limit_price 96 is outside the bullish zones: use a price in bullish FVG"
                          " 97-98 or bullish order block 93-95"),
        (limit_buy(103.5), "limit_price 103.5 is above the price 100: a BUY limit must be at or"
                           " below it"),  # inside the bearish FVG
        (limit_buy(98.0, stop_loss=98.5), "stop_loss 98.5 is not below limit_price 98"),
        (limit_buy(97.5, take_profit=97.0), "take_profit 97 is not above limit_price 97.5"),
        (limit_buy(97.5, "SELL"), "SELL with order_type limit: only a BUY may rest as a limit"),
        (limit_buy(97.5, "HOLD"), "HOLD with order_type limit: only a BUY may rest as a limit"),
        (limit_buy(None, stop_loss=100.0), "stop_loss 100 is not below the price 100"),
    ],
    ids=["above-price", "between-zones", "bearish-zone", "stop-over-limit", "target-under-limit",
         "sell-limit", "hold-limit", "market-stop-unchanged"],
)  # fmt: skip
def test_a_bad_entry_is_refused_saying_what_passes(decision: Decision, expected: str) -> None:
    assert problem(decision) == expected


def test_a_limit_without_a_bullish_zone_is_refused() -> None:
    expected = (
        "no bullish FVG or order block in the SMC summary for limit_price 97 to rest in:"
        " buy at the market (order_type market) or HOLD"
    )
    assert problem(limit_buy(97.0), smc={}) == expected
    bearish_under_the_price = {"fvg_above": {"top": 97.5, "bottom": 96.5}}  # holds 97: no matter
    assert problem(limit_buy(97.0), smc=bearish_under_the_price) == expected


def test_a_stop_between_the_limit_and_the_price_is_judged_against_the_limit() -> None:
    """A stop of 99 is under the price (100) but over a 98 limit: the fill would be stopped."""
    assert problem(limit_buy(None, stop_loss=99.0)) is None
    assert problem(limit_buy(98.0, stop_loss=99.0)) == "stop_loss 99 is not below limit_price 98"


def test_a_target_under_the_price_but_over_the_limit_passes() -> None:
    assert problem(limit_buy(95.0, stop_loss=92.0, take_profit=99.0)) is None


def test_a_zone_edge_rounded_as_the_prompt_shows_it_still_passes() -> None:
    """The prompt shows 6 significant digits: 93531.2 for a top of 93531.16."""
    smc = {"fvg_below": {"top": 93531.16, "bottom": 93420.34}}
    ctx = context(row(close=93667.4), smc=smc)
    assert decision_problem(limit_buy(93531.2), ctx) is None
    assert decision_problem(limit_buy(93420.3), ctx) is None
    beyond = 93531.16 * (1 + 2 * ZONE_TOLERANCE)
    assert "outside the bullish zones" in (decision_problem(limit_buy(beyond), ctx) or "")


def test_bullish_zones_ignore_missing_and_partial_zones() -> None:
    smc = {"fvg_below": {"top": 2.0, "bottom": None}, "ob_below": {"top": 5.0, "bottom": 4.0}}
    assert bullish_zones(smc) == {"bullish order block": (4.0, 5.0)}
    assert bullish_zones({}) == {}


@pytest.mark.parametrize(
    ("price", "expected"),
    [(100.0, (97.0, 98.0)), (97.5, (93.0, 95.0)), (94.0, None), (98.0, (93.0, 95.0))],
)
def test_the_limit_zone_is_the_nearest_one_wholly_under_the_price(
    price: float, expected: tuple[float, float] | None
) -> None:
    zone = limit_zone(SMC, price)
    assert (None if zone is None else (zone.bottom, zone.top)) == expected
