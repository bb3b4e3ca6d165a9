import pandas as pd

from botlib.analysts.rules import RulesAnalyst
from botlib.analysts.smc_rules import exit_setup, long_setup
from botlib.models import Action, Position
from tests.test_rules import context, row

DISCOUNT = {"zone": "discount", "position": 0.3, "equilibrium": 100.0}
FVG = {"top": 99.0, "bottom": 97.0}


def smc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "trend": "bullish",
        "last_break": None,
        "premium_discount": DISCOUNT,
        "fvg_below": None,
        "ob_below": None,
        "sweep": None,
    }
    return base | kw


def test_long_setup_needs_structure_discount_and_a_zone_or_sweep() -> None:
    assert long_setup(smc(fvg_below=FVG)).found
    assert (
        long_setup(smc(sweep={"side": "sell-side", "level": 96.5, "bars_ago": 1})).stop_level
        == 96.5
    )
    assert not long_setup(smc()).found  # nothing to lean on
    assert not long_setup(smc(fvg_below=FVG, trend="bearish")).found
    assert not long_setup(smc(fvg_below=FVG, premium_discount={"zone": "premium"})).found
    choch = {"type": "CHoCH", "direction": "bullish", "level": 101.0, "bars_ago": 2}
    assert long_setup(smc(fvg_below=FVG, trend="none", last_break=choch)).found
    assert not long_setup({}).found


def test_stop_goes_under_the_lowest_supporting_level() -> None:
    setup = long_setup(
        smc(fvg_below=FVG, ob_below={"top": 98.0, "bottom": 95.0},
            sweep={"side": "sell-side", "level": 96.0, "bars_ago": 0})
    )  # fmt: skip
    assert setup.stop_level == 95.0
    assert len(setup.reasons) == 4
    assert any("order block" in r for r in setup.reasons)


def test_exit_on_fresh_bearish_choch_or_buy_side_sweep_in_premium() -> None:
    choch = {"type": "CHoCH", "direction": "bearish", "level": 99.0, "bars_ago": 1}
    assert exit_setup(smc(last_break=choch)).found
    assert not exit_setup(smc(last_break=choch | {"bars_ago": 5})).found
    sweep = {"side": "buy-side", "level": 105.0, "bars_ago": 0}
    assert exit_setup(smc(sweep=sweep, premium_discount={"zone": "premium"})).found
    assert not exit_setup(smc(sweep=sweep)).found


def _ctx(frame: pd.DataFrame, summary: dict[str, object], position: Position | None = None):  # type: ignore[no-untyped-def]
    base = context(frame, position)
    return type(base)(**{**base.__dict__, "smc": summary})


def test_rules_analyst_buys_an_smc_setup_with_weaker_indicators() -> None:
    weak = row(rsi=45.0, macd_hist=-0.1)  # 2/4 bullish: no indicator-only entry
    assert RulesAnalyst().decide(context(weak)).decision.action is Action.HOLD
    result = RulesAnalyst().decide(_ctx(weak, smc(fvg_below=FVG)))
    d = result.decision
    assert d.action is Action.BUY
    assert "unmitigated bullish FVG below at 97-99" in d.reasoning
    assert d.stop_loss == 97.0 - 0.1 * 2.0  # under the gap, by a tenth of ATR
    assert result.request["smc"]["fvg_below"] == FVG


def test_rules_analyst_exits_on_a_bearish_choch() -> None:
    choch = {"type": "CHoCH", "direction": "bearish", "level": 99.0, "bars_ago": 0}
    long = Position("BTC/USD", 1.0, 95.0)
    d = RulesAnalyst().decide(_ctx(row(), smc(last_break=choch), long)).decision
    assert d.action is Action.SELL
    assert d.reasoning.startswith("SELL: SMC: bearish CHoCH")
