"""`make bench`: the papermill tick against the in-process tick, by tick size (issue #17).

Each size runs one tick of N due simulated assets twice, in fresh databases: through papermill
(one warm kernel per tick, one archived notebook per cycle: the default) and in-process (the
reference, measured in the same run). Prints cycles/s for each and their ratio, and whether 20
assets finish under the 10 s target.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from botlib.app.config import load_settings
from botlib.app.scheduler import tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.storage.store import Store

log = logging.getLogger(f"botlib.{__name__}")  # under the botlib handler
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
SIZES = (1, 5, 20, 50)
TARGET_20_S = 10.0


def symbols(count: int) -> list[str]:
    """`count` simulated pairs (the simulator makes a market for any XXX/USD)."""
    names = ["BTC", "ETH", "SOL"] + [f"X{k:02d}" for k in range(count)]
    return [f"{name}/USD" for name in names[:count]]


def timed_tick(root: Path, count: int, notebooks: bool) -> float:
    """Run one tick of `count` due assets in a new database; return its wall time."""
    folder = Path(tempfile.mkdtemp(dir=root))
    settings = load_settings(None, db_path=folder / "bench.db", runs_dir=folder / "runs",
                             tick_notebooks=notebooks)  # fmt: skip
    with Store(settings.db_path) as store:
        ensure_assets(store, symbols(count), interval_minutes=60)
    started = time.perf_counter()
    reports = tick(settings, ManualClock(T0))
    elapsed = time.perf_counter() - started
    failed = [r.summary() for r in reports or [] if r.status.value != "ok"]
    if failed:
        raise RuntimeError(f"the bench tick failed: {failed[:3]}")
    return elapsed


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("botlib", "papermill", "traitlets", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timed_tick(root, 1, notebooks=False)  # imports, so the first size is not penalised
        for count in SIZES:
            reference = timed_tick(root, count, notebooks=False)
            notebooks = timed_tick(root, count, notebooks=True)
            line = (f"tick of {count:2d} due assets: notebooks {notebooks:6.2f} s"
                    f" ({count / notebooks:5.1f} cycles/s), in-process {reference:5.2f} s"
                    f" ({count / reference:5.1f} cycles/s) = {notebooks / reference:4.1f}x"
                    " reference")  # fmt: skip
            if count == 20:
                verdict = "met" if notebooks < TARGET_20_S else "NOT met"
                line += f"  [target < {TARGET_20_S:.0f} s: {verdict}]"
            log.info(line)


if __name__ == "__main__":
    main()
