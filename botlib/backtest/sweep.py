"""Backtest sweeps on Dask: many independent `run_backtest` calls, one task each.

A research sweep varies rule parameters, sizing, assets and periods. Each run writes its own new
SQLite file, so runs share nothing and can run anywhere: `run_sweep` submits one Dask task per
`SweepRun` and gathers rows as they finish; a failed run is a row with its error. By default it
starts a `distributed.LocalCluster` (one single-threaded worker process per core: the replay holds
the GIL); `scheduler="tcp://host:8786"` sends the same tasks to a running cluster.

Where the results live. Each task writes its run's database on the worker, into `directory`,
and sends back only a small summary (one row of `SweepResult.table`: parameters, return, trades,
drawdown, the database's path), never the frames. On one machine (the LocalCluster) the
databases are all in `directory`. With workers on other machines there are two ways to get the
full databases back: `directory` on a shared filesystem mounted at the same path everywhere
(NFS, SMB, a cloud file share), which is the case built here; or the worker uploads its file to
object storage and returns the object's URL in place of the path (not built: it needs a store,
credentials and a download step on the reading side). Each file has exactly one writer, which
is what SQLite on a network filesystem needs.

Dask is imported inside `run_sweep` only, so botlib imports without the `sweep` extra.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm  # a widget in a notebook, text in a terminal

from botlib.analysts.rules import RuleParams, RulesAnalyst
from botlib.backtest.run import Sizing, run_backtest
from botlib.clock import iso
from botlib.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["SweepRun", "SweepResult", "grid", "run_sweep", "run_summary", "COLUMNS"]

log = logging.getLogger(__name__)
# One row per run, in this order; `error` is None for a run that finished.
COLUMNS = [
    "label", "symbol", "timeframe", "start", "end", "analyst", "rules", "position_pct",
    "max_position_pct", "stop_band_pct", "cash", "fee_rate", "slippage_bps", "backtest_id",
    "db_path", "return_pct", "buy_and_hold_pct", "trades", "win_rate_pct", "max_drawdown_pct",
    "sharpe", "fees", "elapsed_s", "error",
]  # fmt: skip


@dataclass(frozen=True)
class SweepRun:
    """The keyword arguments of one `run_backtest` call, as a picklable value a worker receives.

    Only the rules analyst (by name, or a `RulesAnalyst` with its `RuleParams`) is swept: it
    replays on the fast path with no network and no shared LLM cache, so runs stay independent.
    The timeframe and window are checked by `run_backtest` in the worker; a bad one fails that
    run alone.
    """

    symbol: str
    start: datetime
    end: datetime
    timeframe: str = "1Min"
    analyst: str | RulesAnalyst = "rules"
    cash: float = 100_000
    fee_rate: float = 0.0025
    slippage_bps: float = 5
    stop_band_pct: float | None = 0.5
    sizing: Sizing = field(default_factory=Sizing)
    label: str = ""

    def __post_init__(self) -> None:
        if self.analyst != "rules" and type(self.analyst) is not RulesAnalyst:
            raise ConfigError(
                f"a sweep runs the rules analyst: pass 'rules' or RulesAnalyst(RuleParams(...)),"
                f" got {self.analyst!r}"
            )

    @property
    def rules(self) -> RuleParams:
        return self.analyst.params if isinstance(self.analyst, RulesAnalyst) else RuleParams()

    def name(self) -> str:
        """The label, or one made of what a grid varies (a table row must say what it is)."""
        if self.label:
            return self.label
        window = f"{self.start:%Y-%m-%dT%H:%M}..{self.end:%Y-%m-%dT%H:%M}"
        parts = [self.symbol, self.timeframe, window, f"pos={self.sizing.position_pct:g}%"]
        return " ".join([*parts, _changed_rules(self.rules)]).strip()

    def kwargs(self) -> dict[str, Any]:
        """The arguments of `run_backtest` (everything but the label)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "label"}

    def parameters(self) -> dict[str, Any]:
        """The run's parameters as flat table cells."""
        return {
            "label": self.name(), "symbol": self.symbol, "timeframe": self.timeframe,
            "start": iso(self.start), "end": iso(self.end), "analyst": "rules",
            "rules": _changed_rules(self.rules), "position_pct": self.sizing.position_pct,
            "max_position_pct": self.sizing.max_position_pct,
            "stop_band_pct": self.stop_band_pct, "cash": self.cash, "fee_rate": self.fee_rate,
            "slippage_bps": self.slippage_bps,
        }  # fmt: skip


def _changed_rules(params: RuleParams) -> str:
    """The rule numbers that differ from the defaults, e.g. "atr_target=1.5" ("" if none)."""
    default = asdict(RuleParams())
    return ",".join(f"{k}={v}" for k, v in asdict(params).items() if default[k] != v)


