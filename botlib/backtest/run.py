"""Backtests: replay history through the very engine that trades, into a database per run.

Two ways to replay, one set of rules (`run_backtest` picks; `path=` overrides):

- engine path: a `ManualClock` steps one bar at a time and `Engine.run_cycle` runs with the
  simulated broker (`SimBroker`: the demo's fills, fees and slippage) on simulated bars
  (`SimMarket`) or stored ones (`FrameMarket`: a bot's `market_data` or a CSV). Every cycle,
  decision log, trade and equity snapshot lands in the run's database. Any analyst: the rules,
  or OpenAI with the replay cache (`llm_cache="record"` once, then `"replay"` at $0; the cache
  is shared by runs in `data/backtests/llm_cache.db`). ~60 bars/s.
- fast path (`botlib.backtest.fast_path`, rules analyst only, the default for it): features once
  per feature window, the rules' signals as arrays, one loop for the position and the risk
  gate. Trades, prices, fees and equity equal the engine path's to the last bit at any length,
  because the engine's feature windows start on fixed block boundaries
  (`botlib.features.window`), so one computation per window is what every cycle of that
  window saw. ~130k bars/s on a year of 1-minute bars (`make bench`).

Each run writes a NEW SQLite file named by its backtest id (`data/backtests/<id>.db`; an
existing file is refused), so live tables are never touched and runs never mix. The file's
`backtest_runs`, `backtest_trades` and `backtest_equity` tables hold the report
(`botlib.backtest.results`: `load_backtest` reads it back, `list_backtests` lists the runs).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from botlib.analysts.rules import RulesAnalyst
from botlib.app.config import Settings, load_settings
from botlib.backtest.fast_path import cycle_times, run_fast_backtest
from botlib.backtest.results import (
    BACKTEST_DIR,
    TRADE_COLUMNS,
    BacktestResult,
    equity_series,
    list_backtests,
    load_backtest,
    save_result,
)
from botlib.clock import ManualClock, floor_time, iso
from botlib.core.engine import Engine
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.models import TIMEFRAMES
from botlib.ports import Analyst, MarketData
from botlib.reporting.analytics import metrics
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket

__all__ = [
    "BacktestResult", "run_backtest", "load_backtest", "list_backtests", "new_backtest_id",
    "default_window", "BACKTEST_DIR", "LLM_CACHE_DB", "TRADE_COLUMNS",
]  # fmt: skip

log = logging.getLogger(__name__)
LLM_CACHE_DB = BACKTEST_DIR / "llm_cache.db"
_LLM_COLUMNS = ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")


def new_backtest_id(symbol: str, start: datetime) -> str:
    """Name a run by symbol and start (readable, sortable) plus a random tail (unique)."""
    return f"bt-{symbol.replace('/', '')}-{start:%Y%m%dT%H%M}-{uuid.uuid4().hex[:6]}"


def run_backtest(
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    timeframe: str = "1Min",
    analyst: str | Analyst = "rules",
    path: str = "auto",
    cash: float = 100_000,
    fee_rate: float = 0.0025,
    slippage_bps: float = 5,
    db_path: Path | str | None = None,
    directory: Path | str | None = None,
    progress: bool = False,
    market: MarketData | None = None,
    settings: Settings | None = None,
    llm_cache: str = "replay",
    cache_db: Path | str | None = None,
) -> BacktestResult:
    """Replay `start`..`end` (one cycle per bar, both ends included) and store the report.

    `analyst`: "rules", "openai" (engine path, answering from the replay cache in
    `llm_cache="replay"` mode, or calling OpenAI and recording in `"record"` mode), or any
    `Analyst`. `path`: "auto" (fast for the rules, else engine), "engine" or "fast".
    `market`: simulated bars by default, or a `FrameMarket` of stored bars. The report goes
    to `db_path`, else `<directory or data/backtests>/<backtest_id>.db`.
    """
    _validate(symbol, start, end, timeframe, cash)
    chosen = _path(path, analyst, llm_cache)
    backtest_id = new_backtest_id(symbol, start)
    folder = Path(directory) if directory is not None else BACKTEST_DIR
    target = Path(db_path) if db_path is not None else folder / f"{backtest_id}.db"
    if target.exists():
        raise ConfigError(f"{target} already exists: a backtest writes a new database per run")
    market = market or SimMarket()
    times = cycle_times(market, timeframe, start, end)
    name = analyst if isinstance(analyst, str) else analyst.name
    params: dict[str, Any] = {
        "id": backtest_id, "symbol": symbol, "start": iso(start), "end": iso(end),
        "timeframe": timeframe, "analyst": name, "path": chosen, "cash": cash,
        "fee_rate": fee_rate, "slippage_bps": slippage_bps, "market": type(market).__name__,
    }  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    costs = (cash, fee_rate, slippage_bps)
    try:
        with Store(target) as store, ExitStack() as resources:
            _prepare(store, params)
            if chosen == "fast":
                fast = run_fast_backtest(symbol, start, end, timeframe=timeframe, cash=cash,
                                         fee_rate=fee_rate, slippage_bps=slippage_bps,
                                         market=market, progress=progress)  # fmt: skip
                replayed = (fast.trades, fast.equity, fast.held, fast.elapsed_s)
            else:
                clock = ManualClock(times[0])  # the replay's, and the LLM budget's, day
                decider = _analyst(analyst, store, clock, settings, (llm_cache, cache_db),
                                   resources)  # fmt: skip
                replaying = analyst == "openai" and llm_cache == "replay"
                replayed = _replay(store, market, decider, clock, symbol, times, costs,
                                   (progress, replaying))  # fmt: skip
            result = _result(params, target, *replayed, market, times, _llm_usage(store))
            save_result(store, result)
    except BaseException:
        _discard(target)  # a run is stored whole or not at all
        raise
    log.info("backtest %s (%s path): %d bars in %.1f s (%.0f bars/s), %d trades", backtest_id,
             chosen, result.cycles, result.elapsed_s, result.bars_per_s,
             len(result.trades))  # fmt: skip
    return result


def _validate(symbol: str, start: datetime, end: datetime, timeframe: str, cash: float) -> None:
    if timeframe not in TIMEFRAMES:
        raise ConfigError(f"timeframe {timeframe!r} unknown; use one of {', '.join(TIMEFRAMES)}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("start and end must be timezone-aware UTC datetimes")
    if end <= start:
        raise ConfigError(f"end {end:%Y-%m-%d %H:%M} must be after start {start:%Y-%m-%d %H:%M}")
    if "/" not in symbol:
        raise ConfigError(f"symbol {symbol!r} should look like BTC/USD")
    if cash <= 0:
        raise ConfigError(f"cash must be positive, got {cash}")


def _path(path: str, analyst: str | Analyst, llm_cache: str) -> str:
    if isinstance(analyst, str) and analyst not in ("rules", "openai"):
        raise ConfigError(f"analyst {analyst!r}: use rules or openai, or pass an Analyst")
    if analyst == "openai" and llm_cache not in ("record", "replay"):
        raise ConfigError(f"llm_cache {llm_cache!r}: use record (calls OpenAI) or replay ($0)")
    rules = analyst == "rules"
    if path == "auto":
        return "fast" if rules else "engine"
    if path not in ("engine", "fast"):
        raise ConfigError(f"path {path!r}: use auto, engine or fast")
    if path == "fast" and not rules:
        raise ConfigError("the fast path replays the rules analyst only; use path='engine'")
    return path


def _analyst(
    analyst: str | Analyst,
    store: Store,
    clock: ManualClock,
    settings: Settings | None,
    cache_args: tuple[str, Path | str | None],
    resources: ExitStack,
) -> Analyst:
    if not isinstance(analyst, str):
        return analyst
    if analyst == "rules":
        return RulesAnalyst()
    from botlib.app.wiring import build_analyst

    llm_cache, cache_db = cache_args
    base = settings or load_settings()
    configured = base.model_copy(update={"analyst": "openai", "llm_cache": llm_cache})
    cache = Path(cache_db) if cache_db is not None else LLM_CACHE_DB
    cache.parent.mkdir(parents=True, exist_ok=True)
    # The cache outlives the run (record once, replay many): it has its own database.
    return build_analyst(
        configured, store, clock, cache_store=resources.enter_context(Store(cache))
    )


def _prepare(store: Store, params: dict[str, Any]) -> None:
    """Refuse a used database; record the run's parameters beside its results."""
    if store.rows("SELECT count(*) AS n FROM cycles")[0]["n"]:
        raise ConfigError(f"{store.path} already holds cycles: a backtest needs a fresh database")
    minutes = TIMEFRAMES[str(params["timeframe"])]
    store.ensure_asset(str(params["symbol"]), timeframe=params["timeframe"],
                       interval_minutes=minutes)  # fmt: skip
    record = {"key": "backtest", "value": json.dumps(params), "updated_at": params["start"]}
    with store.transaction():
        store.db.table("bot_settings").upsert(record, pk="key")


