import numpy as np
import pandas as pd
import pytest

from botlib.features.smc import smc_features
from botlib.ui.shaping.smc import BREAKS, ZONES, smc_chart_data
from tests.smc_support import random_ohlc


def test_overlays_align_with_the_chart_and_the_features() -> None:
    bars = random_ohlc(4, 300)
    x = (bars.index + pd.Timedelta(minutes=15)).tz_localize(None).to_numpy("datetime64[ms]")
    data = smc_chart_data(bars, x)
    features = smc_features(bars)
    assert set(data.zones) == set(ZONES) and set(data.breaks) == set(BREAKS)
    top, bottom = data.zones["bull_fvg"]
    np.testing.assert_array_equal(top, features["bull_fvg_top"].to_numpy())
    assert len(top) == len(bottom) == len(x)
    finite = np.isfinite(top)
    assert (top[finite] >= bottom[finite]).all()
    bx, by = data.breaks["bos"]
    assert len(bx) == int((features["bos"] != 0).sum()) > 0
    assert np.isin(bx, x).all() and np.isfinite(by).all()


def test_too_few_bars_draw_nothing() -> None:
    empty = smc_chart_data(random_ohlc(1, 2), np.array([], "datetime64[ms]"))
    assert empty.zones == {} and empty.breaks == {}


def test_warm_up_bars_feed_the_detectors_but_are_not_drawn() -> None:
    bars = random_ohlc(5, 300)
    x = (bars.index[100:] + pd.Timedelta(minutes=15)).tz_localize(None).to_numpy("datetime64[ms]")
    data = smc_chart_data(bars, x)
    features = smc_features(bars).iloc[100:]
    top, _ = data.zones["bear_ob"]
    assert len(top) == 200
    np.testing.assert_array_equal(top, features["bear_ob_top"].to_numpy())
    assert np.isin(data.breaks["bos"][0], x).all()
    assert len(data.breaks["bos"][0]) == int((features["bos"] != 0).sum()) > 0


def test_zones_are_read_at_the_given_rows_and_breaks_keep_their_times() -> None:
    bars = random_ohlc(6, 120)
    x = (bars.index + pd.Timedelta(minutes=15)).tz_localize(None).to_numpy("datetime64[ms]")
    data = smc_chart_data(bars, x)
    rows = np.array([9, 19, 119])
    picked = data.at_rows(rows)
    for name, (top, bottom) in data.zones.items():
        np.testing.assert_array_equal(picked.zones[name][0], top[rows])
        np.testing.assert_array_equal(picked.zones[name][1], bottom[rows])
    assert picked.breaks is data.breaks


def test_more_chart_times_than_bars_is_refused() -> None:
    bars = random_ohlc(7, 10)
    with pytest.raises(ValueError, match="one time per drawn bar"):
        smc_chart_data(bars, np.zeros(11, dtype="datetime64[ms]"))