def grid(
    symbols: Sequence[str],
    periods: Sequence[tuple[datetime, datetime]],
    *,
    timeframes: Sequence[str] = ("1Min",),
    sizings: Sequence[Sizing] = (Sizing(),),
    rules: Sequence[RuleParams] = (RuleParams(),),
    **fixed: Any,
) -> list[SweepRun]:
    """Every combination of the axes, as runs (symbol varies slowest, rules fastest).

    `fixed` holds the `SweepRun` fields every run shares (cash, fee_rate, slippage_bps,
    stop_band_pct). Labels are left empty so each row names its own parameters.
    """
    combos = itertools.product(symbols, periods, timeframes, sizings, rules)
    return [
        SweepRun(
            symbol, start, end, timeframe, analyst=RulesAnalyst(params), sizing=sizing, **fixed
        )  # fmt: skip
        for symbol, (start, end), timeframe, sizing, params in combos
    ]


def run_summary(run: SweepRun, directory: str) -> dict[str, Any]:
    """Run one backtest into `directory` and return its table row (small, picklable).

    This is the Dask task: it runs in a worker process, so it returns numbers and the
    database's path, never the trades or the equity curve.
    """
    started = time.perf_counter()
    result = run_backtest(**run.kwargs(), directory=directory)
    m = result.metrics
    return run.parameters() | {
        "backtest_id": result.backtest_id, "db_path": str(result.db_path),
        "return_pct": result.return_pct, "buy_and_hold_pct": result.buy_and_hold_pct,
        "trades": m.n_trades, "win_rate_pct": None if m.win_rate is None else m.win_rate * 100,
        "max_drawdown_pct": m.max_drawdown_pct, "sharpe": m.sharpe,
        "fees": float(result.trades["fee"].sum()) if len(result.trades) else 0.0,
        "elapsed_s": time.perf_counter() - started, "error": None,
    }  # fmt: skip


@dataclass(frozen=True)
class SweepResult:
    """A sweep's rows, in the order the runs were given (not the order they finished)."""

    table: pd.DataFrame

    @property
    def failed(self) -> pd.DataFrame:
        """The runs that raised, with their error text."""
        return self.table[self.table["error"].notna()]

    @property
    def finished(self) -> pd.DataFrame:
        return self.table[self.table["error"].isna()]


def run_sweep(
    runs: Sequence[SweepRun],
    directory: Path | str,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    dashboard: Callable[[str], object] | None = None,
) -> SweepResult:
    """Run every backtest as a Dask task; each writes its database into `directory`.

    `progress`: a progress bar (a widget in a notebook); `dashboard`: called with the address
    of Dask's dashboard once the cluster is up (a notebook shows it as a link).

    `scheduler=None` starts a LocalCluster of `workers` processes (default: one per core);
    an address such as "tcp://host:8786" uses that cluster's workers (`workers` must then be
    None: the cluster decides). A failed run becomes a row with its `error`; the rest finish.
    """
    if not runs:
        raise ConfigError("a sweep needs at least one run")
    if scheduler is not None and workers is not None:
        raise ConfigError("workers sizes a LocalCluster; an external scheduler has its own workers")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    folder = Path(directory).resolve()  # the workers' working directories may differ
    folder.mkdir(parents=True, exist_ok=True)
    with _client(scheduler, workers) as client:
        log.info("sweep: %d runs on %s; watch them at %s", len(runs), client.scheduler.address,
                 client.dashboard_link)  # fmt: skip
        if dashboard is not None:
            dashboard(client.dashboard_link)
        rows = _gather(client, list(runs), str(folder), progress)
    return SweepResult(pd.DataFrame(rows, columns=COLUMNS))


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    """A client of the given scheduler, or of a LocalCluster closed with it."""
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError as exc:  # the extra is optional: say how to get it
        raise ConfigError("backtest sweeps need Dask: pip install 'botlib[sweep]'") from exc
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1, processes=True, threads_per_worker=1,
            dashboard_address=":0",  # any free port: 8787 may be another cluster's
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def _gather(client: Client, runs: list[SweepRun], folder: str, progress: bool) -> list[Any]:
    """Submit one task per run and collect each row as its task finishes."""
    from distributed import as_completed

    futures = [client.submit(run_summary, run, folder, pure=False) for run in runs]
    position = {future.key: index for index, future in enumerate(futures)}
    rows: list[Any] = [None] * len(runs)
    for future in tqdm(as_completed(futures), total=len(runs), desc="sweep", disable=not progress):
        index = position[future.key]
        rows[index] = _row(future, runs[index])
    return rows


def _row(future: Future[dict[str, Any]], run: SweepRun) -> dict[str, Any]:
    """The task's row, or the run's parameters and the error that stopped it."""
    try:
        return future.result()  # type: ignore[no-any-return]
    except Exception as exc:  # a failed run is a row; the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
        log.warning("sweep run %s failed: %s", run.name(), error)
        return run.parameters() | {"error": error}
