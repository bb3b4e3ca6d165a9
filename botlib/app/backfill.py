"""Backfill: replay missed cycles through the real engine on a manual clock (simulator only)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tqdm import tqdm

from botlib.app.config import Settings
from botlib.app.wiring import build_engine
from botlib.clock import ManualClock
from botlib.errors import ConfigError
from botlib.models import TIMEFRAMES, CycleReport
from botlib.storage.store import Store

__all__ = ["backfill", "backfill_to_now"]

log = logging.getLogger(__name__)


def backfill(
    settings: Settings,
    store: Store,
    symbols: list[str],
    start: datetime,
    end: datetime,
    step: timedelta,
    progress: bool = False,
) -> list[CycleReport]:
    """Replay cycles from `start` to `end` through the real engine on a manual clock.

    The OpenAI analyst is swapped for the rules analyst unless its answers come from the replay
    cache: days of history would be hundreds of paid calls nobody asked for.
    """
    if settings.resolved_mode != "sim":
        raise ConfigError(
            f"backfill replays history in the simulator, not on Alpaca (BOTLIB_MODE is"
            f" {settings.resolved_mode}): use BOTLIB_MODE=sim with its own BOTLIB_DB"
        )
    if settings.resolved_analyst == "openai" and settings.llm_cache != "replay":
        log.info("backfill decides with the offline rules analyst (BOTLIB_LLM_CACHE=replay"
                 " replays recorded LLM answers instead)")  # fmt: skip
        settings = settings.model_copy(update={"analyst": "rules"})
    # History replays record their alerts but page nobody about days long gone.
    settings = settings.model_copy(update={"alert_webhook_url": None})
    clock = ManualClock(start)
    engine = build_engine(settings, store, clock)
    reports: list[CycleReport] = []
    steps = int((end - start) / step) + 1
    for _ in tqdm(range(steps), desc="backfill", disable=not progress, unit="step"):
        reports.extend(engine.run_cycle(symbol) for symbol in symbols)
        clock.advance(step)
    return reports


def backfill_to_now(
    settings: Settings, store: Store, days: float, progress: bool = False
) -> list[CycleReport]:
    """Fill the gap from the last recorded cycle (at most `days` ago) to now, a bar per step."""
    if days <= 0:
        raise ConfigError("--days must be positive")
    assets = store.list_assets()
    if not assets:
        return []
    now = datetime.now(UTC)
    step = timedelta(minutes=min(TIMEFRAMES[a.timeframe] for a in assets))
    start = now - timedelta(days=days)
    last = store.last_cycle_started()
    if last is not None:
        start = max(start, last + step)
    if start > now:
        return []
    symbols = [a.symbol for a in assets]
    return backfill(settings, store, symbols, start, now, step, progress=progress)
