"""ICT/SMC detectors: hand-built cases per branch, no look-ahead, robust input, cross-checks."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from botlib.features.smc import (
    asian_range,
    fair_value_gaps,
    killzones,
    liquidity,
    market_structure,
    order_blocks,
    premium_discount,
    smc_features,
    summary,
    swings,
)
from tests.smc_support import eurusd, frame_and_cut, ohlc, random_ohlc

DETECTORS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "market_structure": lambda f: market_structure(f, 2),
    "order_blocks": lambda f: order_blocks(f, 2),
    "premium_discount": lambda f: premium_discount(f, 2),
    "fair_value_gaps": fair_value_gaps,
    "liquidity": lambda f: liquidity(f, 2),
    "killzones": lambda f: killzones(f.index),
    "asian_range": asian_range,
    "smc_features": lambda f: smc_features(f, 3),
}


# --- market structure -------------------------------------------------------------------------
def candles(closes: list[float], spread: float = 0.2) -> pd.DataFrame:
    """Bars whose close is their high minus a little (so closes, not wicks, make the breaks)."""
    c = np.asarray(closes, dtype=float)
    return ohlc(list(c + spread), lows=list(c - 1), closes=list(c), opens=list(c - 0.5))


def test_first_break_is_a_bos_and_sets_the_trend() -> None:
    ms = market_structure(candles([1, 2, 5, 3, 2, 4, 6, 7]), 2)
    assert ms["bos"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    assert ms["broken_level"].iloc[6] == pytest.approx(5.2)
    assert ms["broken_swing_pos"].iloc[6] == 2
    assert ms["trend"].tolist() == [0] * 6 + [1, 1]
    assert not ms["choch"].any()


def test_break_against_the_trend_is_a_choch_and_flips_it() -> None:
    # up-break of the high at bar 2, then a swing low at bar 8 is broken downwards at bar 12
    closes = [1, 2, 5, 3, 2, 4, 6, 7, 4, 5, 6, 5, 2, 1]
    ms = market_structure(candles(closes), 2)
    assert ms["choch"].tolist()[12] == -1
    assert ms["trend"].iloc[-1] == -1
    assert ms["broken_swing_pos"].iloc[12] == 8


def test_a_level_is_broken_only_once_and_a_wick_is_not_a_break() -> None:
    closes = [1, 2, 5, 3, 2, 6, 6.5, 7]
    ms = market_structure(candles(closes), 2)
    assert ms["bos"].abs().sum() == 1  # bars 6 and 7 close above 5.2 too, but it is used up
    wick = ohlc([1, 2, 5, 3, 2, 6, 2], closes=[1, 2, 4.5, 3, 2, 4.9, 2])
    assert not market_structure(wick, 2)[["bos", "choch"]].any().any()


# --- order blocks -----------------------------------------------------------------------------
OB_FRAME = pd.DataFrame(
    {
        "open": [1, 2, 5, 3.5, 2.5, 3, 5, 7.0, 6, 3],
        "high": [1, 2, 5, 3.6, 2.6, 4, 6, 7.0, 6.5, 4],
        "low": [0, 1, 4, 2.9, 1.9, 3, 5, 6.0, 4, 2.5],
        "close": [1, 2, 4.5, 3, 2, 3.9, 5.8, 6.9, 5, 3.5],
    },
    index=pd.date_range("2026-01-05", periods=10, freq="h", tz="UTC"),
)


def test_order_block_is_the_last_opposite_candle_before_the_break() -> None:
    ob = order_blocks(OB_FRAME, 2)
    assert ob["ob"].tolist()[:8] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert (ob["ob_pos"].iloc[6], ob["ob_top"].iloc[6], ob["ob_bottom"].iloc[6]) == (4, 2.6, 1.9)
    assert ob["bull_ob_top"].iloc[6:9].tolist() == [2.6, 2.6, 2.6]  # active until traded into
    assert ob["ob_mitigated"].iloc[9] == 1  # low 2.5 <= top 2.6
    assert np.isnan(ob["bull_ob_top"].iloc[9])


def test_no_opposite_candle_no_order_block() -> None:
    rising = OB_FRAME.assign(open=OB_FRAME["close"] - 0.1)  # every candle bullish
    ob = order_blocks(rising, 2)
    assert market_structure(rising, 2)["bos"].iloc[6] == 1
    assert ob["ob"].iloc[6] == 0 and np.isnan(ob["ob_top"].iloc[6])


# --- premium / discount -----------------------------------------------------------------------
def test_premium_discount_against_the_dealing_range() -> None:
    f = ohlc([5, 6, 10, 6, 5, 2, 5, 6, 9, 9.5], lows=[4, 5, 9, 5, 4, 1, 4, 5, 8, 8.5],
             closes=[4.5, 5.5, 9.5, 5.5, 4.5, 1.5, 4.5, 5.5, 8.5, 5.0])  # fmt: skip
    pd_ = premium_discount(f, 2)
    assert pd_["zone"].iloc[:7].tolist() == [""] * 7  # no confirmed low before bar 7
    assert (pd_["range_high"].iloc[7], pd_["range_low"].iloc[7]) == (10.0, 1.0)
    assert pd_["zone"].iloc[7:].tolist() == ["equilibrium", "premium", "discount"]
    assert pd_["pd_position"].iloc[9] == pytest.approx(4 / 9)
    assert pd_["equilibrium"].iloc[9] == 5.5


# --- fair value gaps --------------------------------------------------------------------------
def test_bullish_and_bearish_gaps_with_mitigation() -> None:
    f = pd.DataFrame(
        {
            "open": [1, 1.5, 3.5, 4, 4, 3.3, 1.5, 2],
            "high": [2, 3.8, 5, 5, 4.2, 3.4, 1.6, 2.5],
            "low": [0.5, 1.4, 3, 3.6, 3.7, 1.5, 1.0, 1.8],
            "close": [1.5, 3.5, 4, 4.5, 3.8, 1.6, 1.2, 2.4],
        },
        index=pd.date_range("2026-01-05", periods=8, freq="h", tz="UTC"),
    )
    g = fair_value_gaps(f)
    assert g["fvg"].tolist() == [0, 0, 1, 0, 0, -1, -1, 0]  # bar 6: low[4] > high[6] too
    assert (g["fvg_top"].iloc[2], g["fvg_bottom"].iloc[2]) == (3.0, 2.0)
    assert (g["fvg_top"].iloc[5], g["fvg_bottom"].iloc[5]) == (3.6, 3.4)
    assert g["fvg_mitigated"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]  # bar 5's low 1.5 fills 2.0
    assert g["bull_fvg_top"].iloc[2:5].tolist() == [3.0, 3.0, 3.0]
    assert np.isnan(g["bull_fvg_top"].iloc[5])
    assert g["bear_fvg_bottom"].iloc[5:].notna().all()


def test_a_gap_needs_the_middle_candle_to_close_its_way() -> None:
    f = ohlc([2, 3.8, 5], lows=[0.5, 1.4, 3], closes=[1.5, 1.5, 4], opens=[1, 3.5, 3.5])
    assert fair_value_gaps(f)["fvg"].tolist() == [0, 0, 0]  # middle candle closed down


@pytest.mark.parametrize("seed", [11, 12])
def test_fvg_equals_smartmoneyconcepts_shifted_by_one_bar(seed: int) -> None:
    from smartmoneyconcepts import smc

    frame = random_ohlc(seed, 5000)
    _compare_fvg(frame, smc.fvg(frame))


def test_fvg_cross_check_on_real_eurusd() -> None:
    from smartmoneyconcepts import smc

    frame = eurusd()
    if frame is None:
        pytest.skip("../shared/data is not present in this checkout")
    _compare_fvg(frame, smc.fvg(frame))


def _compare_fvg(frame: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Its row j-1 (the middle candle) against our row j (the candle that confirms the gap)."""
    ours = fair_value_gaps(frame)
    theirs = ref.shift(1).set_axis(frame.index)
    their_dir = theirs["FVG"].fillna(0).to_numpy()
    assert (their_dir != 0).sum() > 50
    np.testing.assert_array_equal(ours["fvg"].to_numpy(), their_dir)
    hit = their_dir != 0
    np.testing.assert_allclose(ours["fvg_top"].to_numpy()[hit], theirs["Top"].to_numpy()[hit])
    np.testing.assert_allclose(ours["fvg_bottom"].to_numpy()[hit], theirs["Bottom"].to_numpy()[hit])


