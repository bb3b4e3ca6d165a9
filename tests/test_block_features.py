"""A backtest's block features equal the live cycle's own computation, cycle by cycle.

`BlockFeatures` computes each window block once and slices it; `LiveFeatures` is what every
live cycle does. Both run side by side on their own databases over the same cycle times and
must return equal frames (indicators and SMC columns, to the last bit), raise the same errors
and store the same bars: across block boundaries, on simulated bars, on stored bars with gaps
(one across a block boundary), with stale stretches and with a bad bar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from botlib.backtest.block_features import BlockFeatures
from botlib.core.cycle_features import LiveFeatures
from botlib.features.window import WINDOW_BLOCK
from botlib.models import AssetSettings
from botlib.ports import MarketData
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket
from botlib.venues.stored_bars import FrameMarket

SYMBOL = "BTC/USD"


def boundary(minutes: int, near: datetime) -> datetime:
    span = WINDOW_BLOCK * minutes * 60
    return datetime.fromtimestamp(int(near.timestamp()) // span * span, UTC)


def outcome(source: BlockFeatures | LiveFeatures, asset: AssetSettings, now: datetime) -> object:
    """The frames a cycle gets (features, SMC), or the error it fails with."""
    try:
        features = source.features(asset, now)
    except Exception as exc:  # compared below: the same type and message on both sides
        return (type(exc).__name__, str(exc))
    return features, source.summary(features)


def compare(tmp_path: Path, market: MarketData, timeframe: str, times: list[datetime]) -> dict:
    """Run both sources over `times`; assert equal outcomes; return counts per outcome kind."""
    asset = AssetSettings(symbol=SYMBOL, timeframe=timeframe)
    kinds: dict[str, int] = {}
    with Store(tmp_path / "live.db") as live_db, Store(tmp_path / "block.db") as block_db:
        live = LiveFeatures(market, live_db)
        block = BlockFeatures(market, block_db, SYMBOL, timeframe, times)
        for now in times:
            want, got = outcome(live, asset, now), outcome(block, asset, now)
            if isinstance(want, tuple) and isinstance(want[0], str):
                assert got == want, now
                kinds[want[0]] = kinds.get(want[0], 0) + 1
                continue
            assert isinstance(got, tuple) and not isinstance(got[0], str), (now, got)
            pd.testing.assert_frame_equal(got[0], want[0], check_exact=True)
            assert got[1] == want[1], now
            kinds["ok"] = kinds.get("ok", 0) + 1
        stored = [db.load_bars(SYMBOL, timeframe, limit=None) for db in (live_db, block_db)]
    pd.testing.assert_frame_equal(stored[1], stored[0], check_exact=True)
    assert len(stored[0]) > 0
    return kinds


def test_simulated_minutes_across_a_block_boundary_equal_the_live_cycles(tmp_path: Path) -> None:
    edge = boundary(1, datetime(2026, 11, 20, 12, tzinfo=UTC))
    times = [edge + timedelta(minutes=k) for k in range(-25, 26)]
    kinds = compare(tmp_path, SimMarket(), "1Min", times)
    assert kinds == {"ok": len(times)}


def test_stored_bars_with_gaps_stale_stretches_and_a_gap_over_a_boundary(tmp_path: Path) -> None:
    edge = boundary(15, datetime(2026, 11, 20, 12, tzinfo=UTC))
    width = timedelta(minutes=15)
    bars = SimMarket().bars(SYMBOL, "15Min", edge + 300 * width, WINDOW_BLOCK + 600)
    index = bars.index
    holes = (
        ((index > edge - 3 * width) & (index < edge + 4 * width))  # across the boundary
        | ((index > edge + 100 * width) & (index < edge + 110 * width))  # a stale stretch
        | (np.arange(len(index)) % 17 == 0)  # scattered single gaps
    )
    market = FrameMarket(SYMBOL, "15Min", bars[~holes])
    times = [edge + k * width for k in range(-40, 160)]  # every slot, not only stored closes
    kinds = compare(tmp_path, market, "15Min", times)
    assert kinds["ok"] > 100 and kinds["StaleDataError"] >= 5, kinds


def test_too_little_history_and_a_bad_bar_fail_as_the_live_cycle_does(tmp_path: Path) -> None:
    bars = SimMarket().bars(SYMBOL, "1Hour", datetime(2026, 6, 1, tzinfo=UTC), 200)
    times = [bars.index[0] + timedelta(hours=k) for k in range(30, 120)]  # starts short
    kinds = compare(tmp_path / "short", FrameMarket(SYMBOL, "1Hour", bars), "1Hour", times)
    assert kinds["ok"] > 40 and kinds["DataError"] > 10, kinds
    broken = bars.copy()
    broken.iloc[150, broken.columns.get_loc("high")] = broken["low"].iloc[150] / 2
    market = _Unchecked(broken)  # a feed that serves a high below the low
    later = [bars.index[0] + timedelta(hours=k) for k in range(100, 200)]
    kinds = compare(tmp_path / "bad", market, "1Hour", later)
    assert kinds == {"ok": 151 - 100, "DataError": 200 - 151}, kinds  # row 150 closes at 151 h


class _Unchecked:
    """Stored bars served as they are (FrameMarket would refuse the bad bar up front)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.frame, self.closes = bars, bars.index + timedelta(hours=1)

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        stop = int(self.closes.searchsorted(pd.Timestamp(end), side="right"))
        return self.frame.iloc[max(0, stop - limit) : stop]

    def latest_price(self, symbol: str, at: datetime) -> float:
        raise AssertionError("features never ask for a price")


@pytest.mark.parametrize("cut", [1, 2999, 3000, 3001])
def test_a_slice_is_never_computed_from_later_bars(tmp_path: Path, cut: int) -> None:
    """No look-ahead: the frame a cycle gets equals features computed on its bars alone."""
    edge = boundary(1, datetime(2026, 11, 20, 12, tzinfo=UTC))
    now = edge + timedelta(minutes=cut - 1500)
    asset = AssetSettings(symbol=SYMBOL, timeframe="1Min")
    with Store(tmp_path / "b.db") as db:
        times = [now, now + timedelta(hours=30)]  # the run reaches far past `now`
        block = BlockFeatures(SimMarket(), db, SYMBOL, "1Min", times)
        got = block.features(asset, now)
        smc = block.summary(got)
    assert got.index[-1] == pd.Timestamp(now) - timedelta(minutes=1)
    with Store(tmp_path / "l.db") as db:
        own = LiveFeatures(SimMarket(), db).features(asset, now)
    pd.testing.assert_frame_equal(got, own, check_exact=True)
    assert smc == LiveFeatures(SimMarket(), db).summary(own)
