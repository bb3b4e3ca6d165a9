import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botlib.errors import DataError
from botlib.features.indicators import INDICATOR_COLUMNS, add_indicators, validate_bars


def random_bars(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    idx = pd.date_range("2026-01-01", periods=n, freq="15min", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        },
        index=idx,
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(70, 300), data=st.data())
def test_no_look_ahead_truncate_and_compare(seed: int, n: int, data: st.DataObject) -> None:
    bars = random_bars(seed, n)
    k = data.draw(st.integers(1, n))
    full = add_indicators(bars)
    cut = add_indicators(bars.iloc[:k])
    pd.testing.assert_frame_equal(cut, full.iloc[:k])


def test_columns_and_warm_up() -> None:
    out = add_indicators(random_bars(1, 120))
    assert set(INDICATOR_COLUMNS) <= set(out.columns)
    assert out[list(INDICATOR_COLUMNS)].iloc[-1].notna().all()
    assert out["sma_50"].iloc[:49].isna().all() and out["sma_50"].iloc[49:].notna().all()


def test_values_match_independent_formulas() -> None:
    bars = random_bars(7, 200)
    out = add_indicators(bars)
    np.testing.assert_allclose(out["sma_20"], bars.close.rolling(20).mean(), rtol=1e-9)
    std = bars.close.rolling(20).std(ddof=0)
    np.testing.assert_allclose(out["bb_upper"], out["bb_middle"] + 2 * std, rtol=1e-9)
    assert out["rsi"].dropna().between(0, 100).all()
    np.testing.assert_allclose(out["macd_hist"], out["macd"] - out["macd_signal"], atol=1e-9)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.iloc[:10], "at least"),
        (lambda b: b.drop(columns="volume"), "lack column"),
        (lambda b: b.assign(close=b.close.where(b.index != b.index[5])), "NaN"),
        (lambda b: b.iloc[::-1], "out of order"),
        (lambda b: pd.concat([b, b.iloc[-1:]]), "duplicated"),
        (lambda b: b.assign(low=-b.low), "non-positive"),
        (lambda b: b.assign(high=b.low * 0.5), "high below"),
        (lambda b: b.tz_localize(None), "timezone-aware"),
    ],
)
def test_bad_bars_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        validate_bars(mutate(random_bars(3, 100)))
