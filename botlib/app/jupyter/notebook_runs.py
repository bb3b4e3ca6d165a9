"""Cycles as papermill notebooks: each due asset's cycle runs `trading_cycle.ipynb`, archived.

The executed notebook under `<runs>/YYYY-MM-DD/<cycle_id>.ipynb` is the human-readable record
of that cycle (bars, indicators, prompt, decision, risk, orders); the `cycles` row links it in
`notebook_path`. Papermill (and the engine) are imported only when a cycle is due, so a quiet
tick stays light and starts no kernel. Parameters come from an allowlist (`PARAMETERS`): keys
reach the kernel through its environment, never through the notebook. `prune_runs` bounds the
archive.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botlib.app.config import Settings
from botlib.app.jupyter.shipped import kernel_hint, notebook_path
from botlib.clock import ManualClock, parse_time
from botlib.errors import ConfigError
from botlib.models import CycleReport, CycleStatus
from botlib.ports import Clock
from botlib.redact import scrub
from botlib.storage.store import Store

__all__ = [
    "CYCLE_NOTEBOOK",
    "PARAMETERS",
    "NotebookRunner",
    "PruneCounts",
    "archive_path",
    "cycle_notebook",
    "notebook_parameters",
    "prune_runs",
]

log = logging.getLogger(__name__)

CYCLE_NOTEBOOK = notebook_path("trading_cycle.ipynb")
PARAMETERS = ("symbol", "db", "mode", "cycle_id", "at")  # all a tick ever passes: no secrets
CELL_TIMEOUT_S = 600  # a hung cell must not hold the tick lock (and every later tick) for ever
# ipykernel warns on every start that its localhost TCP sockets are unencrypted (they carry
# HMAC-signed messages only this user can sign): one line per cycle in the cron log is noise.
_KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
_CYCLE_TIME = re.compile(r"^(\d{8}T\d{6})-")  # new_cycle_id starts with the cycle's UTC time


def cycle_notebook(settings: Settings) -> Path:
    """Return the notebook a tick runs: BOTLIB_CYCLE_NOTEBOOK, else the project's own."""
    return settings.cycle_notebook or CYCLE_NOTEBOOK


def archive_path(runs_dir: Path | str, cycle_id: str, day: datetime) -> Path:
    """Return where a cycle's executed notebook is kept: `<runs>/YYYY-MM-DD/<cycle_id>.ipynb`."""
    return Path(runs_dir) / f"{day.astimezone(UTC):%Y-%m-%d}" / f"{cycle_id}.ipynb"


def notebook_parameters(
    settings: Settings, symbol: str, cycle_id: str, clock: Clock
) -> dict[str, str]:
    """Return the notebook's parameters, built from `PARAMETERS` only (never from settings' keys).

    `at` fixes the kernel's clock only when the tick's own clock is simulated.
    """
    params = {
        "symbol": symbol,
        "db": str(Path(settings.db_path).absolute()),
        "mode": settings.resolved_mode,
        "cycle_id": cycle_id,
    }
    if isinstance(clock, ManualClock):
        params["at"] = clock.now().isoformat()
    assert set(params) <= set(PARAMETERS)
    return params


