"""SQLite storage through sqlite-utils: WAL for concurrent dashboard reads, explicit migrations.

Writers (the engine) use `Store(path)`; readers (dashboard, CLI status) use
`Store(path, read_only=True)`, which opens the file with `mode=ro` and never migrates.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock
from sqlite_utils import Database

from botlib.clock import iso, parse_time
from botlib.errors import StoreError, UnknownSymbolError
from botlib.models import AssetSettings
from botlib.redact import scrub
from botlib.storage.schema import migrations

__all__ = ["Store"]

_ASSET_FIELDS = set(AssetSettings.model_fields) - {"symbol"}


def _connect(path: Path | str, read_only: bool) -> sqlite3.Connection:
    try:
        if str(path) == ":memory:":
            return sqlite3.connect(":memory:", check_same_thread=False)
        path = Path(path)
        if read_only:
            if not path.exists():
                raise StoreError(f"database {path} does not exist (run `botlib demo` or a cycle)")
            uri = f"file:{path.resolve()}?mode=ro"
            return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, check_same_thread=False, timeout=10)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc


_WRITE_FAILURES = (
    (
        "full",
        "the disk (or the database's size limit) is full: free space; the next cycle"
        " reconciles with the broker",
    ),
    (
        "readonly",
        "the database file, its folder or its mount is read-only: make them writable"
        " for this user (readers use Store(path, read_only=True))",
    ),
    ("locked", "another process held the database's write lock for over 10 s"),
    ("disk i/o", "the disk failed a read or write: check the device and free space"),
)


def _write_error(path: str, exc: sqlite3.Error) -> StoreError | None:
    """Translate sqlite's write failures into a StoreError that says what to do (else None)."""
    text = str(exc).lower().replace("read-only", "readonly")
    for marker, fix in _WRITE_FAILURES:
        if marker in text:
            return StoreError(f"cannot write to database {path}: {exc}; {fix}")
    return None


