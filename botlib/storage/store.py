"""The `Store`: one object for every table family, so callers write `store.get_position(...)`.

SQLite through sqlite-utils (`botlib.storage.base`: WAL, migrations, transactions). Assets and
bars live here; the cycle's rows, the books, the operator's rows and the simulator's books in
their own modules. Raw SQL lives in this package and in the read side (`botlib.reporting`)
only: `tests/test_layout.py` checks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from botlib.clock import iso, parse_time
from botlib.errors import UnknownSymbolError
from botlib.models import AssetSettings
from botlib.storage.cycles import CycleTables
from botlib.storage.ledger import LedgerTables
from botlib.storage.operations import OperationsTables
from botlib.storage.sim_books import SimBooks

__all__ = ["Store", "BAR_COLUMNS", "BAR_UPSERT"]

_BAR_KEY = ("symbol", "timeframe", "ts")
_BAR_COLUMNS = ("open", "high", "low", "close", "volume")
BAR_COLUMNS = _BAR_KEY + _BAR_COLUMNS  # a `market_data` row, in `insert_rows` order
BAR_UPSERT = "upsert:" + ",".join(_BAR_KEY)
_ASSET_FIELDS = set(AssetSettings.model_fields) - {"symbol"}


class Store(CycleTables, LedgerTables, OperationsTables, SimBooks):
    """The bot's records: assets, bars, cycles, AI decision logs, trades, positions, equity."""

    def upsert_asset(self, asset: AssetSettings) -> None:
        record = asset.model_dump()
        record["paused"] = int(asset.paused)
        record["last_cycle_at"] = iso(asset.last_cycle_at)
        existing = self.rows("SELECT 1 FROM trading_assets WHERE symbol = ?", [asset.symbol])
        if not existing:
            record["created_at"] = iso(datetime.now(UTC))
        with self.transaction():
            self.insert_row("trading_assets", record, on_conflict="upsert:symbol")

    def ensure_asset(self, symbol: str, **defaults: Any) -> AssetSettings:
        """Return the asset's settings, creating the row with `defaults` if it is new."""
        try:
            return self.get_asset(symbol)
        except UnknownSymbolError:
            asset = AssetSettings(symbol=symbol, **defaults)
            self.upsert_asset(asset)
            return asset

    def get_asset(self, symbol: str) -> AssetSettings:
        found = self.rows("SELECT * FROM trading_assets WHERE symbol = ?", [symbol])
        if not found:
            raise UnknownSymbolError(symbol, [a.symbol for a in self.list_assets()])
        return _asset(found[0])

    def list_assets(self) -> list[AssetSettings]:
        return [_asset(r) for r in self.rows("SELECT * FROM trading_assets ORDER BY symbol")]

    def update_asset(self, symbol: str, **fields: Any) -> AssetSettings:
        """Change settings after validating the whole row (bad values raise, nothing is written)."""
        unknown = set(fields) - _ASSET_FIELDS
        if unknown:
            raise ValueError(f"unknown asset setting(s): {', '.join(sorted(unknown))}")
        updated = AssetSettings.model_validate(self.get_asset(symbol).model_dump() | fields)
        self.upsert_asset(updated)
        return updated

    def mark_cycle(self, symbol: str, at: datetime) -> None:
        """Record when the asset's last cycle ran (the due check's clock): one UPDATE, where
        `update_asset` revalidates the whole row."""
        if at.tzinfo is None:
            raise ValueError("last_cycle_at must be timezone-aware (UTC)")
        with self.transaction():
            self.update_row("trading_assets", ("symbol", symbol), {"last_cycle_at": iso(at)})

    def ensure_assets(self, symbols: Iterable[str], **defaults: Any) -> None:
        """Create missing `trading_assets` rows (existing rows keep their settings)."""
        for symbol in symbols:
            self.ensure_asset(symbol, **defaults)

    def save_bars(self, symbol: str, timeframe: str, bars: pd.DataFrame) -> int:
        """Store bars (a stored bar with the same time is replaced)."""
        ohlcv = tuple(bars.columns) == _BAR_COLUMNS  # selecting columns costs ~0.1 ms
        values = (bars if ohlcv else bars[list(_BAR_COLUMNS)]).to_numpy(dtype=float).tolist()
        stamps = [iso(ts) for ts in bars.index.to_pydatetime()]
        rows = [(symbol, timeframe, ts, *v) for ts, v in zip(stamps, values, strict=True)]
        with self.transaction():
            self.insert_rows("market_data", BAR_COLUMNS, rows, BAR_UPSERT)
        return len(rows)

    def load_bars(self, symbol: str, timeframe: str, limit: int | None = 500) -> pd.DataFrame:
        """Return the newest `limit` stored bars (None: all of them), oldest first."""
        rows = self.rows(
            "SELECT ts, open, high, low, close, volume FROM market_data"
            " WHERE symbol = ? AND timeframe = ? ORDER BY ts DESC LIMIT ?",
            [symbol, timeframe, -1 if limit is None else limit],
        )
        frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
        frame.index = pd.DatetimeIndex(
            pd.to_datetime(frame.pop("ts"), utc=True, format="ISO8601"), name="ts"
        )
        return frame.iloc[::-1]

    def newest_bar(self, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """The open time of the newest stored bar (None: none stored)."""
        newest = self.rows(
            "SELECT max(ts) AS ts FROM market_data WHERE symbol = ? AND timeframe = ?",
            [symbol, timeframe],
        )[0]["ts"]
        return None if newest is None else pd.Timestamp(newest)

    def save_new_bars(self, symbol: str, timeframe: str, bars: pd.DataFrame) -> int:
        """Store the bars newer than the newest stored one (a cycle's window overlaps the last)."""
        newest = self.newest_bar(symbol, timeframe)
        fresh = bars if newest is None else bars[bars.index > newest]
        return self.save_bars(symbol, timeframe, fresh) if len(fresh) else 0

    def record_failed_cycle(
        self, cycle_id: str, symbol: str, now: datetime, *, reason: str, error: str,
        **fields: Any,
    ) -> None:  # fmt: skip
        """Record a cycle that failed before the engine could run it (a setup error, a dead
        notebook kernel): a `failed` row, and the asset retried next interval, not every tick.
        """
        self.fail_running_cycles(symbol, now)
        self.start_cycle(cycle_id, symbol, now, **fields)
        self.finish_cycle(cycle_id, now, status="failed", reason=reason, error=error)
        self.mark_cycle(symbol, now)


def _asset(row: dict[str, Any]) -> AssetSettings:
    row = dict(row)
    row["paused"] = bool(row["paused"])
    row["last_cycle_at"] = parse_time(row.get("last_cycle_at"))
    return AssetSettings.model_validate(row)
