"""One SQLite connection through sqlite-utils: WAL for concurrent readers, explicit migrations,
transactions that name the fix when a write fails, read snapshots.

Writers (the engine) open `Store(path)`; readers (dashboard, CLI status) `Store(path,
read_only=True)`, which opens the file with `mode=ro` and never migrates.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

from filelock import FileLock
from sqlite_utils import Database

from botlib.clock import iso
from botlib.errors import StoreError
from botlib.redact import scrub
from botlib.storage.schema import migrations

__all__ = ["StoreBase", "jsonable"]


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


class StoreBase:
    """One SQLite connection: opening (migrations, WAL), transactions, snapshots, raw reads.

    The table families (`botlib.storage.cycles`, `ledger`, `operations`, `sim_books`) build on
    it and `botlib.storage.store.Store` combines them.
    """

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

    def __enter__(self) -> Self:
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
        """Run one SELECT. Straight on the connection: sqlite-utils' `query` wraps every read
        in a savepoint, which cost a cycle ~40 statements."""
        cursor = self.db.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def insert_row(self, table: str, record: dict[str, Any], *, on_conflict: str = "") -> int:
        """INSERT one row; return its rowid. `on_conflict`: "" (fail), "replace" or "upsert:<pk
        columns>" (update the other columns). The hot paths' writes: sqlite-utils' `table()`
        looks the table and its columns up on every call (3-4 statements per write)."""
        columns = tuple(record)
        sql = _insert_sql(table, columns, on_conflict)
        return int(self.db.execute(sql, [_sql_value(record[c]) for c in columns]).lastrowid or 0)

    def insert_rows(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        on_conflict: str = "",
    ) -> None:
        """INSERT many rows of plain values at once (`insert_row`'s `on_conflict`)."""
        self.db.conn.executemany(_insert_sql(table, columns, on_conflict), rows)

    def update_row(self, table: str, key: tuple[str, Any], fields: dict[str, Any]) -> None:
        """UPDATE one row by its key column (`key` = (column, value))."""
        columns = ", ".join(f'"{c}" = ?' for c in fields)
        values = [_sql_value(v) for v in fields.values()]
        self.db.execute(f'UPDATE "{table}" SET {columns} WHERE "{key[0]}" = ?', [*values, key[1]])

    def data_version(self) -> int:
        """Return sqlite's change counter: it moves when another connection commits a write."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def set_busy_timeout(self, milliseconds: int) -> None:
        """Wait at most this long for another writer's lock (a dashboard must not hang)."""
        self.db.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")

    def has_table(self, name: str) -> bool:
        """Whether the table exists (a reader may open a database from before a migration)."""
        return name in self.db.table_names()


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], on_conflict: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    verb = "INSERT OR REPLACE" if on_conflict == "replace" else "INSERT"
    sql = f'{verb} INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    if on_conflict.startswith("upsert:"):
        keys = on_conflict.removeprefix("upsert:").split(",")
        rest = [c for c in columns if c not in keys]
        update = ", ".join(f'"{c}" = excluded."{c}"' for c in rest)
        sql += f" ON CONFLICT ({', '.join(keys)}) DO " + (
            f"UPDATE SET {update}" if rest else "NOTHING"
        )
    return sql


def _sql_value(value: Any) -> Any:
    """What sqlite-utils would store: JSON for containers, ISO text for times."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def jsonable(value: Any) -> Any:
    """Encode nested values as JSON and scrub every text (model output can echo anything)."""
    if isinstance(value, dict | list | tuple):
        return scrub(json.dumps(value, default=str))
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str):
        return scrub(value)
    return value
