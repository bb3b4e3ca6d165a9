"""Shared helpers for the ICT/SMC tests: random OHLC frames, hand-built frames, real EURUSD data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import strategies as st

os.environ.setdefault("SMC_CREDIT", "0")  # silence smartmoneyconcepts' banner

EURUSD = Path(__file__).resolve().parents[2] / "shared" / "data" / "eurusd-15m"


def ohlc(highs: list[float], lows: list[float] | None = None, closes: list[float] | None = None,
         opens: list[float] | None = None, start: str = "2026-01-05") -> pd.DataFrame:  # fmt: skip
    """Build a small frame from lists (lows default to highs - 1, closes/opens to the mid)."""
    h = np.asarray(highs, dtype=float)
    lo = np.asarray(lows, dtype=float) if lows is not None else h - 1
    c = np.asarray(closes, dtype=float) if closes is not None else (h + lo) / 2
    o = np.asarray(opens, dtype=float) if opens is not None else c
    idx = pd.date_range(start, periods=len(h), freq="15min", tz="UTC")
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1.0}, index=idx)


def random_ohlc(seed: int, n: int, ties: bool = False) -> pd.DataFrame:
    """Random-walk OHLC with consistent high/low; `ties` rounds prices so equal levels occur."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0},
        index=pd.date_range("2026-03-20", periods=n, freq="15min", tz="UTC"),
    )
    return frame.round(1) if ties else frame


@st.composite
def frame_and_cut(draw: st.DrawFn, max_n: int = 400) -> tuple[pd.DataFrame, int]:
    n = draw(st.integers(1, max_n))
    frame = random_ohlc(draw(st.integers(0, 2**32 - 1)), n, ties=draw(st.booleans()))
    return frame, draw(st.integers(1, n))


def eurusd() -> pd.DataFrame | None:
    """The real EURUSD 15m bars from ../shared, or None on a clone without shared/."""
    path = EURUSD / "EURUSD_15M.csv"
    if not path.exists():
        return None
    raw = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(raw["Date"], format="%Y.%m.%d %H:%M:%S"), tz="UTC")
    frame = raw[["Open", "High", "Low", "Close", "Tickvol"]].set_axis(index)
    return frame.set_axis(["open", "high", "low", "close", "volume"], axis=1)
