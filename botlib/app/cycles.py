"""Run assets' cycles from settings: each with its own analyst, a broken setup recorded per cycle.

`run_cycles` is the trading-cycle notebook's body (one cycle per symbol); `CycleRunner` is what
an in-process tick runs each due asset with.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from botlib.app.config import Settings
from botlib.app.wiring import build_engine, build_shadows, ensure_assets, failure_watch
from botlib.clock import ManualClock, SystemClock
from botlib.core.engine import Engine, new_cycle_id, skip_reason_in
from botlib.errors import ConfigError
from botlib.models import CycleReport, CycleStatus
from botlib.ports import Clock
from botlib.storage.store import Store

if TYPE_CHECKING:
    from botlib.arena.shadows import Shadows

__all__ = ["CycleRunner", "run_cycles", "raise_if_unconfigured"]

log = logging.getLogger(__name__)


def run_cycles(
    symbols: list[str],
    db: str,
    mode: str = "sim",
    force: bool = False,
    at: str | None = None,
    cycle_id: str | None = None,
) -> list[CycleReport]:
    """Run one cycle per symbol (the trading-cycle notebook's body); `at` fixes the sim clock.

    A tick passes one symbol and the `cycle_id` it archives the notebook under, so the row and
    the file match; by hand, any symbols (each cycle named by the engine). Raise ConfigError
    (after recording the failures) when no cycle could run at all.
    """
    from botlib.app.config import load_settings
    from botlib.app.logs import configure_logging
    from botlib.redact import register_secrets

    if cycle_id is not None and len(symbols) != 1:
        raise ValueError("cycle_id names one cycle: give one symbol")
    settings = load_settings(db_path=db, mode=mode)
    configure_logging(settings.log_level, settings.log_json, settings.log_file)
    register_secrets(settings.secret_values())
    clock: Clock = ManualClock(datetime.fromisoformat(at)) if at else SystemClock()
    with Store(settings.db_path) as store:
        ensure_assets(store, symbols)
        runner = CycleRunner(settings, store, clock)
        reports = [runner.run(symbol, force=force, cycle_id=cycle_id) for symbol in symbols]
    raise_if_unconfigured(reports)
    return reports


class CycleRunner:
    """Run assets' cycles, each with its own analyst (one engine per analyst, built on first use).

    An engine that cannot be built (a ConfigError such as a missing OPENAI_API_KEY) fails only
    the cycles of the assets that need it, each recorded with the message that says the fix.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self._engines: dict[str, Engine | ConfigError] = {}
        self._shadows: Shadows | None = None
        self._shadows_built = False  # built with the first engine (None: no shadows)

    def engine_for(self, analyst: str) -> Engine:
        """Return the engine deciding with `analyst`; raise its ConfigError (remembered)."""
        if analyst not in self._engines:
            try:
                self._engines[analyst] = build_engine(
                    self.settings, self.store, self.clock, analyst
                )
            except ConfigError as exc:
                self._engines[analyst] = exc
        built = self._engines[analyst]
        if isinstance(built, ConfigError):
            raise built
        return built

    def close(self) -> None:
        """Nothing to release: the engines live as long as the runner."""

    def run(self, symbol: str, *, force: bool = False, cycle_id: str | None = None) -> CycleReport:
        """Run the symbol's cycle if due (or `force`d); a ConfigError becomes a failed cycle."""
        asset = self.store.get_asset(symbol)
        now = self.clock.now()
        reason = None if force else skip_reason_in(self.store, asset, now)
        if reason:
            return CycleReport("-", symbol, CycleStatus.SKIPPED, reason=reason)
        analyst = asset.analyst or self.settings.resolved_analyst
        try:
            engine = self.engine_for(analyst)
        except ConfigError as exc:
            return self._record_failure(symbol, analyst, now, exc, cycle_id)
        report = engine.run_cycle(symbol, force=force, cycle_id=cycle_id)
        self._shadow(engine, report)
        return report

    def _shadow(self, engine: Engine, report: CycleReport) -> None:
        """Run the shadows on this cycle's context, if configured and due (never raises)."""
        if not self._shadows_built:
            self._shadows_built = True
            try:
                self._shadows = build_shadows(self.settings, self.store, engine, self.clock)
            except ConfigError as exc:  # the live cycles run on; the log says why not shadows
                log.error("shadows disabled: %s", exc)
        shadows = self._shadows
        if shadows is None or report.cycle_id == "-":
            return
        if shadows.due(self.store.cycle_count(report.symbol)):
            for name, outcome in shadows.after(engine, report).items():
                summary = outcome if isinstance(outcome, str) else outcome.summary()
                log.info("shadow %s: %s", name, summary)

    def _record_failure(
        self, symbol: str, analyst: str, now: datetime, exc: ConfigError, cycle_id: str | None
    ) -> CycleReport:
        log.debug("%s cannot run: %s", symbol, exc)  # the cycle row and the report carry it
        cycle_id = cycle_id or new_cycle_id(symbol, now)
        self.store.record_failed_cycle(
            cycle_id, symbol, now, reason=str(exc), error="ConfigError",
            mode=self.settings.resolved_mode, analyst=analyst,
        )  # fmt: skip
        failure_watch(self.settings, self.store).after_failure(symbol, now, cycle_id)
        details = {"error": "ConfigError"}
        return CycleReport(cycle_id, symbol, CycleStatus.FAILED, reason=str(exc), details=details)


def raise_if_unconfigured(reports: list[CycleReport]) -> None:
    """Raise the ConfigError when no asset that was due could run: the whole setup is wrong.

    Then a command-line tick says so in one line (as before per-asset analysts existed),
    after the failed cycles are recorded.
    """
    ran = [r for r in reports if r.cycle_id != "-"]
    if ran and all(r.details.get("error") == "ConfigError" for r in ran):
        raise ConfigError(ran[0].reason)
