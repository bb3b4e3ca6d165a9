"""The `botlib` command: demo, cycle, tick, run --loop, backfill, backtest, serve, status, logs.

Every expected failure (bad symbol, unreadable DB, missing extra, bad settings) ends with one
`error: ...` line on stderr and exit status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botlib.app.cli_backtest import (
    cmd_arena,
    cmd_audit,
    cmd_backtest,
    cmd_sweep,
    cmd_whatif,
    research_parsers,
)
from botlib.app.config import Settings, load_settings
from botlib.app.logs import configure_logging
from botlib.clock import ManualClock, SystemClock
from botlib.errors import BotlibError, ConfigError
from botlib.models import AssetSettings
from botlib.redact import register_secrets
from botlib.storage.store import Store

if TYPE_CHECKING:  # the commands import what they use: a quiet `botlib tick` stays light
    from botlib.ports import Clock
    from botlib.reporting.ai_logs import LogFilter
    from botlib.reporting.queries import DashboardData

__all__ = ["main"]

log = logging.getLogger(__name__)
_NOTEBOOK_MODULES = {"voila", "papermill", "ipywidgets", "bqplot", "ipykernel"}


def _out(line: str) -> None:
    """Write a command's result to stdout (events go to logging, results to the user)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("give a timezone, e.g. 2026-11-24T10:00Z")
    return when.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botlib", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database path (default: $BOTLIB_DB or data/botlib.db)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="backfill, trade in the simulator, serve the dashboard")
    demo.add_argument("--days", type=float, default=3.0, help="days of history to backfill")
    demo.add_argument("--port", type=int, default=8866)
    demo.add_argument("--ip", default="127.0.0.1")
    cycle = sub.add_parser("cycle", help="run one cycle for one asset now")
    cycle.add_argument("--symbol", required=True)
    cycle.add_argument("--at", type=_parse_time, help="simulated time (sim mode), ISO-8601 UTC")
    tick = sub.add_parser("tick", help="run every due asset once (for cron)")
    tick.add_argument(
        "--at", type=_parse_time, help="a fixed simulated clock for this tick (not live), ISO-8601"
    )
    run = sub.add_parser("run", help="tick in a loop (hosts without cron)")
    run.add_argument("--loop", action="store_true", required=True)
    run.add_argument("--every", type=float, default=60.0, help="seconds between ticks")
    for scheduled in (tick, run):
        scheduled.add_argument(
            "--in-process",
            action="store_true",
            help="run cycles in this process, not as papermill notebooks"
            " (as BOTLIB_TICK_NOTEBOOKS=false)",
        )
    _guard_parser(sub)
    fill = sub.add_parser("backfill", help="replay past cycles in the simulator")
    fill.add_argument("--days", type=float, default=3.0)
    serve = sub.add_parser("serve", help="serve the read-only dashboard with Voila")
    serve.add_argument("--port", type=int, default=8866)
    serve.add_argument("--ip", default="127.0.0.1")
    serve.add_argument("--ai-logs", action="store_true", help="serve the AI-log explorer instead")
    serve.add_argument(
        "--with-ai-logs", action="store_true", help="add the AI-log explorer as a dashboard tab"
    )
    serve.add_argument(
        "--hostname", action="append", default=[], metavar="NAME",
        help="a reverse proxy's public host name to accept (repeatable; docs/remote-access.md)",
    )  # fmt: skip
    research_parsers(sub, _parse_time)
    sub.add_parser("status", help="assets, positions and last cycles")
    export = sub.add_parser("export-logs", help="export AI decision logs as JSON or CSV")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    _log_filters(export)
    usage = sub.add_parser("ai-usage", help="LLM calls, tokens, cost and latency totals")
    usage.add_argument("--by", choices=["model", "symbol", "day", "analyst"], default="model")
    _log_filters(usage)
    return parser


def _guard_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    guard = sub.add_parser("guard", help="watch open positions between cycles (cron or loop)")
    guard.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
    guard.add_argument("--every", type=float, help="seconds between passes (default: setting)")
    guard.add_argument("--at", type=_parse_time, help="one pass at a simulated time (not live)")


def _since(text: str) -> datetime:
    from botlib.reporting.ai_logs import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _log_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", help="one asset, e.g. BTC/USD")
    parser.add_argument("--analyst", help="rules or openai")
    parser.add_argument("--model", help="e.g. gpt-4o")
    parser.add_argument("--action", choices=["BUY", "SELL", "HOLD", "buy", "sell", "hold"])
    parser.add_argument("--since", type=_since, help="2026-11-20 or 2026-11-20T12:00Z (UTC)")
    parser.add_argument("--until", type=_since, help="exclusive end, same forms as --since")
    parser.add_argument("--search", help="text to find in the reasoning")
    parser.add_argument("--errors", action="store_true", help="only calls that failed")
    parser.add_argument("--limit", type=int, help="newest N calls (default: all)")


def _filters(args: argparse.Namespace) -> LogFilter:
    from botlib.reporting.ai_logs import LogFilter

    return LogFilter(
        symbol=args.symbol and args.symbol.upper(),
        analyst=args.analyst,
        model=args.model,
        action=args.action,
        since=args.since,
        until=args.until,
        text=args.search,
        errors_only=args.errors,
        limit=args.limit,
    )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"db_path": args.db} if args.db else {}
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_json, settings.log_file)
    register_secrets(settings.secret_values())
    return settings


def _open(settings: Settings) -> Store:
    store = Store(settings.db_path)
    for symbol in settings.symbols:  # wiring.ensure_assets, without importing the engine
        store.ensure_asset(symbol)
    return store


