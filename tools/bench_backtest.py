"""`make bench`: backtests against backtesting.py (a bench-only dependency), in the same run.

1. The engine path (`run_backtest(path="engine")`: the live `Engine`, one cycle and its SQLite
   records per bar) with a custom analyst, `SmaCross(10, 30)`, fee 0.25 %, on 3,500 one-minute
   simulated bars; the reference is backtesting.py's `SmaCross` on the same bars with the same
   commission. Target: within 10x of it.
2. The rules analyst's fast path on a year of one-minute bars (525,601 cycles, warm); the
   reference is backtesting.py's `SmaCross` on that year. Target: at least as fast.
3. A whole `run_backtest` of the year that also stores the report (trades, per-bar equity).

Each line prints the ratio against its reference and says met / NOT met. Both strategies see
the same crossings (printed side by side); backtesting.py fills at the next bar's open, ours at
the cycle's price, and our risk gate refuses entries after the daily loss limit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from botlib.analysts.baselines import SmaCross
from botlib.backtest import Sizing, run_backtest
from botlib.backtest.fast_path import run_fast_backtest
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket

log = logging.getLogger(f"botlib.{__name__}")  # under the botlib handler
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
ENGINE_BARS = 3_500
ENGINE_TARGET = 10.0  # engine path time / backtesting.py time
FAST_TARGET = 1.0  # fast path time / backtesting.py time


def backtesting_py(bars: pd.DataFrame) -> tuple[float, int]:
    """Best-of-3 seconds and trade count of backtesting.py's SMA(10/30) cross on `bars`."""
    from backtesting import Backtest, Strategy  # bench-only: `pip install backtesting`
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class Cross(Strategy):  # backtesting.py's own quick-start strategy
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    frame = bars.rename(columns=str.capitalize)
    best, trades = float("inf"), 0
    for _ in range(3):
        began = time.perf_counter()
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its bar
            warnings.simplefilter("ignore")
            stats = Backtest(frame, Cross, cash=10_000_000, commission=0.0025,
                             finalize_trades=True).run()  # fmt: skip
        best = min(best, time.perf_counter() - began)
        trades = int(stats["# Trades"])
    return best, trades


def verdict(ratio: float, target: float) -> str:
    return f"[target <= {target:g}x: {'met' if ratio <= target else 'NOT met'}]"


def engine_path(tmp: Path) -> None:
    start = END - timedelta(minutes=ENGINE_BARS - 1)
    bars = SimMarket().bars("BTC/USD", "1Min", END, ENGINE_BARS)
    reference, ref_trades = backtesting_py(bars)
    log.info("reference: backtesting.py SmaCross, %d 1Min bars    %7.3f s %9.0f bars/s",
             len(bars), reference, len(bars) / reference)  # fmt: skip
    run = timed(lambda: run_backtest(  # the second run: numba and the imports are warm
        "BTC/USD", start, END, analyst=SmaCross(), path="engine", sizing=Sizing(100, 100),
        slippage_bps=0, stop_band_pct=None, directory=tmp), repeat=2)  # fmt: skip
    result, elapsed = run
    ratio = elapsed / reference
    with Store(result.db_path, read_only=True) as store:
        buys = store.rows("SELECT risk_verdict AS v, count(*) AS n FROM cycles"
                          " WHERE action = 'BUY' GROUP BY 1")  # fmt: skip
    count = {row["v"]: row["n"] for row in buys}
    log.info("engine path, SmaCross analyst, %d cycles          %7.3f s %9.0f bars/s = %5.1fx"
             " reference %s", result.cycles, elapsed, result.cycles / elapsed, ratio,
             verdict(ratio, ENGINE_TARGET))  # fmt: skip
    log.info("  the same signals: %d golden crosses (backtesting.py: %d trades), %d bought, %d"
             " refused by the risk gate (the daily-loss halt)", sum(count.values()), ref_trades,
             count.get("approved", 0), count.get("denied", 0))  # fmt: skip


def fast_path(tmp: Path) -> None:
    year = END - timedelta(days=365)
    bars = SimMarket().bars("BTC/USD", "1Min", END + timedelta(minutes=1), 525_601)
    reference, _ = backtesting_py(bars)
    log.info("reference: backtesting.py SmaCross, %d 1Min bars  %7.3f s %9.0f bars/s",
             len(bars), reference, len(bars) / reference)  # fmt: skip
    for label in ("cold", "warm"):
        fast = run_fast_backtest("BTC/USD", year, END)
        ratio = fast.elapsed_s / reference
        log.info("fast path, rules (%s), %d cycles (features %.2f s) %7.3f s %9.0f bars/s ="
                 " %5.2fx reference %s", label, fast.cycles, fast.features_s, fast.elapsed_s,
                 fast.bars_per_s, ratio, verdict(ratio, FAST_TARGET))  # fmt: skip
    whole, total = timed(lambda: run_backtest("BTC/USD", year, END, db_path=tmp / "year.db"))
    stored = whole.db_path.stat().st_size / 2**20
    log.info("run_backtest, report stored (%.0f MiB): %d trades in %.2f s all told", stored,
             len(whole.trades), total)  # fmt: skip


def timed[T](fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """The last result and the fastest wall time of `repeat` runs."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    assert result is not None
    return result, best


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("botlib.core", "botlib.backtest"):  # a line per cycle / per run
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        engine_path(Path(tmp))
        fast_path(Path(tmp))


if __name__ == "__main__":
    main()
