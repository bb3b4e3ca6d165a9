import numpy as np
import pandas as pd

from botlib.smc import smc_features
from botlib.ui.smc_shaping import BREAKS, ZONES, smc_chart_data
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
