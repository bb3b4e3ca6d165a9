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
from botlib.features.smc.sessions import sessions
from botlib.features.smc.structure import market_structure, order_blocks, premium_discount

__all__ = ["smc_features", "summary", "Columns", "RECENT_BARS"]

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
    structure = market_structure(df, length, swings_df=pivots)
    parts = [
        pivots,
        structure,
        order_blocks(df, length, swings_df=pivots, structure_df=structure),
        premium_discount(df, length, swings_df=pivots),
        fair_value_gaps(df),
        liquidity(df, length, swings_df=pivots),
        *sessions(df),
    ]
    columns: dict[str, np.ndarray] = {}
    for part in parts:  # plain arrays: no index alignment, no copies of repeated columns
        columns.update((name, part[name].to_numpy()) for name in part.columns)
    return pd.DataFrame(columns, index=df.index, copy=False)


def _num(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, 8)


class Columns:
    """The detectors' columns as numpy arrays, each converted once (a frame's column or row
    lookup costs tens of microseconds; a backtest reads the same block's columns every cycle).
    """

    def __init__(self, features: pd.DataFrame) -> None:
        self.features = features
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, column: str) -> np.ndarray:
        found = self._arrays.get(column)
        if found is None:
            found = self._arrays[column] = self.features[column].to_numpy()
        return found


def _zone(cols: Columns, i: int, prefix: str) -> dict[str, float] | None:
    top, bottom = _num(cols[f"{prefix}_top"][i]), _num(cols[f"{prefix}_bottom"][i])
    return None if top is None or bottom is None else {"top": top, "bottom": bottom}


def _last_event(values: np.ndarray, upto: int) -> tuple[int, int] | None:
    """Return (position, value) of the last non-zero event at or before `upto`."""
    hits = np.flatnonzero(values[: upto + 1] != 0)
    return (int(hits[-1]), int(values[hits[-1]])) if len(hits) else None


def _last_break(cols: Columns, i: int) -> dict[str, Any] | None:
    found = []
    for kind in ("bos", "choch"):
        event = _last_event(cols[kind], i)
        if event:
            found.append((event[0], kind.upper() if kind == "bos" else "CHoCH", event[1]))
    if not found:
        return None
    pos, kind, direction = max(found)
    return {
        "type": kind,
        "direction": "bullish" if direction > 0 else "bearish",
        "level": _num(cols["broken_level"][pos]),
        "bars_ago": i - pos,
    }


def _sweep(cols: Columns, i: int) -> dict[str, Any] | None:
    event = _last_event(cols["sweep"], i)
    if event is None or i - event[0] >= RECENT_BARS:
        return None
    side = "sell-side" if event[1] > 0 else "buy-side"
    return {"side": side, "level": _num(cols["sweep_level"][event[0]]), "bars_ago": i - event[0]}


def _recent_level(cols: Columns, flag: str, level: str, i: int) -> float | None:
    hits = np.flatnonzero(cols[flag][: i + 1])
    return _num(cols[level][hits[-1]]) if len(hits) else None


def summary(
    df: pd.DataFrame, at: int = -1, features: pd.DataFrame | Columns | None = None
) -> dict[str, Any]:
    """Summarise the SMC state at bar `at` (bars <= at only) as a small JSON-able dict.

    `features`: `smc_features(df)` (computed when None), or a `Columns` of it kept across calls.
    """
    if len(df) == 0:
        raise ValueError("an SMC summary needs at least one bar (the frame is empty)")
    features = smc_features(df) if features is None else features
    cols = features if isinstance(features, Columns) else Columns(features)
    i = range(len(df))[at]
    trend = int(cols["trend"][i])
    zone = cols["zone"][i] if isinstance(cols["zone"][i], str) and cols["zone"][i] else None
    return {
        "bar_time": df.index[i].isoformat(),
        "close": _num(df["close"].to_numpy()[i]),
        "trend": {1: "bullish", -1: "bearish"}.get(trend, "none"),
        "last_break": _last_break(cols, i),
        "fvg_below": _zone(cols, i, "bull_fvg"),
        "fvg_above": _zone(cols, i, "bear_fvg"),
        "ob_below": _zone(cols, i, "bull_ob"),
        "ob_above": _zone(cols, i, "bear_ob"),
        "equal_highs": _recent_level(cols, "equal_highs", "equal_highs_level", i),
        "equal_lows": _recent_level(cols, "equal_lows", "equal_lows_level", i),
        "sweep": _sweep(cols, i),
        "premium_discount": None
        if zone is None
        else {
            "zone": zone,
            "position": _num(cols["pd_position"][i]),
            "equilibrium": _num(cols["equilibrium"][i]),
            "range_high": _num(cols["range_high"][i]),
            "range_low": _num(cols["range_low"][i]),
        },
        "killzone": cols["killzone"][i] or None,
        "asia_range": {"high": _num(cols["asia_high"][i]), "low": _num(cols["asia_low"][i])},
    }