class NotebookRunner:
    """Run due assets' cycles through papermill for a tick: one warm kernel, one notebook each.

    The tick's first cycle starts its kernel and every later cycle runs its notebook in it
    (papermill hands the kernel manager to nbclient, which leaves a kernel it does not own
    running), so a cycle costs its notebook, not a kernel start-up. `close` shuts it down at
    the tick's end: a fresh kernel per tick, so nothing leaks from one tick to the next. A
    cycle whose cell raises fails alone (the kernel lives on); one that kills the kernel fails
    alone too, and the next cycle gets a new kernel. A setup that cannot trade at all (a
    missing key) fails in this process first, with the same recorded reason an in-process
    cycle gives, so no kernel starts for nothing.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock, day: datetime) -> None:
        from botlib.app.cycles import CycleRunner

        self.settings, self.store, self.clock, self.day = settings, store, clock, day
        self.in_process = CycleRunner(settings, store, clock)
        self._km: Any = None  # the tick's kernel manager, made by its first cycle

    def kernel(self) -> Any:
        """Return the tick's kernel manager; a kernel that died is replaced by a new one.

        An async manager: its client does not block nbclient's event loop, so nbclient's
        heartbeat check sees a kernel that died mid-cell (a blocking client would wait out the
        cell timeout).
        """
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = self._km
        if km is not None and km.has_kernel and not run_sync(km.is_alive)():
            log.warning("the tick's kernel died; the next cycle starts a new one")
            run_sync(km.cleanup_resources)()
            self._km = None
        if self._km is None:
            self._km = AsyncKernelManager(kernel_name=self.settings.kernel)
        return self._km

    def close(self) -> None:
        """Shut the tick's kernel down (idempotent)."""
        from jupyter_core.utils import run_sync

        km, self._km = self._km, None
        if km is not None and km.has_kernel:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # a kernel already gone: nothing left to stop
                log.debug("the tick's kernel was already gone", exc_info=True)

    def run(self, symbol: str) -> CycleReport:
        """Run the symbol's cycle notebook; a failed notebook fails only this cycle."""
        asset = self.store.get_asset(symbol)
        try:
            self.in_process.engine_for(asset.analyst or self.settings.resolved_analyst)
        except ConfigError:
            return self.in_process.run(symbol)  # records the failure, the fix in its reason
        from botlib.core.engine import new_cycle_id

        now = self.clock.now()
        cycle_id = new_cycle_id(symbol, now)
        out = archive_path(self.settings.runs_dir, cycle_id, self.day)
        params = notebook_parameters(self.settings, symbol, cycle_id, self.clock)
        try:
            _execute(cycle_notebook(self.settings), out, params, self.settings.kernel,
                     self.kernel())  # fmt: skip
        except Exception as exc:
            return self._failed(symbol, cycle_id, now, out, _failure_reason(exc))
        return self._finished(symbol, cycle_id, now, out)

    def _finished(self, symbol: str, cycle_id: str, now: datetime, out: Path) -> CycleReport:
        row = self._row(cycle_id)
        if row is None:  # not due or paused by the time the kernel looked: nothing happened
            log.warning("%s: the notebook ran no cycle; see %s", symbol, out)
            return CycleReport("-", symbol, CycleStatus.SKIPPED, reason=f"no cycle ran ({out})")
        if row["status"] == "running":
            return self._failed(symbol, cycle_id, now, out, "the notebook ended mid-cycle")
        self._link(cycle_id, out)
        return self._report(row)

    def _failed(
        self, symbol: str, cycle_id: str, now: datetime, out: Path, reason: str
    ) -> CycleReport:
        """Record a notebook that raised: the cycle fails, unless the engine had finished it."""
        from botlib.app.wiring import failure_watch

        reason = scrub(reason)
        log.warning("%s: the cycle notebook failed: %s", symbol, reason)
        row = self._row(cycle_id)
        if row is not None and row["status"] != "running":
            self._link(cycle_id, out)  # the cycle itself completed; the record shows the error
            report = self._report(row)
            return _with_note(report, f"the notebook failed afterwards: {reason}")
        store, finished = self.store, self.clock.now()
        if row is None:
            store.record_failed_cycle(
                cycle_id, symbol, now, reason=reason, error="notebook",
                mode=self.settings.resolved_mode, analyst=self._analyst(symbol),
            )  # fmt: skip
        else:  # the kernel died mid-cycle: say how far it got
            reason = f"{reason}; interrupted {store.cycle_stage(cycle_id)}"
            store.finish_cycle(cycle_id, finished, status="failed", reason=reason, error="notebook")
            store.mark_cycle(symbol, now)  # retried next interval
        self._link(cycle_id, out)
        failure_watch(self.settings, store).after_failure(symbol, finished, cycle_id)
        details = {"error": "notebook"}
        return CycleReport(cycle_id, symbol, CycleStatus.FAILED, reason=reason, details=details)

    def _row(self, cycle_id: str) -> dict[str, Any] | None:
        return self.store.cycle(cycle_id)

    def _link(self, cycle_id: str, out: Path) -> None:
        if out.exists():
            self.store.link_notebook(cycle_id, str(out.absolute()))

    def _report(self, row: dict[str, Any]) -> CycleReport:
        orders = self.store.cycle_orders(row["id"])
        return CycleReport(
            row["id"],
            row["symbol"],
            CycleStatus(row["status"]),
            reason=row["reason"] or "",
            bar_time=parse_time(row["bar_time"]),
            action=row["action"],
            exit_reason=row["exit_reason"],
            orders=tuple(orders),
            equity=row["equity"],
            decision_id=row["decision_id"],
            details={"error": row["error"]} if row["error"] else {},
        )

    def _analyst(self, symbol: str) -> str:
        return self.store.get_asset(symbol).analyst or self.settings.resolved_analyst


