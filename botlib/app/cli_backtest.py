"""`botlib backtest`, `sweep` and `arena`: arguments and commands (apart, so `cli` stays short)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botlib.app.config import Settings
from botlib.errors import ConfigError
from botlib.models import TIMEFRAMES

if TYPE_CHECKING:
    from botlib.backtest import Sizing
    from botlib.ports import MarketData

__all__ = [
    "backtest_parser", "cmd_backtest", "cmd_sweep", "sweep_parser", "arena_parser", "cmd_arena",
    "whatif_parser", "cmd_whatif", "research_parsers", "audit_parser", "cmd_audit",
]  # fmt: skip


def research_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parse_time: Callable[[str], datetime]
) -> None:
    """Register `backtest`, `sweep`, `arena` and `whatif`."""
    backtest_parser(sub, parse_time)
    sweep_parser(sub, parse_time)
    arena_parser(sub, parse_time)
    whatif_parser(sub)
    audit_parser(sub, parse_time)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def backtest_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parse_time: Callable[[str], datetime]
) -> None:
    bt = sub.add_parser("backtest", help="replay history through the engine; report and store it")
    bt.add_argument("--symbol", help="e.g. BTC/USD")
    bt.add_argument("--days", type=float, default=30.0, help="length of the replayed window")
    bt.add_argument("--end", type=parse_time, help="window end, ISO-8601 UTC (default: now)")
    bt.add_argument("--timeframe", choices=list(TIMEFRAMES), default="1Min")
    bt.add_argument("--analyst", choices=["rules", "openai"], default="rules")
    bt.add_argument("--path", choices=["auto", "engine", "fast"], default="auto")
    bt.add_argument("--llm-cache", choices=["replay", "record"], default="replay",
                    help="openai: replay recorded answers ($0), or call and record")  # fmt: skip
    bt.add_argument("--max-llm-calls", type=int, default=500, help="cap for --llm-cache record")
    bt.add_argument("--cash", type=float, default=100_000.0)
    bt.add_argument("--fee", type=float, default=0.0025, help="taker fee rate")
    bt.add_argument("--slippage-bps", type=float, default=5.0)
    bt.add_argument("--stop-band", type=float, default=0.5, metavar="PCT",
                    help="the venue stop's limit, PCT below its stop (default 0.5)")  # fmt: skip
    bt.add_argument("--no-venue-stop", action="store_true",
                    help="no stop rests at the venue: the bot's stop, once a cycle")  # fmt: skip
    bt.add_argument("--position-pct", type=float, metavar="PCT",
                    help="the asset's position size, %% of equity (default 10)")  # fmt: skip
    bt.add_argument("--max-position-pct", type=float, metavar="PCT",
                    help="the cap on one entry, %% of equity (default 25)")  # fmt: skip
    source = bt.add_mutually_exclusive_group()
    source.add_argument("--bars-db", help="replay the bars a bot stored in this database")
    source.add_argument("--bars-csv", help="replay bars from a CSV (time column first)")
    bt.add_argument("--out", help="folder for the run's database (default: data/backtests)")
    bt.add_argument("--list", action="store_true", help="list finished runs and exit")


def cmd_backtest(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.wiring import llm_config
    from botlib.backtest import BACKTEST_DIR, default_window, list_backtests, run_backtest
    from botlib.backtest.fast_path import cycle_times

    folder = Path(args.out) if args.out else BACKTEST_DIR
    if args.list:
        runs = list_backtests(folder)
        _out("no finished backtests in " + str(folder) if runs.empty else runs.to_string())
        return 0
    if not args.symbol:
        raise ConfigError("backtest needs --symbol (or --list)")
    symbol = args.symbol.upper()
    if settings.log_level.upper() != "DEBUG":  # one line per replayed cycle is noise here
        logging.getLogger("botlib.core.engine").setLevel(logging.WARNING)
    market = _backtest_market(args, symbol)
    start, end = default_window(args.days, args.timeframe, args.end)
    if args.analyst == "openai" and args.llm_cache == "record":
        from botlib.venues.sim import SimMarket

        calls = len(cycle_times(market or SimMarket(), args.timeframe, start, end))
        if calls > args.max_llm_calls:
            raise ConfigError(
                f"recording would call OpenAI up to {calls} times (--max-llm-calls is"
                f" {args.max_llm_calls}): shorten --days, use a longer --timeframe, or raise it"
            )
    result = run_backtest(
        symbol, start, end, timeframe=args.timeframe, analyst=args.analyst, path=args.path,
        cash=args.cash, fee_rate=args.fee, slippage_bps=args.slippage_bps, directory=folder,
        progress=sys.stderr.isatty(), market=market, llm=llm_config(settings),
        llm_cache=args.llm_cache, stop_band_pct=None if args.no_venue_stop else args.stop_band,
        sizing=_sizing(args),
    )  # fmt: skip
    _out(f"backtest {result.backtest_id}: {symbol} {args.timeframe} {start:%Y-%m-%d %H:%M}Z .."
         f" {end:%Y-%m-%d %H:%M}Z, {result.analyst} analyst, {result.path} path")  # fmt: skip
    table = result.table(throughput=True)
    _out(table.to_string(index=False, float_format="{:,.4g}".format))
    _out(f"stored in {result.db_path}")
    return 0


def _sizing(args: argparse.Namespace) -> Sizing:
    from botlib.backtest import Sizing

    given = {"position_pct": args.position_pct, "max_position_pct": args.max_position_pct}
    return Sizing(**{name: value for name, value in given.items() if value is not None})


def _backtest_market(args: argparse.Namespace, symbol: str) -> MarketData | None:
    from botlib.venues.stored_bars import FrameMarket

    if args.bars_db:
        return FrameMarket.from_store(args.bars_db, symbol, args.timeframe)
    if args.bars_csv:
        return FrameMarket.from_csv(args.bars_csv, symbol, args.timeframe)
    return None


def sweep_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parse_time: Callable[[str], datetime]
) -> None:
    sw = sub.add_parser("sweep", help="many rules backtests on Dask (a local cluster by default)")
    sw.add_argument("--symbol", action="append", required=True, help="repeat for more assets")
    sw.add_argument("--days", type=float, default=30.0, help="length of the replayed window")
    sw.add_argument("--end", type=parse_time, help="window end, ISO-8601 UTC (default: now)")
    sw.add_argument("--timeframe", choices=list(TIMEFRAMES), default="1Min")
    sw.add_argument("--position-pct", type=float, action="append", metavar="PCT",
                    help="a position size to sweep (repeat; default 10)")  # fmt: skip
    sw.add_argument("--scheduler", help="a Dask scheduler, e.g. tcp://host:8786 (default: local)")
    sw.add_argument("--workers", type=int, help="local cluster size (default: one per core)")
    sw.add_argument("--out", help="folder for the runs' databases (default: data/backtests)")


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.backtest import BACKTEST_DIR, Sizing, default_window
    from botlib.backtest.sweep import grid, run_sweep

    period = default_window(args.days, args.timeframe, args.end)
    sizes = [Sizing(position_pct=p) for p in args.position_pct or []] or [Sizing()]
    runs = grid([s.upper() for s in args.symbol], [period], timeframes=[args.timeframe],
                sizings=sizes)  # fmt: skip
    folder = Path(args.out) if args.out else BACKTEST_DIR
    result = run_sweep(runs, folder, scheduler=args.scheduler, workers=args.workers,
                       progress=sys.stderr.isatty())  # fmt: skip
    shown = ["label", "return_pct", "buy_and_hold_pct", "trades", "max_drawdown_pct", "error"]
    _out(result.table[shown].to_string(index=False, float_format="{:,.4g}".format))
    _out(f"{len(result.finished)} runs stored in {folder}; {len(result.failed)} failed")
    return 1 if len(result.failed) else 0


def arena_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parse_time: Callable[[str], datetime]
) -> None:
    ar = sub.add_parser("arena", help="several analysts over the same history, ranked")
    ar.add_argument("--symbol", required=True, help="e.g. BTC/USD")
    ar.add_argument("--analysts", help="comma-separated names from the arena file (default: all)")
    ar.add_argument("--config", help="the arena file (TOML; default: rules, buy_and_hold, flat)")
    ar.add_argument("--days", type=float, default=7.0, help="length of the replayed window")
    ar.add_argument("--start", type=parse_time, help="window start, ISO-8601 UTC (over --days)")
    ar.add_argument("--end", type=parse_time, help="window end, ISO-8601 UTC (default: now)")
    ar.add_argument("--timeframe", choices=list(TIMEFRAMES), default="15Min")
    ar.add_argument("--cache", choices=["replay", "record"], default="replay",
                    help="models: replay recorded answers ($0), or call and record")  # fmt: skip
    ar.add_argument("--yes", action="store_true", help="confirm the estimated spend (scripts)")
    ar.add_argument("--cash", type=float, default=100_000.0)
    ar.add_argument("--out", help="folder for the runs' databases (default: a new one)")


def cmd_arena(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.wiring import arena_keys
    from botlib.arena.config import arena_from
    from botlib.arena.research import estimate, run_arena
    from botlib.backtest import default_window
    from botlib.backtest.fast_path import cycle_times
    from botlib.clock import floor_time
    from botlib.venues.sim import SimMarket

    arena = arena_from(args.config)
    names = [n.strip() for n in args.analysts.split(",")] if args.analysts else None
    analysts = arena.select(names) if names else dict(arena.analysts)
    start, end = default_window(args.days, args.timeframe, args.end)
    if args.start is not None:
        start = floor_time(args.start, TIMEFRAMES[args.timeframe])
    market = SimMarket()
    cost = estimate(analysts, len(cycle_times(market, args.timeframe, start, end)), args.cache)
    _out(f"estimate: {cost.describe()}")
    if cost.total_usd > 0 and not args.yes and not _confirmed(cost.total_usd):
        _out("not confirmed: nothing was called (pass --yes in scripts)")
        return 1
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("botlib.core.engine").setLevel(logging.WARNING)
    result = run_arena(analysts, args.symbol.upper(), start, end, timeframe=args.timeframe,
                       cash=args.cash, market=market, directory=args.out, cache=args.cache,
                       budget_usd=settings.max_llm_usd_per_day,
                       environ=arena_keys(analysts))  # fmt: skip
    _out(f"arena {args.symbol.upper()} {args.timeframe} {start:%Y-%m-%d %H:%M}Z .."
         f" {end:%Y-%m-%d %H:%M}Z, {len(result.finished)} of {len(analysts)} finished")  # fmt: skip
    _out(result.leaderboard().to_string(index=False, float_format="{:,.4g}".format))
    for line in result.warnings():
        _out(f"warning: {line}")
    if len(result.finished) >= 2:
        report = result.statistics()
        _out(f"statistics: {report.method}")
        _out(report.table().to_string(float_format="{:,.4g}".format))
        _out(report.pair_table().to_string(float_format="{:,.4g}".format))
    return 0 if len(result.finished) == len(analysts) else 1


def _confirmed(usd: float) -> bool:
    """Ask on a terminal; anything else (a pipe, cron) is a no."""
    if not sys.stdin.isatty():
        return False
    return input(f"spend up to ~${usd:,.2f} on model calls? [y/N] ").strip().lower() == "y"


def whatif_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wi = sub.add_parser("whatif", help="rerun one logged decision with another analyst")
    wi.add_argument("--decision", type=int, required=True, help="an ai_decision_logs id")
    wi.add_argument("--analyst", required=True, help="a name from the arena file")
    wi.add_argument("--config", help="the arena file (TOML; default: rules, buy_and_hold, flat)")
    wi.add_argument("--yes", action="store_true", help="confirm a paid model's call (scripts)")


def cmd_whatif(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from botlib.app.wiring import arena_keys
    from botlib.arena.analysts import arena_analyst
    from botlib.arena.config import arena_from
    from botlib.arena.replay import call_estimate, rebuild, what_if
    from botlib.clock import SystemClock
    from botlib.storage.store import Store

    arena = arena_from(args.config)
    spec = arena.select([args.analyst])[args.analyst]
    rebuilt = rebuild(settings.db_path, args.decision)
    usd = call_estimate(spec, rebuilt)
    rebuilt_how = "byte for byte" if rebuilt.same_prompt else "with differences"
    _out(f"decision {args.decision}: prompt rebuilt {rebuilt_how}; a rerun with {args.analyst}"
         f" costs ~${usd or 0:,.4f}")  # fmt: skip
    if usd and not args.yes and not _confirmed(usd):
        _out("not confirmed: nothing was called (pass --yes in scripts)")
        return 1
    with Store(":memory:") as scratch:  # the rerun's own log: the bot's database is not touched
        analyst = arena_analyst(args.analyst, spec, scratch, SystemClock(),
                                environ=arena_keys({args.analyst: spec}),
                                budget_usd=settings.max_llm_usd_per_day)  # fmt: skip
        _out(json.dumps(what_if(settings.db_path, args.decision, analyst), indent=2))
    return 0


def audit_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parse_time: Callable[[str], datetime]
) -> None:
    au = sub.add_parser("audit", help="replay a period the bot traded; list every difference")
    au.add_argument("--symbol", required=True, help="e.g. BTC/USD")
    au.add_argument("--start", type=parse_time, help="ISO-8601 UTC (default: the first cycle)")
    au.add_argument("--end", type=parse_time, help="ISO-8601 UTC (default: the last cycle)")
    au.add_argument("--out", help="folder for the replay's database (default: data/backtests)")


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.wiring import protection
    from botlib.arena.audit import BotTerms, audit
    from botlib.backtest import BACKTEST_DIR, Sizing
    from botlib.ops.limits import load_limits
    from botlib.storage.store import Store
    from botlib.venues.sim import SimMarket
    from botlib.venues.stored_bars import FrameMarket

    symbol = args.symbol.upper()
    with Store(settings.db_path, read_only=True) as store:
        asset = store.get_asset(symbol)
        limits = load_limits(store, settings.limits)
    sim = settings.resolved_mode == "sim"
    market = SimMarket() if sim else FrameMarket.from_store(settings.db_path, symbol,
                                                               asset.timeframe)  # fmt: skip
    band = protection(settings)
    terms = BotTerms(
        cash=settings.sim_cash, fee_rate=settings.sim_fee_rate,
        slippage_bps=settings.sim_slippage_bps, stop_band_pct=band.band_pct if band else None,
        sizing=Sizing(asset.position_size_pct, limits.max_position_pct),
        analyst=asset.analyst or settings.resolved_analyst,
    )  # fmt: skip
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("botlib.core.engine").setLevel(logging.WARNING)
    report = audit(settings.db_path, symbol, args.start, args.end, market=market, terms=terms,
                   directory=Path(args.out) if args.out else BACKTEST_DIR)  # fmt: skip
    _out(f"audit {symbol}: {report.cycles} cycles {report.start:%Y-%m-%d %H:%M}Z .."
         f" {report.end:%Y-%m-%d %H:%M}Z, {len(report.differences)} difference(s)")  # fmt: skip
    if report.differences:
        _out(report.table().to_string(index=False))
    return 0 if not report.differences else 1
