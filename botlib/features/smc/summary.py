"""All ICT/SMC detectors joined (`smc_features`) and the compact `summary` analysts read."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from botlib.features.smc._input import checked_once
from botlib.features.smc.gaps import fair_value_gaps
from botlib.features.smc.liquidity import liquidity
from botlib.features.smc.pivots import swings
from botlib.features.smc.sessions import asian_range, killzones
from botlib.features.smc.structure import market_structure, order_blocks, premium_discount

__all__ = ["smc_features", "summary", "RECENT_BARS"]

RECENT_BARS = 3  # a sweep or break this recent counts as "on the last bars"


def smc_features(df: pd.DataFrame, length: int = 5) -> pd.DataFrame:
    """Return every detector's columns on `df`'s index (swings computed once, shared).

    >>> from botlib.venues.sim import SimMarket
    >>> from datetime import datetime, UTC
    >>> bars = SimMarket().bars("BTC/USD", "1Hour", datetime(2026, 1, 1, tzinfo=UTC), 300)
    >>> f = smc_features(bars)
    >>> len(f) == 300 and {"bos", "choch", "fvg", "sweep", "zone", "killzone"} <= set(f.columns)
    True
    """
    with checked_once(df):
        return _join(df, length)


def _join(df: pd.DataFrame, length: int) -> pd.DataFrame:
    pivots = swings(df, length)
    parts = [
        pivots,
        market_structure(df, length, swings_df=pivots),
        order_blocks(df, length, swings_df=pivots),
        premium_discount(df, length, swings_df=pivots),
        fair_value_gaps(df),
        liquidity(df, length, swings_df=pivots),
        killzones(df.index),
        asian_range(df),
    ]
    columns: dict[str, np.ndarray] = {}
    for part in parts:  # plain arrays: no index alignment, no copies of repeated columns
        columns.update((name, part[name].to_numpy()) for name in part.columns)
    return pd.DataFrame(columns, index=df.index, copy=False)


def _num(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, 8)


def _zone(row: pd.Series, prefix: str) -> dict[str, float] | None:
    top, bottom = _num(row[f"{prefix}_top"]), _num(row[f"{prefix}_bottom"])
    return None if top is None or bottom is None else {"top": top, "bottom": bottom}


def _last_event(column: pd.Series, upto: int) -> tuple[int, int] | None:
    """Return (position, value) of the last non-zero event at or before `upto`."""
    hits = np.flatnonzero(column.to_numpy()[: upto + 1] != 0)
    return (int(hits[-1]), int(column.iloc[hits[-1]])) if len(hits) else None


def _last_break(features: pd.DataFrame, i: int) -> dict[str, Any] | None:
    found = []
    for kind in ("bos", "choch"):
        event = _last_event(features[kind], i)
        if event:
            found.append((event[0], kind.upper() if kind == "bos" else "CHoCH", event[1]))
    if not found:
        return None
    pos, kind, direction = max(found)
    return {
        "type": kind,
        "direction": "bullish" if direction > 0 else "bearish",
        "level": _num(features["broken_level"].iloc[pos]),
        "bars_ago": i - pos,
    }


def _sweep(features: pd.DataFrame, i: int) -> dict[str, Any] | None:
    event = _last_event(features["sweep"], i)
    if event is None or i - event[0] >= RECENT_BARS:
        return None
    side = "sell-side" if event[1] > 0 else "buy-side"
    return {
        "side": side,
        "level": _num(features["sweep_level"].iloc[event[0]]),
        "bars_ago": i - event[0],
    }


def _recent_level(features: pd.DataFrame, flag: str, level: str, i: int) -> float | None:
    hits = np.flatnonzero(features[flag].to_numpy()[: i + 1])
    return _num(features[level].iloc[hits[-1]]) if len(hits) else None


def summary(df: pd.DataFrame, at: int = -1, features: pd.DataFrame | None = None) -> dict[str, Any]:
    """Summarise the SMC state at bar `at` (bars <= at only) as a small JSON-able dict."""
    features = smc_features(df) if features is None else features
    i = range(len(df))[at]
    row = features.iloc[i]
    trend = int(row["trend"])
    zone = row["zone"] if isinstance(row["zone"], str) and row["zone"] else None
    return {
        "bar_time": df.index[i].isoformat(),
        "close": _num(df["close"].iloc[i]),
        "trend": {1: "bullish", -1: "bearish"}.get(trend, "none"),
        "last_break": _last_break(features, i),
        "fvg_below": _zone(row, "bull_fvg"),
        "fvg_above": _zone(row, "bear_fvg"),
        "ob_below": _zone(row, "bull_ob"),
        "ob_above": _zone(row, "bear_ob"),
        "equal_highs": _recent_level(features, "equal_highs", "equal_highs_level", i),
        "equal_lows": _recent_level(features, "equal_lows", "equal_lows_level", i),
        "sweep": _sweep(features, i),
        "premium_discount": None
        if zone is None
        else {
            "zone": zone,
            "position": _num(row["pd_position"]),
            "equilibrium": _num(row["equilibrium"]),
            "range_high": _num(row["range_high"]),
            "range_low": _num(row["range_low"]),
        },
        "killzone": row["killzone"] or None,
        "asia_range": {"high": _num(row["asia_high"]), "low": _num(row["asia_low"])},
    }