def cmd_cycle(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.wiring import build_engine

    clock = _clock(settings, args.at)
    with _open(settings) as store:
        report = build_engine(settings, store, clock).run_cycle(args.symbol.upper(), force=True)
    _out(report.summary())
    return 0 if report.status.value != "failed" else 1


def _clock(settings: Settings, at: datetime | None) -> Clock:
    """Return the clock `--at` asks for; live trading refuses one: real orders need real time."""
    if at is None:
        return SystemClock()
    if settings.resolved_mode == "live":
        raise ConfigError(
            "--at simulates the clock and cannot be used in live mode (BOTLIB_MODE=live):"
            " drop --at, or use BOTLIB_MODE=sim or paper"
        )
    return ManualClock(at)


def _scheduled(settings: Settings, args: argparse.Namespace) -> Settings:
    """Apply `--in-process` to the settings a tick or loop runs with."""
    return settings.model_copy(update={"tick_notebooks": False}) if args.in_process else settings


def cmd_tick(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.scheduler import tick

    clock = _clock(settings, args.at)
    _open(settings).close()
    reports = tick(_scheduled(settings, args), clock)
    if reports is None:
        _out("another tick is running; nothing to do")
        return 0
    for report in reports:
        _out(report.summary())
    return 1 if any(r.status.value == "failed" for r in reports) else 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.scheduler import run_loop

    _open(settings).close()
    ticks = run_loop(_scheduled(settings, args), _stop_on_signals(), args.every)
    log.info("loop stopped after %d ticks", ticks)
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_guard(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.guarding import guard_loop, guard_once

    _open(settings).close()
    if not (args.once or args.at):
        passes = guard_loop(settings, _stop_on_signals(), args.every)
        log.info("guard stopped after %d passes", passes)
        return 0
    results = guard_once(settings, _clock(settings, args.at))
    if results is None:
        _out("a tick holds the lock; nothing to do")
        return 0
    for result in results:
        _out(f"{result.symbol} {result.action or 'watched'} {result.note}".rstrip())
    return 1 if any(r.note.startswith("failed") for r in results) else 0


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    with _open(settings) as store:
        from botlib.app.backfill import backfill_to_now

        reports = backfill_to_now(settings, store, args.days, progress=sys.stderr.isatty())
    traded = sum(1 for r in reports if r.orders)
    _out(f"backfilled {len(reports)} cycles ({traded} with orders) into {settings.db_path}")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    with Store(settings.db_path, read_only=True) as store:
        from botlib.reporting.queries import account_overview, dashboard_data

        overview = account_overview(store)
        equity = overview["equity"]
        _out(f"mode={overview['mode'] or '-'} equity={equity:,.2f}" if equity else "no cycles yet")
        for asset in store.list_assets():
            _out(_status_line(asset, dashboard_data(store, asset.symbol, bars=1)))
    return 0


def _status_line(asset: AssetSettings, data: DashboardData) -> str:
    pos = data.position
    held = f"qty={pos['qty']:.6g} entry={pos['avg_entry_price']:,.2f}" if pos else "flat"
    last = data.last_cycle or {}
    return (
        f"{asset.symbol:<9} {'paused' if asset.paused else 'active':<6} "
        f"every {asset.interval_minutes}m {asset.timeframe:<5} {held:<32} "
        f"pnl={data.metrics.total_pnl:+,.2f} trades={data.metrics.n_trades} "
        f"last={last.get('started_at', '-')} {last.get('status', '')} {last.get('action') or ''}"
    )


def cmd_export_logs(settings: Settings, args: argparse.Namespace) -> int:
    with Store(settings.db_path, read_only=True) as store:
        from botlib.reporting.ai_logs import query_logs, to_csv, to_json

        rows = query_logs(store, _filters(args))
    text = to_json(rows) if args.format == "json" else to_csv(rows)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n")
        log.info("exported %d AI log rows to %s", len(rows), args.output)
    else:
        _out(text.rstrip("\n"))
    return 0


def cmd_ai_usage(settings: Settings, args: argparse.Namespace) -> int:
    with Store(settings.db_path, read_only=True) as store:
        from botlib.reporting.ai_logs import totals

        table = totals(store, args.by, _filters(args))
    _out("no AI calls match" if table.empty else table.to_string(float_format="{:,.4f}".format))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.jupyter.serve import AI_LOGS_NOTEBOOK, serve_forever

    notebook = AI_LOGS_NOTEBOOK if args.ai_logs else None
    return serve_forever(
        settings.db_path, args.port, args.ip, notebook=notebook, ai_logs=args.with_ai_logs,
        hostnames=args.hostname,
    )  # fmt: skip


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from botlib.app.demo import run_demo

    return run_demo(settings, args.days, args.port, args.ip)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "backtest": cmd_backtest,
    "sweep": cmd_sweep,
    "arena": cmd_arena,
    "whatif": cmd_whatif,
    "audit": cmd_audit,
    "cycle": cmd_cycle,
    "tick": cmd_tick,
    "run": cmd_run,
    "guard": cmd_guard,
    "backfill": cmd_backfill,
    "serve": cmd_serve,
    "status": cmd_status,
    "export-logs": cmd_export_logs,
    "ai-usage": cmd_ai_usage,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        return COMMANDS[args.command](settings, args)
    except BotlibError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except ModuleNotFoundError as exc:
        extra = "notebooks" if exc.name in _NOTEBOOK_MODULES else "dev"
        sys.stderr.write(
            f"error: {exc.name} is not installed; run: pip install 'botlib[{extra}]'\n"
        )
        return 2
    except KeyboardInterrupt:
        return 130
