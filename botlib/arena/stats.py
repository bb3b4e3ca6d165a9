"""The arena's statistics: block-bootstrap confidence intervals, so a lead is not read as skill.

Every analyst of an arena run is replayed on the same bars, so one backtest gives one total
return each, and a ranking of a few points can be luck. A moving-block bootstrap (Künsch 1989)
resamples each equity curve's per-bar returns in blocks of `L` consecutive bars, which keeps
the short-range dependence of trades and regimes that an i.i.d. bootstrap would break apart.
One replicate draws ceil(n/L) block starts uniformly from 0..n-L, concatenates the blocks,
truncates to n bars and compounds them to a total return in %, the unit of
`botlib.reporting.analytics`. The SAME block starts serve every analyst of a replicate: the
comparison stays paired, so a difference between two analysts that trade alike is measured far
more tightly than either total return alone. Pure functions of a frame and a seed: the same
inputs give the same report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from botlib.errors import ConfigError

__all__ = [
    "BENCHMARK",
    "MIN_REPLICATES",
    "AnalystInterval",
    "BootstrapReport",
    "PairInterval",
    "block_bootstrap",
    "bootstrap_total_returns",
    "default_block_length",
]

BENCHMARK = "buy_and_hold"  # the arena's do-nothing-clever baseline, compared against when present
MIN_REPLICATES = 100  # fewer makes the 2.5% and 97.5% percentiles rest on two or three draws


@dataclass(frozen=True, slots=True)
class AnalystInterval:
    """One analyst's observed total return and its bootstrap interval, in %."""

    analyst: str
    total_return_pct: float
    low_pct: float
    high_pct: float
    p_beats_benchmark: float | None  # None for the benchmark itself or when there is none


@dataclass(frozen=True, slots=True)
class PairInterval:
    """The difference `a - b` of two total returns, in percentage points, and its interval."""

    a: str
    b: str
    difference_pp: float
    low_pp: float
    high_pp: float
    p_a_beats_b: float  # fraction of replicates where a's total return is strictly above b's
    p_b_beats_a: float  # the other way; ties count for neither, so the two may sum below 1


@dataclass(frozen=True, slots=True)
class BootstrapReport:
    """What a leaderboard shows next to a ranking: each return and each gap, with its interval.

    `pairs` holds each unordered pair once, in column order (`a` before `b`); `pair(b, a)`
    gives the other direction by negation.
    """

    method: str
    bars: int  # n, the number of per-bar returns (one less than the equity rows)
    block_length: int
    replicates: int
    confidence: float
    seed: int
    benchmark: str | None
    analysts: tuple[AnalystInterval, ...]
    pairs: tuple[PairInterval, ...]

    def table(self) -> pd.DataFrame:
        """One row per analyst, indexed by name, in the equity frame's column order."""
        rows = [
            (a.analyst, a.total_return_pct, a.low_pct, a.high_pct, a.p_beats_benchmark)
            for a in self.analysts
        ]
        columns = ["analyst", "total_return_pct", "low_pct", "high_pct", "p_beats_benchmark"]
        return pd.DataFrame(rows, columns=columns).set_index("analyst")

    def pair_table(self) -> pd.DataFrame:
        """One row per unordered pair, indexed by (a, b); differences are a - b."""
        columns = ["a", "b", "difference_pp", "low_pp", "high_pp", "p_a_beats_b", "p_b_beats_a"]
        rows = [[getattr(p, c) for c in columns] for p in self.pairs]
        return pd.DataFrame(rows, columns=columns).set_index(["a", "b"])

    def pair(self, a: str, b: str) -> PairInterval:
        """The pair in the asked direction; the reverse of a stored pair is its negation."""
        for p in self.pairs:
            if (p.a, p.b) == (a, b):
                return p
            if (p.a, p.b) == (b, a):
                return PairInterval(
                    a, b, -p.difference_pp, -p.high_pp, -p.low_pp, p.p_b_beats_a, p.p_a_beats_b
                )
        raise ConfigError(f"no pair ({a!r}, {b!r}); analysts: {[x.analyst for x in self.analysts]}")


def default_block_length(n: int) -> int:
    """The rule-of-thumb block length n^(1/3), rounded, at least 1 (the optimum grows like it).

    >>> default_block_length(1000), default_block_length(8), default_block_length(1)
    (10, 2, 1)
    """
    return max(1, round(n ** (1 / 3)))


def _equity_values(equity: pd.DataFrame) -> np.ndarray:
    """The equity as a (rows, analysts) float array, or a ConfigError that says what is wrong."""
    if not isinstance(equity, pd.DataFrame) or equity.shape[1] == 0:
        raise ConfigError("equity must be a DataFrame with one column per analyst")
    if equity.columns.has_duplicates:
        raise ConfigError(f"duplicate analyst columns: {list(equity.columns)}")
    index = equity.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ConfigError("equity must have a DatetimeIndex: the bars every analyst was run on")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise ConfigError("equity's index must be strictly increasing (sorted, no duplicate bars)")
    if len(equity) < 2:
        raise ConfigError(f"need at least 2 bars of equity for one return, got {len(equity)}")
    try:
        values = equity.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"equity must be numeric: {exc}") from exc
    nan = [str(c) for c in equity.columns[np.isnan(values).any(axis=0)]]
    if nan:
        raise ConfigError(f"NaN equity (misaligned bars?) in {nan}: align every analyst first")
    bad = [str(c) for c in equity.columns[(~np.isfinite(values) | (values <= 0)).any(axis=0)]]
    if bad:
        raise ConfigError(f"equity must be finite and positive; not so in {bad}")
    return values


