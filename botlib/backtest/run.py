"""Backtests: replay history through the very engine that trades, into a database per run.

Two ways to replay, one set of rules (`run_backtest` picks; `path=` overrides):

- engine path (`botlib.backtest.engine_path`): a `ManualClock` steps one bar at a time and
  `Engine.run_cycle` runs with the
  simulated broker (`SimBroker`: the demo's fills, fees and slippage) on simulated bars
  (`SimMarket`) or stored ones (`FrameMarket`: a bot's `market_data` or a CSV). Every cycle,
  decision log, trade and equity snapshot lands in the run's database. Any analyst: the rules,
  or OpenAI with the replay cache (`llm_cache="record"` once, then `"replay"` at $0; the cache
  is shared by runs in `data/backtests/llm_cache.db`). ~700 bars/s: each window block's
  features are computed once and sliced per cycle (`botlib.backtest.block_features`).
- fast path (`botlib.backtest.fast_path`, rules analyst only, the default for it): features once
  per feature window, the rules' signals as arrays, one loop for the position and the risk
  gate. Trades, prices, fees and equity equal the engine path's to the last bit at any length,
  because the engine's feature windows start on fixed block boundaries
  (`botlib.features.window`), so one computation per window is what every cycle of that
  window saw. 70-120k bars/s on a year of 1-minute bars (`make bench`).

Each run writes a NEW SQLite file named by its backtest id (`data/backtests/<id>.db`; an
existing file is refused), so live tables are never touched and runs never mix. The file's
`backtest_runs`, `backtest_trades` and `backtest_equity` tables hold the report
(`botlib.backtest.results`: `load_backtest` reads it back, `list_backtests` lists the runs).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botlib.analysts.factory import LlmConfig
from botlib.analysts.rules import RuleParams, RulesAnalyst
from botlib.backtest.engine_path import replay_engine
from botlib.backtest.fast_path import cycle_times, run_fast_backtest
from botlib.backtest.results import BACKTEST_DIR, BacktestResult, Replay, save_result
from botlib.clock import floor_time, iso
from botlib.core.orders.protection import Protection
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.models import TIMEFRAMES, AssetSettings, timeframe_minutes
from botlib.ports import Analyst, MarketData
from botlib.reporting.analytics import metrics
from botlib.storage.backtests import llm_usage, record_parameters
from botlib.storage.store import Store
from botlib.venues.sim import SimMarket

__all__ = ["run_backtest", "new_backtest_id", "default_window", "LLM_CACHE_DB", "Sizing"]

log = logging.getLogger(__name__)
LLM_CACHE_DB = BACKTEST_DIR / "llm_cache.db"


def new_backtest_id(symbol: str, start: datetime) -> str:
    """Name a run by symbol and start (readable, sortable) plus a random tail (unique)."""
    return f"bt-{symbol.replace('/', '')}-{start:%Y%m%dT%H%M}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Sizing:
    """How big a run's entries may be: the asset's position size in % of equity (the rules
    analyst scales it by its confidence) and the account's cap on one entry, in %.

    The defaults are the live ones (`AssetSettings`, `RiskLimits`); `Sizing(100, 100)` lets a
    strategy go all in (bounded by the cash on hand).
    """

    position_pct: float = AssetSettings.model_fields["position_size_pct"].default
    max_position_pct: float = RiskLimits.model_fields["max_position_pct"].default

    def __post_init__(self) -> None:
        for name in ("position_pct", "max_position_pct"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value <= 100):
                raise ConfigError(f"{name} must be > 0 and <= 100 (% of equity), got {value!r}")

    def asset(self, symbol: str, timeframe: str) -> AssetSettings:
        return AssetSettings(symbol=symbol, timeframe=timeframe,
                             interval_minutes=TIMEFRAMES[timeframe],
                             position_size_pct=float(self.position_pct))  # fmt: skip

    def limits(self) -> RiskLimits:
        return RiskLimits(max_position_pct=float(self.max_position_pct))


@dataclass(frozen=True)
class _Run:
    """One backtest as validated: what it replays, how, and at what costs."""

    backtest_id: str
    symbol: str
    start: datetime
    end: datetime
    timeframe: str
    analyst: str | Analyst
    path: str  # engine | fast
    cash: float
    fee_rate: float
    slippage_bps: float
    market: MarketData
    times: list[datetime]
    stop_band_pct: float | None = 0.5  # the venue's resting stop; None: the bot's own stop
    sizing: Sizing = Sizing()

    @property
    def protection(self) -> Protection | None:
        return None if self.stop_band_pct is None else Protection(self.stop_band_pct)

    @property
    def costs(self) -> tuple[float, float, float]:
        """(cash, fee rate, slippage bps): what the simulated broker charges."""
        return self.cash, self.fee_rate, self.slippage_bps

    @property
    def analyst_name(self) -> str:
        return self.analyst if isinstance(self.analyst, str) else self.analyst.name

    def params(self) -> dict[str, Any]:
        """The parameters stored beside the results (`bot_settings`, key `backtest`)."""
        return {
            "id": self.backtest_id, "symbol": self.symbol, "start": iso(self.start),
            "end": iso(self.end), "timeframe": self.timeframe, "analyst": self.analyst_name,
            "path": self.path, "cash": self.cash, "fee_rate": self.fee_rate,
            "slippage_bps": self.slippage_bps, "market": type(self.market).__name__,
            "stop_band_pct": self.stop_band_pct, "position_pct": self.sizing.position_pct,
            "max_position_pct": self.sizing.max_position_pct,
        } | _rules_entry(self.analyst)  # fmt: skip


def _rules_entry(analyst: str | Analyst) -> dict[str, Any]:
    params = rule_params(analyst)
    return {"rules": asdict(params)} if params is not None else {}


def run_backtest(
    symbol: str, start: datetime, end: datetime, *, timeframe: str = "1Min",
    analyst: str | Analyst = "rules", path: str = "auto", cash: float = 100_000,
    fee_rate: float = 0.0025, slippage_bps: float = 5, db_path: Path | str | None = None,
    directory: Path | str | None = None, progress: bool = False,
    market: MarketData | None = None, llm: LlmConfig | None = None, llm_cache: str = "replay",
    cache_db: Path | str | None = None, stop_band_pct: float | None = 0.5,
    sizing: Sizing | None = None,
) -> BacktestResult:  # fmt: skip
    """Replay `start`..`end` (one cycle per bar, both ends included) and store the report.

    `analyst`: "rules", "openai" (engine path, answering from the replay cache in
    `llm_cache="replay"` mode, or calling the model of `llm` and recording in `"record"`
    mode), or any `Analyst` (a `RulesAnalyst(RuleParams(...))` replays on the fast path too,
    with its parameters). `path`: "auto" (fast for the rules, else engine), "engine" or
    "fast". `market`: simulated bars by default, or a `FrameMarket` of stored bars. The report
    goes to `db_path`, else `<directory or data/backtests>/<backtest_id>.db`.
    `stop_band_pct`: each position's stop rests at the simulated venue as a stop_limit with
    its limit this far below (filled intrabar from the market's minute bars, as in the demo);
    None replays the bot's own stop, checked once a cycle on the bar's low. `sizing`: the
    run's position size and cap per entry (`Sizing`; default: the live defaults).
    """
    _validate(symbol, start, end, timeframe, cash, stop_band_pct)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    chosen = _path(path, analyst, llm_cache)
    market = market or SimMarket()
    times = cycle_times(market, timeframe, start, end)
    run = _Run(new_backtest_id(symbol, start), symbol, start, end, timeframe, analyst, chosen,
               cash, fee_rate, slippage_bps, market, times, stop_band_pct,
               sizing or Sizing())  # fmt: skip
    target = _target(run.backtest_id, db_path, directory)
    cache = (llm_cache, Path(cache_db) if cache_db is not None else LLM_CACHE_DB)
    try:
        result = _replay_and_store(run, target, llm, cache, progress)
    except BaseException:
        _discard(target)  # a run is stored whole or not at all
        raise
    log.info("backtest %s (%s path): %d bars in %.1f s, %d trades", run.backtest_id, run.path,
             result.cycles, result.elapsed_s, len(result.trades))  # fmt: skip
    return result


def _replay_and_store(
    run: _Run, target: Path, llm: LlmConfig | None, cache: tuple[str, Path], progress: bool
) -> BacktestResult:
    with Store(target) as store:
        _prepare(store, run)
        replay = _fast(run, progress) if run.path == "fast" else replay_engine(
            store, run.market, run.symbol, run.times, run.costs, run.analyst, llm, cache, progress,
            run.protection, run.sizing.limits(),
        )  # fmt: skip
        result = _result(run, target, replay, llm_usage(store))
        save_result(store, result)
    return result


def _validate(
    symbol: str, start: datetime, end: datetime, timeframe: str, cash: float, band: float | None
) -> None:
    timeframe_minutes(timeframe, ConfigError)
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("start and end must be timezone-aware UTC datetimes")
    if end <= start:
        raise ConfigError(f"end {end:%Y-%m-%d %H:%M} must be after start {start:%Y-%m-%d %H:%M}")
    if "/" not in symbol:
        raise ConfigError(f"symbol {symbol!r} should look like BTC/USD")
    if cash <= 0:
        raise ConfigError(f"cash must be positive, got {cash}")
    if band is not None and not 0 < band <= 20:
        raise ConfigError(f"stop_band_pct must be > 0 and <= 20 (or None), got {band}")


def _path(path: str, analyst: str | Analyst, llm_cache: str) -> str:
    if isinstance(analyst, str) and analyst not in ("rules", "openai"):
        raise ConfigError(f"analyst {analyst!r}: use rules or openai, or pass an Analyst")
    if analyst == "openai" and llm_cache not in ("record", "replay"):
        raise ConfigError(f"llm_cache {llm_cache!r}: use record (calls OpenAI) or replay ($0)")
    rules = rule_params(analyst) is not None
    if path == "auto":
        return "fast" if rules else "engine"
    if path not in ("engine", "fast"):
        raise ConfigError(f"path {path!r}: use auto, engine or fast")
    if path == "fast" and not rules:
        raise ConfigError("the fast path replays the rules analyst only; use path='engine'")
    return path


def rule_params(analyst: str | Analyst) -> RuleParams | None:
    """The rules analyst's parameters when `analyst` is it (by name or as an instance), else
    None: only then can the fast path replay it."""
    if analyst == "rules":
        return RuleParams()
    if type(analyst) is not RulesAnalyst or analyst.params.limit_entries:
        return None  # the fast path fills market entries only: limit entries take the engine
    return analyst.params


def _target(backtest_id: str, db_path: Path | str | None, directory: Path | str | None) -> Path:
    """Where the run's new database goes; an existing file is refused (runs never mix)."""
    folder = Path(directory) if directory is not None else BACKTEST_DIR
    target = Path(db_path) if db_path is not None else folder / f"{backtest_id}.db"
    if target.exists():
        raise ConfigError(f"{target} already exists: a backtest writes a new database per run")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _prepare(store: Store, run: _Run) -> None:
    """Refuse a used database; record the run's parameters beside its results."""
    if store.cycle_count():
        raise ConfigError(f"{store.path} already holds cycles: a backtest needs a fresh database")
    store.upsert_asset(run.sizing.asset(run.symbol, run.timeframe))
    record_parameters(store, run.params())


def _fast(run: _Run, progress: bool) -> Replay:
    fast = run_fast_backtest(run.symbol, run.start, run.end, timeframe=run.timeframe,
                             cash=run.cash, fee_rate=run.fee_rate, slippage_bps=run.slippage_bps,
                             market=run.market, progress=progress,
                             rules=rule_params(run.analyst),
                             stop_band_pct=run.stop_band_pct,
                             asset=run.sizing.asset(run.symbol, run.timeframe),
                             limits=run.sizing.limits())  # fmt: skip
    return Replay(fast.trades, fast.equity, fast.held, fast.elapsed_s)


def _discard(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def _result(run: _Run, target: Path, replay: Replay, llm: dict[str, float]) -> BacktestResult:
    equity, times, cash = replay.equity, run.times, run.cash
    final = float(equity.iloc[-1]) if len(equity) else cash
    closed = replay.trades["realized_pnl"].dropna().astype(float)
    first = run.market.latest_price(run.symbol, times[0])
    last = run.market.latest_price(run.symbol, times[-1])
    return BacktestResult(
        backtest_id=run.backtest_id, db_path=target, symbol=run.symbol,
        timeframe=run.timeframe, analyst=run.analyst_name, path=run.path, start=run.start,
        end=run.end, cycles=len(times), trades=replay.trades, equity=equity,
        metrics=metrics(equity, closed, final - cash), return_pct=(final / cash - 1) * 100,
        buy_and_hold_pct=(last / first - 1) * 100,
        exposure_pct=replay.held / len(times) * 100 if times else 0.0,
        elapsed_s=replay.elapsed_s, llm=llm,
    )  # fmt: skip


def default_window(
    days: float, timeframe: str, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """Return (start, end) for the last `days` days, both on `timeframe` bar boundaries."""
    minutes = TIMEFRAMES[timeframe]
    stop = floor_time(end or datetime.now(UTC), minutes)
    return floor_time(stop - timedelta(days=days), minutes), stop
