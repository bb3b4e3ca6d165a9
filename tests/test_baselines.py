"""The SMA-crossover baseline: a custom analyst through the real engine path.

Every logged decision must equal the crossing computed independently (pandas rolling means) on
the bars the cycle had, and each BUY the risk gate approved must open an all-in position.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from botlib.analysts.baselines import SmaCross
from botlib.backtest import Sizing, run_backtest
from botlib.storage.store import Store

END = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_sma_cross_decides_on_every_crossing_and_nothing_else(tmp_path: Path) -> None:
    result = run_backtest("BTC/USD", END - timedelta(hours=5), END, analyst=SmaCross(3, 8),
                          path="engine", sizing=Sizing(100, 100), stop_band_pct=None,
                          slippage_bps=0, db_path=tmp_path / "sma.db")  # fmt: skip
    with Store(result.db_path, read_only=True) as store:
        bars = store.load_bars("BTC/USD", "1Min", limit=None)
        logged = store.rows("SELECT last_bar_time, action FROM ai_decision_logs ORDER BY id")
        buys = store.rows("SELECT risk_reason FROM cycles WHERE action = 'BUY'")
    diff = bars["close"].rolling(3).mean() - bars["close"].rolling(8).mean()
    sign = np.sign(diff)
    expected = np.where((sign > 0) & (sign.shift() <= 0), "BUY",
                        np.where((sign < 0) & (sign.shift() >= 0), "SELL", "HOLD"))  # fmt: skip
    want = pd.Series(expected, index=bars.index)
    got = {pd.Timestamp(r["last_bar_time"]): r["action"] for r in logged}
    assert len(got) == result.cycles == 301
    assert {t: want[t] for t in got} == got
    assert sum(a == "BUY" for a in got.values()) >= 5  # the test saw crossings both ways
    approved = [b for b in buys if b["risk_reason"].startswith("approved")]
    assert approved and all("(100.00% of equity)" in b["risk_reason"] for b in approved)
    assert (result.trades["side"] == "buy").sum() == len(approved)
