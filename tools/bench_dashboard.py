"""`python -m tools.bench_dashboard`: one asset panel's refresh on a months-old database.

Builds (in a temp dir) 10 assets x 100,000 one-minute bars with a cycle, a decision and an equity
snapshot every 10 bars and a trade every 50 (the density of a bot deciding every 10 minutes),
then times `dashboard_data`, `chart_data` and `AssetPanel.show` per asset against a reference
measured in the same run: a plain SELECT of the window's bars. Ratios, not targets.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from botlib.models import AssetSettings
from botlib.reporting.queries import dashboard_data
from botlib.storage.store import Store
from botlib.ui.asset_panel import AssetPanel
from botlib.ui.dashboard import Dashboard
from botlib.ui.shaping.charts import chart_data
from botlib.venues.sim import SimMarket
from tools.bench import best_time

__all__ = ["make_big_db", "main"]

END = datetime(2026, 11, 20, 12, tzinfo=UTC)
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "AVAX/USD", "LINK/USD", "DOGE/USD", "LTC/USD",
           "DOT/USD", "UNI/USD", "AAVE/USD")  # fmt: skip
CYCLE_EVERY = 10  # bars between cycles (and decisions, equity snapshots)
TRADE_EVERY = 50  # bars between fills, alternately a buy and a sell
START_EQUITY = 100_000.0


def _iso(times: pd.DatetimeIndex) -> np.ndarray:
    """Format times like `botlib.storage.store.iso`, vectorised (they must compare as text)."""
    text = np.datetime_as_string(times.tz_convert(None).to_numpy(), unit="s")
    return np.char.add(text.astype(str), "+00:00")


def _bars_rows(symbol: str, bars: pd.DataFrame) -> list[tuple[object, ...]]:
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy().T.tolist()
    n = len(bars)
    return list(zip([symbol] * n, ["1Min"] * n, _iso(bars.index).tolist(), *values, strict=True))


def _cycle_rows(symbol: str, bars: pd.DataFrame, seed: int) -> dict[str, list[tuple[object, ...]]]:
    """Cycles, decisions and snapshots at every `CYCLE_EVERY`-th bar close (one of each)."""
    rng = np.random.default_rng(seed)
    at = np.arange(CYCLE_EVERY - 1, len(bars), CYCLE_EVERY)
    times = _iso(bars.index[at] + pd.Timedelta(minutes=1)).tolist()
    ids = [f"{symbol}-{i}" for i in range(len(at))]
    openai = seed % 2 == 0
    pnl = np.cumsum(rng.normal(0.0, 5.0, len(at))).tolist()
    tokens = [900 + int(t) for t in rng.integers(0, 400, len(at))] if openai else [None] * len(at)
    return {
        "cycles": [(i, symbol, "sim", "openai" if openai else "rules", t, t, "ok", "hold: no order")
                   for i, t in zip(ids, times, strict=True)],
        "ai_decision_logs": [
            (i, symbol, t, "openai" if openai else "rules", "HOLD", 0.5, "no edge", k,
             None if k is None else k * 2.5e-6)
            for i, t, k in zip(ids, times, tokens, strict=True)
        ],
        "equity_snapshots": [(t, i, symbol, START_EQUITY + p, START_EQUITY, p)
                             for i, t, p in zip(ids, times, pnl, strict=True)],
    }  # fmt: skip


def _trade_rows(symbol: str, bars: pd.DataFrame) -> list[tuple[object, ...]]:
    """Alternate buys and sells every `TRADE_EVERY` bars, each on a cycle's bar close."""
    at = np.arange(TRADE_EVERY - 1, len(bars), TRADE_EVERY)
    times = _iso(bars.index[at] + pd.Timedelta(minutes=1)).tolist()
    prices = bars["close"].to_numpy()[at].tolist()
    rows: list[tuple[object, ...]] = []
    for n, (t, price, bar) in enumerate(zip(times, prices, at.tolist(), strict=True)):
        side = "buy" if n % 2 == 0 else "sell"
        cycle = f"{symbol}-{bar // CYCLE_EVERY}"
        pnl = None if side == "buy" else (price - prices[n - 1]) * 0.1
        rows.append((cycle, symbol, side, "signal", f"{symbol}-{n}", "filled", 0.1,
                     price * 0.1, price, 0.0, pnl, t, t))  # fmt: skip
    return rows


def _insert(conn: sqlite3.Connection, table: str, rows: list[tuple[object, ...]]) -> None:
    columns = _COLUMNS[table]
    marks = ", ".join("?" * len(columns.split(",")))
    conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


_COLUMNS = {
    "market_data": "symbol, timeframe, ts, open, high, low, close, volume",
    "cycles": "id, symbol, mode, analyst, started_at, finished_at, status, reason",
    "ai_decision_logs": "cycle_id, symbol, created_at, analyst, action, confidence, reasoning,"
    " total_tokens, cost_usd",
    "equity_snapshots": "ts, cycle_id, symbol, equity, cash, asset_pnl",
    "trades": "cycle_id, symbol, side, reason, client_order_id, status, qty, notional, price,"
    " fee, realized_pnl, created_at, filled_at",
}


