from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from botlib.errors import StoreError, UnknownSymbolError
from botlib.models import AssetSettings
from botlib.storage.store import Store


def test_migrations_are_idempotent_and_wal_is_on(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    with Store(tmp_path / "a.db") as again:
        applied = again.rows("SELECT name FROM _sqlite_migrations ORDER BY id")
        assert [r["name"] for r in applied] == [
            "m001_initial",
            "m002_sim_venue",
            "m003_llm_audit",
            "m004_reconciliations",
            "m005_operations",
            "m006_order_intents",
            "m007_resting_orders",
            "m008_hot_path_indexes",
            "m009_stop_distance",
        ]
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_only_store_cannot_write(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    with (
        Store(tmp_path / "a.db", read_only=True) as ro,
        pytest.raises(StoreError, match="readonly database; the database file, its folder"),
    ):
        ro.upsert_asset(AssetSettings(symbol="BTC/USD"))


def test_missing_and_corrupt_files_give_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "none.db", read_only=True)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 10)
    with pytest.raises(StoreError, match="unreadable"):
        Store(bad)


def test_update_asset_validates_before_writing(store: Store) -> None:
    store.ensure_asset("BTC/USD")
    with pytest.raises(ValidationError):
        store.update_asset("BTC/USD", interval_minutes=0)
    with pytest.raises(ValueError, match="unknown asset setting"):
        store.update_asset("BTC/USD", leverage=10)
    assert store.get_asset("BTC/USD").interval_minutes == 60
    assert store.update_asset("BTC/USD", paused=True).paused is True
    assert store.get_asset("BTC/USD").paused is True


def test_unknown_symbol_lists_known_ones(store: Store) -> None:
    store.ensure_asset("BTC/USD")
    with pytest.raises(UnknownSymbolError, match="known: BTC/USD"):
        store.get_asset("DOGE/USD")


def test_record_trade_is_idempotent_per_client_order_id(store: Store) -> None:
    row = {"symbol": "BTC/USD", "side": "buy", "client_order_id": "c-1", "qty": 1.0}
    first = store.record_trade(row)
    assert store.record_trade(row | {"qty": 2.0}) == first
    assert store.db["trades"].count == 1


def test_fail_running_cycles_marks_orphans(store: Store) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.start_cycle("c1", "BTC/USD", now)
    assert store.fail_running_cycles("BTC/USD", now) == 1
    row = store.rows("SELECT status, reason, error FROM cycles WHERE id = 'c1'")[0]
    assert row["status"] == "failed" and row["error"] == "interrupted"
    assert row["reason"] == "interrupted before the decision: the process ended mid-cycle"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(1, 1e6), min_size=1, max_size=30))
def test_bars_round_trip(tmp_path_factory: pytest.TempPathFactory, closes: list[float]) -> None:
    s = Store(tmp_path_factory.mktemp("rt") / "b.db")
    idx = pd.date_range("2026-01-01", periods=len(closes), freq="15min", tz="UTC", name="ts")
    c = np.array(closes)
    bars = pd.DataFrame(
        {"open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": c / 7}, index=idx
    )
    s.save_bars("BTC/USD", "15Min", bars)
    back = s.load_bars("BTC/USD", "15Min", limit=100)
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    s.close()


def test_plain_sql_writes_store_what_sqlite_utils_stored(store: Store) -> None:
    """`insert_row`/`update_row`: JSON for containers, ISO text for times; an upsert keeps the
    columns it does not name (a new asset's created_at)."""
    store.ensure_asset("BTC/USD")
    created = store.rows("SELECT created_at FROM trading_assets")[0]["created_at"]
    store.upsert_asset(store.get_asset("BTC/USD").model_copy(update={"position_size_pct": 3.0}))
    row = store.rows("SELECT created_at, position_size_pct FROM trading_assets")[0]
    assert row == {"created_at": created, "position_size_pct": 3.0}
    when = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.start_cycle("c1", "BTC/USD", when)
    store.finish_cycle("c1", when, status="ok", reason="r", bar_time=when, action="HOLD")
    cycle = store.cycle("c1")
    assert cycle is not None and cycle["bar_time"] == "2026-11-20T12:00:00+00:00"
    store.insert_row("reconciliations", {"ts": when, "symbol": "BTC/USD", "kind": "k",
                                         "detail": {"qty": 1.5}})  # fmt: skip
    found = store.rows("SELECT ts, detail FROM reconciliations")
    assert found == [{"ts": "2026-11-20T12:00:00+00:00", "detail": '{"qty": 1.5}'}]
    store.mark_cycle("BTC/USD", when)
    assert store.get_asset("BTC/USD").last_cycle_at == when
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mark_cycle("BTC/USD", datetime(2026, 11, 20))  # noqa: DTZ001 - the point


def test_the_running_cycle_check_uses_its_index(store: Store) -> None:
    """A cycle's first read must not scan every cycle ever run (it did, 0.3 ms at 3,500)."""
    plan = store.rows(
        "EXPLAIN QUERY PLAN SELECT id FROM cycles WHERE symbol = ? AND status = 'running'",
        ["BTC/USD"],
    )
    assert any("idx_cycles_running" in row["detail"] for row in plan), plan