# --- liquidity ----------------------------------------------------------------------------------
def test_equal_highs_within_the_atr_tolerance() -> None:
    highs = [1, 3, 1, 1, 3.05, 1, 1, 4, 1, 1]
    f = ohlc(highs, lows=[0.5] * 10, closes=[0.8] * 10, opens=[0.8] * 10)
    tight = liquidity(f, 1, atr_mult=0.01)
    loose = liquidity(f, 1, atr_mult=0.5)
    assert not tight["equal_highs"].any()
    assert loose["equal_highs"].tolist().index(True) == 5  # the pivot at 4 is confirmed at 5
    assert loose["equal_highs_level"].iloc[5] == 3.05
    assert not loose["equal_highs"].iloc[8]  # 4 is far from 3 and 3.05


def test_sweep_wicks_through_and_closes_back_while_a_close_through_takes_it() -> None:
    f = pd.DataFrame(
        {"open": 1.0, "high": [1, 3, 1, 1, 3.5, 1, 1, 4, 1, 5], "low": 0.5,
         "close": [1, 2, 1, 1, 2.5, 1, 1, 3, 1, 4.5]},
        index=pd.date_range("2026-01-05", periods=10, freq="h", tz="UTC"),
    )  # fmt: skip
    liq = liquidity(f, 1)
    assert liq["sweep"].iloc[4] == -1 and liq["sweep_level"].iloc[4] == 3.0
    assert liq["sweep"].iloc[9] == 0  # closed above the swing high at 4: taken, not swept
    lows = pd.DataFrame(
        {
            "open": 5.0,
            "high": 6.0,
            "low": [5, 3, 5, 5, 2.5, 5],
            "close": [5.5, 4, 5.5, 5.5, 4, 5.5],
        },
        index=f.index[:6],
    )
    sell = liquidity(lows, 1)
    assert sell["sweep"].tolist() == [0, 0, 0, 0, 1, 0]
    assert sell["sweep_level"].iloc[4] == 3.0