def _add_asset(store: Store, symbol: str, seed: int, bars: int) -> None:
    """Write one asset's bars, cycles, decisions, snapshots, trades, reflections and position."""
    frame = SimMarket().bars(symbol, "1Min", END, bars)
    store.upsert_asset(AssetSettings(symbol=symbol, timeframe="1Min", interval_minutes=10))
    conn = store.db.conn
    with conn:
        _insert(conn, "market_data", _bars_rows(symbol, frame))
        for table, rows in _cycle_rows(symbol, frame, seed).items():
            _insert(conn, table, rows)
        _insert(conn, "trades", _trade_rows(symbol, frame))
        if seed != 0:  # the first asset has none: the reflection lookup's worst case
            conn.execute(
                "INSERT INTO ai_reflections (symbol, trade_id, created_at, analyst, content,"
                " what_worked, what_failed, suggestions)"
                " SELECT symbol, id, created_at, 'rules', 'closed by signal', 'entry', 'exit',"
                " '[\"trail the stop\"]' FROM trades WHERE symbol = ? AND side = 'sell'",
                [symbol],
            )
    last = float(frame["close"].iloc[-1])
    store.set_position(symbol, {"qty": 0.1, "avg_entry_price": last * 0.99,
                                "stop_loss": last * 0.97, "take_profit": last * 1.03})  # fmt: skip


def make_big_db(path: Path | str, assets: int = 10, bars: int = 100_000) -> list[str]:
    """Build a database of `assets` x `bars` one-minute bars with a realistic record density
    (see the module docstring) and return its symbols."""
    symbols = [*SYMBOLS, *(f"X{i}/USD" for i in range(len(SYMBOLS), assets))][:assets]
    with Store(path) as store:
        for seed, symbol in enumerate(symbols):
            _add_asset(store, symbol, seed, bars)
        store.db.execute("ANALYZE")
    return symbols


def _window_select(store: Store, symbol: str, bars: int) -> list[tuple[object, ...]]:
    return store.db.execute(
        "SELECT ts, open, high, low, close, volume FROM market_data"
        " WHERE symbol = ? AND timeframe = '1Min' ORDER BY ts DESC LIMIT ?",
        [symbol, bars],
    ).fetchall()


def bench_asset(store: Store, symbol: str, bars: int, repeat: int) -> dict[str, float]:
    """Time one asset's refresh steps; `show` alternates two windows so every mark changes."""
    reference = best_time(lambda: _window_select(store, symbol, bars), repeat)
    data = dashboard_data(store, symbol, bars=bars)
    shifted = dashboard_data(store, symbol, bars=bars - 1)
    panel = AssetPanel(symbol)
    datas = itertools.cycle([data, shifted])
    return {
        "select": reference,
        "dashboard_data": best_time(lambda: dashboard_data(store, symbol, bars=bars), repeat),
        "chart_data": best_time(lambda: chart_data(data), repeat),
        "show": best_time(lambda: panel.show(next(datas)), repeat),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.db"
        start = time.perf_counter()
        symbols = make_big_db(path, args.assets, args.bars)
        size = path.stat().st_size / 2**20
        print(f"built {len(symbols)} assets x {args.bars:,} bars in "
              f"{time.perf_counter() - start:.1f} s ({size:,.0f} MiB)")  # fmt: skip
        with Store(path, read_only=True) as store:
            for window in (500, 5000):
                _report(store, symbols, window, args.repeat)
            _report_dashboard(store, path, symbols, args.repeat)


def _report_dashboard(store: Store, path: Path, symbols: list[str], repeat: int) -> None:
    """Time what one refresh tick costs the kernel when the database changed: every panel,
    the header, the performance section and the activity feed, against the plain SELECTs."""
    reference = best_time(lambda: [_window_select(store, s, 200) for s in symbols], repeat)
    dashboard = Dashboard(path)  # the served default: 200 bars per panel
    try:
        full = best_time(lambda: dashboard.refresh(force=True), repeat)
    finally:
        dashboard.close()
    n = len(symbols)
    ratio = full / reference
    print(f"\nwhole dashboard refresh, {n} assets: {full * 1000:.0f} ms"
          f" ({ratio:.0f}x the {n} window SELECTs, {reference * 1000:.1f} ms)")  # fmt: skip


def _report(store: Store, symbols: list[str], window: int, repeat: int) -> None:
    print(f"\nwindow {window} bars (+warm-up), ms; ratio = time / plain SELECT of the window")
    print(f"{'asset':<9} {'select':>7} {'dashboard_data':>18} {'chart_data':>16} {'show':>16}")
    totals = dict.fromkeys(("select", "dashboard_data", "chart_data", "show"), 0.0)
    for symbol in symbols:
        times = bench_asset(store, symbol, window, repeat)
        totals = {k: totals[k] + times[k] for k in totals}
        print(_row(symbol, times))
    print(_row("all", totals))


def _row(name: str, times: dict[str, float]) -> str:
    ref = times["select"]
    cells = [f"{times[k] * 1000:8.2f} ({times[k] / ref:5.1f}x)"
             for k in ("dashboard_data", "chart_data", "show")]  # fmt: skip
    return f"{name:<9} {ref * 1000:7.2f} " + " ".join(f"{c:>17}" for c in cells)


if __name__ == "__main__":
    main()
