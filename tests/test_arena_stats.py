"""The arena's block bootstrap: known answers, a statistical check, pairing and the errors.

Constructed curves whose every replicate is known (constant growth, identical or flat curves,
one block spanning the whole run) pin the arithmetic exactly; i.i.d. normal returns check the
interval's width against the normal approximation; correlated analysts show why the same block
starts serve every analyst of a replicate.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest

from botlib.arena import stats
from botlib.arena.stats import (
    block_bootstrap,
    bootstrap_total_returns,
    default_block_length,
)
from botlib.errors import ConfigError


def curves(returns: dict[str, np.ndarray], start: float = 100.0) -> pd.DataFrame:
    """Equity curves from per-bar simple returns, on hourly bars (one more row than returns)."""
    n = len(next(iter(returns.values())))
    index = pd.date_range("2024-01-01", periods=n + 1, freq="h", tz="UTC")
    data = {name: start * np.cumprod(np.r_[1.0, 1.0 + r]) for name, r in returns.items()}
    return pd.DataFrame(data, index=index)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(stats).failed == 0


def test_two_to_the_n_growth_gives_every_replicate_exactly_the_observed_total() -> None:
    """Doubling each bar is exact in floating point, so every block product is 2^n exactly."""
    n = 20
    index = pd.date_range("2024-01-01", periods=n + 1, freq="h", tz="UTC")
    equity = pd.DataFrame({"doubler": 2.0 ** np.arange(n + 1)}, index=index)
    report = block_bootstrap(equity, replicates=200)
    (row,) = report.analysts
    expected = (2.0**n - 1) * 100
    assert (row.total_return_pct, row.low_pct, row.high_pct) == (expected, expected, expected)
    assert report.block_length == 3 and report.bars == n


def test_constant_per_bar_return_collapses_the_interval_to_its_compounded_total() -> None:
    r, n = 0.001, 500
    report = block_bootstrap(curves({"steady": np.full(n, r)}), replicates=300)
    (row,) = report.analysts
    expected = ((1 + r) ** n - 1) * 100
    assert row.total_return_pct == pytest.approx(expected, rel=1e-9)
    assert row.low_pct == pytest.approx(expected, rel=1e-9)
    assert row.high_pct == pytest.approx(expected, rel=1e-9)
    totals = bootstrap_total_returns(curves({"steady": np.full(n, r)}), replicates=300)
    assert np.ptp(totals["steady"].to_numpy()) < 1e-9 * expected


def test_identical_curves_differ_by_exactly_zero() -> None:
    returns = np.random.default_rng(1).normal(0.0005, 0.01, 300)
    report = block_bootstrap(curves({"a": returns, "b": returns.copy()}), benchmark="b")
    (pair,) = report.pairs
    assert (pair.difference_pp, pair.low_pp, pair.high_pp) == (0.0, 0.0, 0.0)
    assert pair.p_a_beats_b == 0.0 and pair.p_b_beats_a == 0.0
    assert report.analysts[0].p_beats_benchmark == 0.0  # strictly greater: a tie is no win


def test_an_always_growing_curve_beats_a_flat_one_in_every_replicate() -> None:
    growing = np.random.default_rng(2).uniform(0.0001, 0.01, 400)
    report = block_bootstrap(curves({"grower": growing, "flat": np.zeros(400)}), benchmark="flat")
    grower, flat = report.analysts
    assert grower.p_beats_benchmark == 1.0 and flat.p_beats_benchmark is None
    assert (flat.total_return_pct, flat.low_pct, flat.high_pct) == (0.0, 0.0, 0.0)
    (pair,) = report.pairs
    assert pair.low_pp > 0 and pair.p_a_beats_b == 1.0


def test_iid_normal_returns_give_the_lognormal_width_with_unit_blocks() -> None:
    """With L=1 the bootstrap resamples the n returns i.i.d., so the replicates' log growth is a
    sum of n draws from the sample's log(1+r): by the CLT it is nearly normal with mean
    log(1 + observed) and sd sqrt(n)*sd(log(1+r)). The 95% interval of the total return is then
    (1 + observed) * exp(+-1.96 * that sd) - 1. With 2,000 replicates the Monte Carlo error of
    the width is about 2%, so 10% is loose, yet a replicate of the wrong length (not n
    returns) or uncompounded returns would break it.
    """
    n = 2000
    returns = np.random.default_rng(3).normal(0.0002, 0.001, n)
    report = block_bootstrap(curves({"noise": returns}), block_length=1)
    (row,) = report.analysts
    observed = row.total_return_pct / 100
    spread = 1.96 * math.sqrt(n) * float(np.std(np.log1p(returns)))
    low, high = (1 + observed) * math.exp(-spread) - 1, (1 + observed) * math.exp(spread) - 1
    assert row.low_pct < row.total_return_pct < row.high_pct
    width = (row.high_pct - row.low_pct) / 100
    assert width == pytest.approx(high - low, rel=0.10)
    assert row.low_pct / 100 == pytest.approx(low, abs=0.1 * (high - low))


def test_paired_replicates_make_a_close_follower_s_gap_much_narrower_than_either_return() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(0.0003, 0.01, 1000)
    b = a + rng.normal(0.0, 0.0005, 1000)
    report = block_bootstrap(curves({"a": a, "b": b}))
    own = min(row.high_pct - row.low_pct for row in report.analysts)
    (pair,) = report.pairs
    assert pair.high_pp - pair.low_pp < 0.15 * own
    assert pair.low_pp <= pair.difference_pp <= pair.high_pp


def test_the_same_seed_gives_the_same_report_and_another_seed_other_draws() -> None:
    rng = np.random.default_rng(5)
    equity = curves({"a": rng.normal(0, 0.01, 200), "b": rng.normal(0, 0.01, 200)})
    assert block_bootstrap(equity, seed=7) == block_bootstrap(equity, seed=7)
    first = bootstrap_total_returns(equity, seed=7)
    assert first.equals(bootstrap_total_returns(equity, seed=7))
    assert not np.allclose(first.to_numpy(), bootstrap_total_returns(equity, seed=8).to_numpy())
    assert block_bootstrap(equity, seed=8).method.endswith("seed 8")


def test_the_method_text_names_block_length_replicates_level_and_seed() -> None:
    equity = curves({"a": np.full(30, 0.001)})
    report = block_bootstrap(equity, block_length=4, replicates=150, confidence=0.9, seed=3)
    assert report.method == (
        "moving-block bootstrap of per-bar returns, block length 4 bars, "
        "150 replicates, 90% percentile intervals, seed 3"
    )


def test_the_default_block_length_is_the_rounded_cube_root_of_the_returns() -> None:
    assert default_block_length(1000) == 10
    equity = curves({"a": np.random.default_rng(6).normal(0, 0.01, 1000)})
    assert block_bootstrap(equity, replicates=100).block_length == 10


def test_one_block_spanning_the_run_can_only_replay_the_original_series() -> None:
    rng = np.random.default_rng(7)
    equity = curves({"a": rng.normal(0.001, 0.02, 250), "b": rng.normal(0, 0.02, 250)})
    report = block_bootstrap(equity, block_length=250, replicates=100)
    for row in report.analysts:
        assert row.low_pct == row.total_return_pct == row.high_pct
    (pair,) = report.pairs
    assert pair.low_pp == pair.difference_pp == pair.high_pp


def test_long_blocks_keep_trending_runs_together_and_widen_the_interval() -> None:
    """AR(1) returns with phi = 0.9: the variance of their sum is ~(1+phi)/(1-phi) = 19 times
    what an i.i.d. resample sees, so 50-bar blocks must give a far wider interval than 1-bar."""
    rng = np.random.default_rng(8)
    noise, returns = rng.normal(0, 0.001, 3000), np.zeros(3000)
    for t in range(1, 3000):
        returns[t] = 0.9 * returns[t - 1] + noise[t]
    equity = curves({"trend": returns})
    (short,) = block_bootstrap(equity, block_length=1).analysts
    (long,) = block_bootstrap(equity, block_length=50).analysts
    assert long.high_pct - long.low_pct > 2.5 * (short.high_pct - short.low_pct)


def test_the_default_benchmark_is_buy_and_hold_when_present_and_none_otherwise() -> None:
    rng = np.random.default_rng(9)
    equity = curves({"smc": rng.normal(0, 0.01, 100), "buy_and_hold": rng.normal(0, 0.01, 100)})
    report = block_bootstrap(equity, replicates=100)
    assert report.benchmark == "buy_and_hold"
    assert report.analysts[0].p_beats_benchmark is not None
    assert report.analysts[1].p_beats_benchmark is None
    alone = block_bootstrap(equity[["smc"]], replicates=100)
    assert alone.benchmark is None and alone.pairs == ()
    assert block_bootstrap(equity, benchmark=None, replicates=100).benchmark is None


def test_tables_show_one_row_per_analyst_and_per_pair_and_pair_reverses_by_negation() -> None:
    rng = np.random.default_rng(10)
    names = ["x", "y", "buy_and_hold"]
    report = block_bootstrap(curves({k: rng.normal(0, 0.01, 150) for k in names}))
    table = report.table()
    assert list(table.index) == names
    assert list(table.columns) == ["total_return_pct", "low_pct", "high_pct", "p_beats_benchmark"]
    pairs = report.pair_table()
    assert list(pairs.index) == [("x", "y"), ("x", "buy_and_hold"), ("y", "buy_and_hold")]
    forward, backward = report.pair("x", "y"), report.pair("y", "x")
    assert backward.difference_pp == -forward.difference_pp
    assert (backward.low_pp, backward.high_pp) == (-forward.high_pp, -forward.low_pp)
    assert backward.p_a_beats_b == forward.p_b_beats_a
    with pytest.raises(ConfigError, match="no pair"):
        report.pair("x", "z")


def index_of(rows: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC")


GOOD = pd.DataFrame({"a": [100.0, 101.0, 102.0, 101.5]}, index=index_of(4))


@pytest.mark.parametrize(
    ("equity", "match"),
    [
        (GOOD.iloc[:1], "at least 2 bars"),
        (GOOD.assign(a=[100.0, math.inf, 101.0, 102.0]), "finite and positive"),
        (GOOD.assign(a=[100.0, 0.0, 101.0, 102.0]), "finite and positive"),
        (GOOD.assign(a=[100.0, -5.0, 101.0, 102.0]), "finite and positive"),
        (GOOD.assign(b=[100.0, math.nan, 101.0, 102.0]), "NaN equity"),
        (GOOD.iloc[::-1], "strictly increasing"),
        (GOOD.set_axis(index_of(1).repeat(4)), "strictly increasing"),
        (GOOD.reset_index(drop=True), "DatetimeIndex"),
        (GOOD.assign(a=["x", "y", "z", "w"]), "numeric"),
        (GOOD[[]], "one column per analyst"),
        (pd.concat([GOOD, GOOD], axis=1), "duplicate analyst"),
    ],
)
def test_bad_equity_is_a_config_error(equity: pd.DataFrame, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        block_bootstrap(equity)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"block_length": 0}, "block length"),
        ({"block_length": 4}, "block length"),  # n = 3 returns
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"replicates": 99}, "replicates"),
        ({"benchmark": "buy_and_hodl"}, "benchmark"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        block_bootstrap(GOOD, **settings)


def test_the_largest_block_length_is_the_number_of_returns() -> None:
    report = block_bootstrap(GOOD, block_length=3, replicates=100)
    assert report.analysts[0].low_pct == report.analysts[0].total_return_pct
