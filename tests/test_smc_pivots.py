import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from botlib.features.smc import swings
from tests.smc_support import EURUSD, eurusd, frame_and_cut, ohlc, random_ohlc


def events(frame: pd.DataFrame, kind: str) -> list[tuple[int, int, float]]:
    """(confirming row, pivot position, price) of each event of `kind` (high/low)."""
    rows = np.flatnonzero(frame[f"swing_{kind}"].to_numpy())
    return [
        (
            int(r),
            int(frame[f"swing_{kind}_pos"].iloc[r]),
            float(frame[f"swing_{kind}_price"].iloc[r]),
        )
        for r in rows
    ]


def test_pivot_high_is_confirmed_length_bars_later() -> None:
    s = swings(ohlc([1, 2, 5, 3, 2, 2, 1]), length=2)
    assert events(s, "high") == [(4, 2, 5.0)]
    assert np.isnan(s["last_high"].iloc[3]) and s["last_high"].iloc[4:].eq(5.0).all()
    assert s["last_high_pos"].tolist() == [-1, -1, -1, -1, 2, 2, 2]


def test_pivot_low_mirrors() -> None:
    s = swings(ohlc([9, 8, 7, 8, 9], lows=[5, 4, 1, 4, 5]), length=2)
    assert events(s, "low") == [(4, 2, 1.0)]
    assert events(s, "high") == []


def test_ties_go_to_the_first_of_equal_highs() -> None:
    s = swings(ohlc([1, 2, 5, 5, 2, 1, 1]), length=2)
    assert events(s, "high") == [(4, 2, 5.0)]  # bar 3 equals bar 2, so it is not strictly above


def test_a_higher_bar_inside_the_right_window_cancels_the_pivot() -> None:
    assert events(swings(ohlc([1, 2, 5, 3, 6, 2, 1]), length=2), "high") == [(6, 4, 6.0)]


@pytest.mark.parametrize(
    "frame",
    [
        ohlc([3.0] * 30, lows=[3.0] * 30),  # constant prices, zero-range bars
        ohlc([1, 2, 1]),  # fewer bars than a window
        ohlc([]),
    ],
)
def test_degenerate_input_gives_no_events(frame: pd.DataFrame) -> None:
    s = swings(frame, length=5)
    assert len(s) == len(frame)
    assert not s["swing_high"].any() and not s["swing_low"].any()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.assign(high=f.high.where(f.index != f.index[3])), "NaN"),
        (lambda f: f.iloc[::-1], "not sorted"),
        (lambda f: pd.concat([f, f.iloc[-2:]]), "duplicated"),
        (lambda f: f.drop(columns="low"), "lacks column"),
        (lambda f: f.assign(low=f.high + 1), "high < low"),
        (lambda f: f.reset_index(drop=True), "DatetimeIndex"),
    ],
)
def test_bad_input_is_a_clear_value_error(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        swings(mutate(random_ohlc(1, 20)))
    with pytest.raises(ValueError, match="length"):
        swings(random_ohlc(1, 20), length=0)


@settings(max_examples=60, deadline=None)
@given(frame_and_cut())
def test_no_look_ahead(case: tuple[pd.DataFrame, int]) -> None:
    frame, k = case
    for length in (1, 3, 5):
        pd.testing.assert_frame_equal(
            swings(frame.iloc[:k], length), swings(frame, length).iloc[:k]
        )


def _reference_inner(frame: pd.DataFrame, length: int, ref: pd.DataFrame, kind: int) -> set[int]:
    """smartmoneyconcepts' pivots away from the ends, where its definition coincides with ours.

    Its window is length-1 bars left and length right, equal values allowed, then thinned; ours is
    length each side, strictly above the left. They agree where the pivot is strictly above every
    other bar of the wider window (no ties, the extra left bar lower)."""
    col = "high" if kind == 1 else "low"
    sign = 1 if kind == 1 else -1
    values = frame[col].to_numpy() * sign
    n = len(frame)
    found = np.flatnonzero(ref["HighLow"].to_numpy() == kind)
    return {
        int(p)
        for p in found
        if length <= p < n - length
        and values[p] > np.delete(values[p - length : p + length + 1], length).max()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cross_check_with_smartmoneyconcepts(seed: int) -> None:
    from smartmoneyconcepts import smc

    frame = random_ohlc(seed, 3000)
    ours = swings(frame, 5)
    ref = smc.swing_highs_lows(frame, swing_length=5)
    for kind, name in ((1, "high"), (-1, "low")):
        mine = {p for _, p, _ in events(ours, name)}
        theirs = _reference_inner(frame, 5, ref, kind)
        assert theirs, "the reference found no pivots: the comparison would be empty"
        assert theirs <= mine  # each of its inner pivots is ours too
        assert len(mine) >= len(theirs)  # ours are not thinned, so never fewer


def test_cross_check_on_real_eurusd() -> None:
    frame = eurusd()
    if frame is None:
        pytest.skip("../shared/data is not present in this checkout")
    ref = pd.read_csv(EURUSD / "swing_highs_lows_result_data.csv")
    ours = swings(frame, 5)
    for kind, name in ((1, "high"), (-1, "low")):
        theirs = _reference_inner(frame, 5, ref, kind)
        mine = {p for _, p, _ in events(ours, name)}
        assert len(theirs) > 100
        assert theirs <= mine
