"""Migrations from m008 on (`schema` holds m001-m007 and imports this module, in order)."""

from __future__ import annotations

from sqlite_utils import Database

from botlib.storage.schema import migrations

__all__: list[str] = []


@migrations()
def m008_hot_path_indexes(db: Database) -> None:
    """Index every cycle's reads, so a cycle's cost does not grow with its history (the check
    for cycles left `running` scanned every cycle ever run: 0.3 ms a cycle after 3,500)."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_cycles_running ON cycles(symbol) WHERE status = 'running'"
    )
    db.table("trades").create_index(["symbol", "fee_pending"], if_not_exists=True)


@migrations()
def m009_stop_distance(db: Database) -> None:
    """How far below its entry a BUY's stop may sit, per asset (issue #19: a model could set a
    stop as far as it liked): in % of the entry (default 10) and optionally in ATR multiples."""
    assets = db.table("trading_assets")
    assets.add_column("max_stop_pct", float, not_null_default=10.0)
    assets.add_column("max_stop_atr", float)