def _replay(
    store: Store, market: MarketData, analyst: Analyst, clock: ManualClock, symbol: str,
    times: list[datetime], costs: tuple[float, float, float], flags: tuple[bool, bool],
) -> tuple[pd.DataFrame, pd.Series, int, float]:  # fmt: skip
    """Run one engine cycle per time; return trades, equity, cycles holding, wall time.

    `flags`: (show a progress bar, stop at the first replay-cache miss).
    """
    cash, fee_rate, slippage_bps = costs
    progress, replaying = flags
    broker = SimBroker(store, market, clock, cash=cash, fee_rate=fee_rate,
                       slippage_bps=slippage_bps)  # fmt: skip
    engine = Engine(market, broker, analyst, store, risk=RiskLimits(), clock=clock)
    held = 0
    began = time.perf_counter()
    for when in tqdm(times, desc=f"backtest {symbol}", disable=not progress, unit="bar"):
        clock.set(when)
        engine.run_cycle(symbol)
        held += broker.position(symbol) is not None
        if replaying:
            _refuse_cache_miss(store, when)
    elapsed = time.perf_counter() - began
    trades = pd.DataFrame(
        store.rows(f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades ORDER BY id"),
        columns=TRADE_COLUMNS,
    )
    snaps = store.rows("SELECT ts, equity FROM equity_snapshots ORDER BY ts, id")
    equity = equity_series([r["ts"] for r in snaps], [r["equity"] for r in snaps])
    return trades, equity, held, elapsed


def _refuse_cache_miss(store: Store, when: datetime) -> None:
    """A replay with a hole would be a backtest of HOLDs the model never said: stop instead."""
    last = store.rows("SELECT error FROM ai_decision_logs ORDER BY id DESC LIMIT 1")
    if last and (last[0]["error"] or "").startswith("CacheMissError"):
        raise ConfigError(
            f"the replay cache has no answer for the cycle at {when:%Y-%m-%d %H:%M}Z (this"
            " model, these bars): record it first with llm_cache='record' (--llm-cache record)"
        )


def _discard(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def _llm_usage(store: Store) -> dict[str, float]:
    row = store.rows(
        "SELECT count(*) AS calls, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
        " coalesce(sum(cost_usd), 0) AS cost_usd,"
        " coalesce(sum(cache = 'hit'), 0) AS cache_hits"
        " FROM ai_decision_logs WHERE analyst != 'rules'"
    )[0]
    return {k: float(row[k]) for k in _LLM_COLUMNS}


def _result(
    params: dict[str, Any], target: Path, trades: pd.DataFrame, equity: pd.Series, held: int,
    elapsed: float, market: MarketData, times: list[datetime], llm: dict[str, float],
) -> BacktestResult:  # fmt: skip
    symbol, cash = str(params["symbol"]), float(params["cash"])
    final = float(equity.iloc[-1]) if len(equity) else cash
    closed = trades["realized_pnl"].dropna().astype(float)
    first, last = market.latest_price(symbol, times[0]), market.latest_price(symbol, times[-1])
    return BacktestResult(
        backtest_id=str(params["id"]), db_path=target, symbol=symbol,
        timeframe=str(params["timeframe"]), analyst=str(params["analyst"]),
        path=str(params["path"]), start=datetime.fromisoformat(str(params["start"])),
        end=datetime.fromisoformat(str(params["end"])), cycles=len(times), trades=trades,
        equity=equity, metrics=metrics(equity, closed, final - cash),
        return_pct=(final / cash - 1) * 100, buy_and_hold_pct=(last / first - 1) * 100,
        exposure_pct=held / len(times) * 100 if times else 0.0, elapsed_s=elapsed, llm=llm,
    )  # fmt: skip


def default_window(
    days: float, timeframe: str, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """Return (start, end) for the last `days` days, both on `timeframe` bar boundaries."""
    minutes = TIMEFRAMES[timeframe]
    stop = floor_time(end or datetime.now(UTC), minutes)
    return floor_time(stop - timedelta(days=days), minutes), stop
