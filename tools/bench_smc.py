"""ICT/SMC speed: our detectors against smartmoneyconcepts on one generated frame (ratios).

Run by `make bench`. The reference is measured in the same run on the same 100k-bar frame
(its `bos_choch` is quadratic, so this takes a while); then our total on 1M bars.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from botlib.features.smc.gaps import fair_value_gaps
from botlib.features.smc.liquidity import liquidity
from botlib.features.smc.pivots import swings
from botlib.features.smc.sessions import killzones
from botlib.features.smc.structure import market_structure, order_blocks
from botlib.features.smc.summary import smc_features
from tools.bench import best_time

log = logging.getLogger(f"botlib.{__name__}")  # under the botlib handler


def generated(n: int, seed: int = 7) -> pd.DataFrame:
    """Random-walk 1-minute OHLCV with consistent highs and lows."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 5e-4, n)))
    index = pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    )


def _pairs(df: pd.DataFrame) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    os.environ.setdefault("SMC_CREDIT", "0")
    from smartmoneyconcepts import smc

    ref_swings = smc.swing_highs_lows(df, swing_length=5)
    ours_swings = swings(df, 5)
    return [
        ("swings", lambda: swings(df, 5), lambda: smc.swing_highs_lows(df, swing_length=5)),
        ("fvg", lambda: fair_value_gaps(df), lambda: smc.fvg(df)),
        (
            "bos/choch",
            lambda: market_structure(df, 5, swings_df=ours_swings),
            lambda: smc.bos_choch(df, ref_swings),
        ),
        (
            "order blocks",
            lambda: order_blocks(df, 5, swings_df=ours_swings),
            lambda: smc.ob(df, ref_swings),
        ),
        (
            "liquidity",
            lambda: liquidity(df, 5, swings_df=ours_swings),
            lambda: smc.liquidity(df, ref_swings),
        ),
        ("killzones", lambda: killzones(df.index), lambda: smc.sessions(df, "London")),
    ]


def main(n: int = 100_000, big: int = 1_000_000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    df = generated(n)
    smc_features(df.iloc[:1000])  # compile the numba loops before timing
    log.info("%-14s %12s %14s %9s   (%d generated bars)", "detector", "ours (ms)",
             "reference (ms)", "ratio", n)  # fmt: skip
    for name, ours, reference in _pairs(df):
        mine = best_time(ours, repeat=3)
        theirs = best_time(reference, repeat=1)
        log.info("%-14s %12.1f %14.1f %8.0fx", name, mine * 1e3, theirs * 1e3, theirs / mine)
    log.info(
        "all detectors (smc_features) on %d bars: %.1f ms",
        n,
        best_time(lambda: smc_features(df), repeat=3) * 1e3,
    )
    large = generated(big)
    log.info(
        "all detectors (smc_features) on %d bars: %.3f s",
        big,
        best_time(lambda: smc_features(large), repeat=3),
    )


if __name__ == "__main__":
    main()