def _check_settings(n: int, block_length: int | None, replicates: int, confidence: float) -> int:
    """The block length to use, after rejecting settings that give no meaningful interval."""
    length = default_block_length(n) if block_length is None else block_length
    if not 1 <= length <= n:
        raise ConfigError(f"block length must be in 1..{n} (the number of returns), got {length}")
    if replicates < MIN_REPLICATES:
        raise ConfigError(f"need at least {MIN_REPLICATES} replicates, got {replicates}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return length


def _replicate_growth(
    values: np.ndarray, block_length: int, replicates: int, seed: int
) -> np.ndarray:
    """Each replicate's growth factor per analyst, shape (replicates, analysts).

    A block of returns from bar s compounds to equity[s + L] / equity[s]: the product of its
    per-bar (1 + r) without materialising the resampled series. The last block is truncated to
    the bars left over, so a replicate always spans exactly n returns.
    """
    n = len(values) - 1
    blocks = math.ceil(n / block_length)
    rest = n - (blocks - 1) * block_length  # bars in the last, truncated block: 1..L
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block_length + 1, size=(replicates, blocks))
    full = values[block_length:] / values[: len(values) - block_length]
    last = values[rest:] / values[: len(values) - rest]
    growth = np.empty((replicates, values.shape[1]))
    for k in range(values.shape[1]):
        growth[:, k] = full[starts[:, :-1], k].prod(axis=1) * last[starts[:, -1], k]
    return growth


def bootstrap_total_returns(
    equity: pd.DataFrame,
    *,
    block_length: int | None = None,
    replicates: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every replicate's total return in %, one column per analyst, for custom statistics.

    Row i of every column comes from the same block starts, so rows can be compared across
    analysts (a paired comparison).
    """
    values = _equity_values(equity)
    length = _check_settings(len(values) - 1, block_length, replicates, 0.5)
    growth = _replicate_growth(values, length, replicates, seed)
    return pd.DataFrame((growth - 1.0) * 100.0, columns=[str(c) for c in equity.columns])


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval: the (1 - c)/2 and (1 + c)/2 quantiles of the replicates."""
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _benchmark(names: list[str], benchmark: str | None) -> str | None:
    """The benchmark column, None without one; a named column that is missing is a typo."""
    if benchmark is None or benchmark in names:
        return benchmark
    if benchmark == BENCHMARK:
        return None
    raise ConfigError(f"benchmark {benchmark!r} is not an analyst column; columns: {names}")


def _analysts(
    names: list[str], observed: np.ndarray, totals: np.ndarray, confidence: float, bench: str | None
) -> tuple[AnalystInterval, ...]:
    """Each analyst's interval, and how often it beats the benchmark in the same replicate."""
    rows = []
    for k, name in enumerate(names):
        p_beats = None
        if bench is not None and name != bench:
            p_beats = float(np.mean(totals[:, k] > totals[:, names.index(bench)]))
        low, high = _interval(totals[:, k], confidence)
        rows.append(AnalystInterval(name, float(observed[k]), low, high, p_beats))
    return tuple(rows)


def _pairs(
    names: list[str], observed: np.ndarray, totals: np.ndarray, confidence: float
) -> tuple[PairInterval, ...]:
    """Each unordered pair once (column order): the paired difference of the replicates."""
    rows = []
    for i, j in combinations(range(len(names)), 2):
        difference = totals[:, i] - totals[:, j]
        low, high = _interval(difference, confidence)
        gap = float(observed[i] - observed[j])
        wins, losses = float(np.mean(difference > 0)), float(np.mean(difference < 0))
        rows.append(PairInterval(names[i], names[j], gap, low, high, wins, losses))
    return tuple(rows)


def block_bootstrap(
    equity: pd.DataFrame,
    *,
    benchmark: str | None = BENCHMARK,
    block_length: int | None = None,
    replicates: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapReport:
    """Percentile intervals of each analyst's total return and of each pairwise difference.

    `equity` holds one equity curve per column on the bars all analysts were replayed on.
    `benchmark` names the column to beat; the default `buy_and_hold` is used only when present,
    any other missing name is an error, None compares with nothing. `block_length` defaults to
    round(n^(1/3)) for n per-bar returns.
    """
    values = _equity_values(equity)
    n = len(values) - 1
    length = _check_settings(n, block_length, replicates, confidence)
    names = [str(c) for c in equity.columns]
    bench = _benchmark(names, benchmark)
    observed = (values[-1] / values[0] - 1.0) * 100.0
    totals = (_replicate_growth(values, length, replicates, seed) - 1.0) * 100.0
    method = (
        f"moving-block bootstrap of per-bar returns, block length {length} bars, "
        f"{replicates} replicates, {confidence * 100:g}% percentile intervals, seed {seed}"
    )
    return BootstrapReport(
        method=method,
        bars=n,
        block_length=length,
        replicates=replicates,
        confidence=confidence,
        seed=seed,
        benchmark=bench,
        analysts=_analysts(names, observed, totals, confidence, bench),
        pairs=_pairs(names, observed, totals, confidence),
    )
