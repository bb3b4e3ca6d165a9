"""`make bench`: backtest throughput for the rules analyst on one year of 1-minute bars.

Reference, measured in the same run: the engine path (`run_backtest(path="engine")`, one real
engine cycle and its SQLite records per bar) over 6 hours of 1-minute bars. Measured: the fast
path (same trades to the last bit, see `botlib.backtest`) on 525,601 bars, cold (the simulator
generating the year, numba compiling) and warm, then a whole `run_backtest` that also stores
the report (trades, per-bar equity) in its database. Target: >= 100k bars/s.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botlib.backtest import run_backtest
from botlib.backtest.fast_path import run_fast_backtest

log = logging.getLogger(f"botlib.{__name__}")  # under the botlib handler
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
TARGET = 100_000


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("botlib.core.engine", "botlib.backtest"):  # a line per cycle / per run
        logging.getLogger(noisy).setLevel(logging.WARNING)
    year = END - timedelta(days=365)
    with tempfile.TemporaryDirectory() as tmp:
        slow = run_backtest("BTC/USD", END - timedelta(hours=6), END, path="engine",
                            db_path=Path(tmp) / "engine.db")  # fmt: skip
        reference = slow.bars_per_s
        log.info("reference: engine path, %d 1Min bars        %9.0f bars/s", slow.cycles, reference)
        for label in ("cold", "warm"):
            fast = run_fast_backtest("BTC/USD", year, END)
            log.info(
                "fast path (%s): %d bars in %.2f s (features %.2f s) %9.0f bars/s = %6.0fx"
                " reference  [target >= %d: %s]", label, fast.cycles, fast.elapsed_s,
                fast.features_s, fast.bars_per_s, fast.bars_per_s / reference, TARGET,
                "met" if fast.bars_per_s >= TARGET else "NOT met",
            )  # fmt: skip
        began = time.perf_counter()
        whole = run_backtest("BTC/USD", year, END, db_path=Path(tmp) / "year.db")
        total = time.perf_counter() - began
        stored = whole.db_path.stat().st_size / 2**20
        log.info("run_backtest, report stored (%.0f MiB): %d trades in %.2f s all told,"
                 " %.0f bars/s replay", stored, len(whole.trades), total,
                 whole.bars_per_s)  # fmt: skip


if __name__ == "__main__":
    main()