# --- sessions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "london_utc", "new_york_utc"),
    [
        ("2026-01-15", (7, 10), (12, 15)),  # both on standard time
        ("2026-03-16", (7, 10), (11, 14)),  # New York on DST since 8 March, London not yet
        ("2026-07-15", (6, 9), (11, 14)),  # both on summer time
        ("2026-10-28", (7, 10), (11, 14)),  # London back on GMT since 25 Oct, New York until 1 Nov
    ],
)
def test_killzones_follow_each_citys_clock(
    day: str, london_utc: tuple, new_york_utc: tuple
) -> None:
    hours = pd.date_range(day, periods=24, freq="h", tz="UTC")
    kz = killzones(hours)
    assert [h.hour for h in hours[kz["in_london"].to_numpy()]] == list(range(*london_utc))
    assert [h.hour for h in hours[kz["in_new_york"].to_numpy()]] == list(range(*new_york_utc))


def test_asian_range_runs_during_the_session_then_holds() -> None:
    idx = pd.date_range("2026-01-15 23:00", periods=8, freq="h", tz="UTC")  # Asia: 01:00-05:00 UTC
    highs = [1, 2, 5, 3, 4, 6, 9, 1.0]
    f = pd.DataFrame({"open": 1.0, "high": highs, "low": [0.5] * 8, "close": 1.0}, index=idx)
    r = asian_range(f)
    assert np.isnan(r["asia_high"].iloc[:2]).all()
    assert r["asia_high"].iloc[2:].tolist() == [5, 5, 5, 6, 6, 6]