class Store:
    """The bot's records: assets, bars, cycles, AI decision logs, trades, positions, equity."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        conn = _connect(path, read_only)
        self.db = Database(conn)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                self._migrate()
            else:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            error = _write_error(self.path, exc)
            raise error or StoreError(f"database {path} is unreadable: {exc}") from exc

    def _migrate(self) -> None:
        """Switch to WAL and apply migrations, one process at a time.

        Two processes opening a database that does not exist yet (two ticks on a fresh
        install) would both create the migrations table, and sqlite fails the second at once
        with "database is locked" (a schema change does not wait on the busy timeout).
        """
        if self.path == ":memory:":
            migrations.apply(self.db)
            return
        with FileLock(f"{self.path}.open.lock", timeout=60):
            self.db.enable_wal()
            migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so a reader never sees half a cycle; a failed write rolls all back.

        A full disk, a read-only file or a lock held too long raise StoreError naming the
        cause and the fix, instead of sqlite's bare message.
        """
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            error = _write_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read several queries from one moment (a WAL read transaction: never blocks the writer).

        Nested inside an open transaction it adds nothing (that one already gives one view).
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")

    def rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query(sql, params)]

    # assets ------------------------------------------------------------------------------
    def upsert_asset(self, asset: AssetSettings) -> None:
        record = asset.model_dump()
        record["paused"] = int(asset.paused)
        record["last_cycle_at"] = iso(asset.last_cycle_at)
        existing = self.db.table("trading_assets").count_where("symbol = ?", [asset.symbol])
        if not existing:
            record["created_at"] = iso(datetime.now(UTC))
        with self.transaction():
            self.db.table("trading_assets").upsert(record, pk="symbol")

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

    # market data --------------------------------------------------------------------------
    def save_bars(self, symbol: str, timeframe: str, bars: pd.DataFrame) -> int:
        records = [
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "ts": iso(ts.to_pydatetime()),
                "open": float(row.open),
                "high": float(row.high),
                "low": float(row.low),
                "close": float(row.close),
                "volume": float(row.volume),
            }
            for ts, row in zip(bars.index, bars.itertuples(index=False), strict=True)
        ]
        with self.transaction():
            self.db.table("market_data").upsert_all(records, pk=("symbol", "timeframe", "ts"))
        return len(records)

    def load_bars(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        rows = self.rows(
            "SELECT ts, open, high, low, close, volume FROM market_data"
            " WHERE symbol = ? AND timeframe = ? ORDER BY ts DESC LIMIT ?",
            [symbol, timeframe, limit],
        )
        frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
        frame.index = pd.DatetimeIndex(
            pd.to_datetime(frame.pop("ts"), utc=True, format="ISO8601"), name="ts"
        )
        return frame.iloc[::-1]

    # cycles -------------------------------------------------------------------------------
    def start_cycle(self, cycle_id: str, symbol: str, started: datetime, **fields: Any) -> None:
        row = {"id": cycle_id, "symbol": symbol, "started_at": iso(started), "status": "running"}
        with self.transaction():
            self.db.table("cycles").insert(row | fields)

    def finish_cycle(self, cycle_id: str, finished: datetime, **fields: Any) -> None:
        """Close a cycle's row; its texts are scrubbed (a reason can quote an echoed key)."""
        fields = {k: _jsonable(v) for k, v in fields.items()}
        with self.transaction():
            self.db.table("cycles").update(cycle_id, fields | {"finished_at": iso(finished)})

    def fail_running_cycles(self, symbol: str, now: datetime) -> int:
        """Mark cycles left `running` by a killed process as failed, saying how far each got.

        Called before a new cycle starts (and after a cycle notebook's kernel died).
        """
        running = self.rows(
            "SELECT id FROM cycles WHERE symbol = ? AND status = 'running'", [symbol]
        )
        if not running:  # the usual case, before every cycle: no write at all
            return 0
        with self.transaction():
            for row in running:
                why = f"interrupted {self.cycle_stage(row['id'])}: the process ended mid-cycle"
                self.db.execute(
                    "UPDATE cycles SET status = 'failed', finished_at = ?,"
                    " reason = coalesce(reason, ?), error = coalesce(error, 'interrupted')"
                    " WHERE id = ?",
                    [iso(now), why, row["id"]],
                )
        return len(running)

    def cycle_stage(self, cycle_id: str) -> str:
        """Say how far a cycle got from the rows it left (for an interrupted cycle's reason)."""
        booked = self.rows("SELECT client_order_id FROM trades WHERE cycle_id = ?", [cycle_id])
        if booked:
            return "after booking " + ", ".join(r["client_order_id"] for r in booked)
        sent = self.rows("SELECT client_order_id FROM order_intents WHERE cycle_id = ?", [cycle_id])
        if sent:
            orders = ", ".join(r["client_order_id"] for r in sent)
            return f"with order {orders} in flight (reconciliation resolves it)"
        if self.db.table("ai_decision_logs").count_where("cycle_id = ?", [cycle_id]):
            return "after the decision, before any order"
        return "before the decision"

    # decisions, trades, positions -------------------------------------------------------
    def log_decision(self, record: dict[str, Any]) -> int:
        record = {k: _jsonable(v) for k, v in record.items()}
        with self.transaction():
            return int(self.db.table("ai_decision_logs").insert(record).last_pk)  # type: ignore[arg-type]

    def record_trade(self, record: dict[str, Any]) -> int:
        """Insert a trade once per client_order_id; a repeat returns the existing row's id."""
        existing = self.trade_by_client_id(record["client_order_id"])
        if existing:
            return int(existing["id"])
        with self.transaction():
            return int(self.db.table("trades").insert(record).last_pk)  # type: ignore[arg-type]

    def trade_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM trades WHERE client_order_id = ?", [client_order_id])
        return found[0] if found else None

    def add_intent(self, record: dict[str, Any]) -> None:
        """Write an order down (status pending) before it is sent; a rerun's intent replaces it."""
        with self.transaction():
            self.db.table("order_intents").insert(record | {"status": "pending"}, replace=True)

    def resolve_intent(self, client_order_id: str, status: str, now: datetime, detail: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE order_intents SET status = ?, resolved_at = ?, detail = ?"
                " WHERE client_order_id = ?",
                [status, iso(now), scrub(detail), client_order_id],
            )

    def pending_intents(self, symbol: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT * FROM order_intents WHERE symbol = ? AND status = 'pending'"
            " ORDER BY created_at, client_order_id",
            [symbol],
        )

    def get_position(self, symbol: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM positions WHERE symbol = ?", [symbol])
        return found[0] if found else None

    def set_position(self, symbol: str, fields: dict[str, Any] | None) -> None:
        """Replace the bot's view of a position; None means flat."""
        with self.transaction():
            if fields is None:
                self.db.execute("DELETE FROM positions WHERE symbol = ?", [symbol])
            else:
                self.db.table("positions").upsert({"symbol": symbol} | fields, pk="symbol")

    def add_reflection(self, record: dict[str, Any]) -> int:
        record = {k: _jsonable(v) for k, v in record.items()}
        with self.transaction():
            return int(self.db.table("ai_reflections").insert(record).last_pk)  # type: ignore[arg-type]

    def add_equity_snapshot(self, record: dict[str, Any]) -> None:
        with self.transaction():
            self.db.table("equity_snapshots").insert(record)

    def realized_pnl(self, symbol: str) -> float:
        row = self.rows(
            "SELECT coalesce(sum(realized_pnl), 0) AS pnl FROM trades WHERE symbol = ?", [symbol]
        )
        return float(row[0]["pnl"])


def _asset(row: dict[str, Any]) -> AssetSettings:
    row = dict(row)
    row["paused"] = bool(row["paused"])
    row["last_cycle_at"] = parse_time(row.get("last_cycle_at"))
    return AssetSettings.model_validate(row)


def _jsonable(value: Any) -> Any:
    """Encode nested values as JSON and scrub every text (model output can echo anything)."""
    if isinstance(value, dict | list | tuple):
        return scrub(json.dumps(value, default=str))
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str):
        return scrub(value)
    return value