_WARM_ENGINE = "botlib-warm-kernel"


def _warm_engine() -> str:
    """Register (once) papermill's nbclient engine, changed to close its kernel client.

    Handed a kernel manager, nbclient leaves the kernel running (it does not own it) and its
    client connected: papermill's engine drops that client with its sockets open. This one
    closes them after each notebook, so a tick of many cycles holds one kernel and no
    abandoned connections.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.exceptions import PapermillException
    from papermill.utils import merge_kwargs, remove_args

    class WarmKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls, nb_man: Any, kernel_name: str, log_output: bool = False,
            stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
            execution_timeout: int | None = None, **kwargs: Any,
        ) -> Any:  # fmt: skip
            safe = remove_args(["timeout", "startup_timeout", "input_path"], **kwargs)
            client = PapermillNotebookClient(nb_man, **merge_kwargs(
                safe, timeout=execution_timeout, startup_timeout=start_timeout,
                kernel_name=kernel_name, log=logging.getLogger("papermill"),
                log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
            ))  # fmt: skip
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    try:
        papermill_engines.get_engine(_WARM_ENGINE)
    except PapermillException:  # not registered yet in this process
        papermill_engines.register(_WARM_ENGINE, WarmKernelEngine)
    return _WARM_ENGINE


def _execute(notebook: Path, out: Path, params: dict[str, str], kernel: str, km: Any) -> None:
    import papermill

    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(notebook),
        str(out),
        parameters=params,
        kernel_name=kernel,
        progress_bar=False,
        execution_timeout=CELL_TIMEOUT_S,
        extra_arguments=_KERNEL_ARGS,
        km=km,
        engine_name=_warm_engine(),
    )


def _failure_reason(exc: Exception) -> str:
    """Say which cell raised what (papermill's error), or why the notebook could not run."""
    if type(exc).__name__ == "PapermillExecutionError":
        cell, ename, evalue = (getattr(exc, k, "?") for k in ("exec_count", "ename", "evalue"))
        return f"cell {cell}: {ename}: {evalue}"
    reason = f"the cycle notebook could not run: {type(exc).__name__}: {exc}"
    if type(exc).__name__ == "NoSuchKernel":
        reason += f" ({kernel_hint(getattr(exc, 'name', ''))}; or BOTLIB_TICK_NOTEBOOKS=false)"
    return reason


def _with_note(report: CycleReport, note: str) -> CycleReport:
    return replace(report, reason=f"{report.reason}; {note}" if report.reason else note)


@dataclass(frozen=True)
class PruneCounts:
    """What one pruning pass did to the archive."""

    kept: int = 0
    deleted: int = 0  # of them, notebooks no cycle row knew:
    orphans: int = 0
    folders: int = 0  # empty date folders removed


def prune_runs(
    store: Store, runs_dir: Path | str, now: datetime, keep_days: int, keep_hours: int
) -> PruneCounts:
    """Delete archived notebooks past their retention; unlink them from their cycles.

    Cycles that traded or failed keep theirs `keep_days` days, the rest (and files no cycle
    row knows) `keep_hours` hours. A notebook's age is the time its name starts with (the
    cycle id's UTC time), else its file time. Cheap: a directory listing and two queries.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return PruneCounts()
    files = sorted(root.glob("*/*.ipynb"))
    every, routine = now - timedelta(days=keep_days), now - timedelta(hours=keep_hours)
    aged = [(f, t) for f in files if (t := _run_time(f)) < max(every, routine)]
    important = store.notebook_importance([f.stem for f, _ in aged])
    doomed = [f for f, t in aged if t < every or (t < routine and not important.get(f.stem, False))]
    for f in doomed:
        f.unlink(missing_ok=True)
    linked = [f.stem for f in doomed if f.stem in important]
    store.unlink_notebooks(linked)
    folders = _remove_empty_folders(root)
    if doomed:
        log.info("pruned %d archived notebooks from %s", len(doomed), root)
    return PruneCounts(len(files) - len(doomed), len(doomed), len(doomed) - len(linked), folders)


def _run_time(path: Path) -> datetime:
    found = _CYCLE_TIME.match(path.stem)
    if found:
        return datetime.strptime(found[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _remove_empty_folders(root: Path) -> int:
    removed = 0
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            removed += 1
    return removed