def _asian_range_by_groupby(df: pd.DataFrame) -> pd.DataFrame:
    """The first implementation (pandas groupby per session): the reference for the faster one."""
    hours = np.asarray(df.index.tz_convert("America/New_York").hour)
    inside = (hours >= 20) & (hours < 24)
    session = pd.Series(np.cumsum(inside & ~np.concatenate(([False], inside[:-1]))), df.index)
    high = df["high"].where(inside).groupby(session).cummax()
    low = df["low"].where(inside).groupby(session).cummin()
    return pd.DataFrame(
        {"asia_high": high.where(inside).ffill(), "asia_low": low.where(inside).ffill()},
        index=df.index,
    ).astype(float)


@pytest.mark.parametrize(("start", "freq"), [("2026-03-01", "15min"), ("2026-10-20", "7min")])
def test_asian_range_equals_the_groupby_reference_across_dst(start: str, freq: str) -> None:
    rng = np.random.default_rng(7)
    idx = pd.date_range(start, periods=6000, freq=freq, tz="UTC")  # over a clock change
    close = 100 + np.cumsum(rng.normal(0, 1, len(idx)))
    f = pd.DataFrame({"open": close, "high": close + rng.random(len(idx)),
                      "low": close - rng.random(len(idx)), "close": close}, index=idx)  # fmt: skip
    f = f.drop(f.index[rng.random(len(idx)) < 0.1])  # gaps inside and between sessions
    ours = asian_range(f)
    pd.testing.assert_frame_equal(ours, _asian_range_by_groupby(f), check_exact=True)
    assert ours["asia_high"].notna().mean() > 0.9


# --- properties and robustness ----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(frame_and_cut(max_n=300))
def test_no_look_ahead_in_any_detector(case: tuple[pd.DataFrame, int]) -> None:
    frame, k = case
    for name, detector in DETECTORS.items():
        full, cut = detector(frame), detector(frame.iloc[:k])
        pd.testing.assert_frame_equal(cut, full.iloc[:k], obj=name)


@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.parametrize(
    "frame",
    [ohlc([3.0] * 40, lows=[3.0] * 40), ohlc([1, 2, 1]), ohlc([])],
    ids=["constant", "short", "empty"],
)
def test_degenerate_frames_give_no_events(name: str, frame: pd.DataFrame) -> None:
    out = DETECTORS[name](frame)
    assert len(out) == len(frame)
    for column in ("bos", "choch", "ob", "fvg", "sweep", "equal_highs", "equal_lows"):
        if column in out:
            assert not out[column].astype(bool).any()


@pytest.mark.parametrize("name", [n for n in DETECTORS if n != "killzones"])
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.assign(close=f.close.where(f.index != f.index[3])), "NaN"),
        (lambda f: f.iloc[::-1], "not sorted"),
        (lambda f: pd.concat([f, f.iloc[-2:]]), "duplicated"),
    ],
)
def test_broken_frames_raise_value_errors(name: str, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        DETECTORS[name](mutate(random_ohlc(5, 30)))


def test_summary_reads_the_features_at_a_bar() -> None:
    frame = random_ohlc(21, 400)
    features = smc_features(frame)
    last = summary(frame, features=features)
    earlier = summary(frame, at=200, features=features)
    assert last["bar_time"] == frame.index[-1].isoformat()
    assert earlier == summary(frame.iloc[:201])  # the summary at a bar ignores later bars
    assert last["trend"] in ("bullish", "bearish", "none")
    assert set(last) >= {"last_break", "fvg_below", "ob_above", "sweep", "premium_discount"}
    if last["fvg_below"]:
        assert last["fvg_below"]["top"] == features["bull_fvg_top"].iloc[-1].round(8)
    assert swings(frame)["swing_high"].any()
