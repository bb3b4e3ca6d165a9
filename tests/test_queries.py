import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from botlib.errors import UnknownSymbolError
from botlib.queries import account_overview, dashboard_data, list_assets, recent_cycles
from botlib.store import Store


@pytest.fixture
def ro(demo_db: Path):  # type: ignore[no-untyped-def]
    with Store(demo_db, read_only=True) as store:
        yield store


def test_dashboard_data_agrees_with_the_tables(ro: Store, demo_db: Path) -> None:
    data = dashboard_data(ro, "BTC/USD", bars=100)
    with closing(sqlite3.connect(demo_db)) as conn:
        pnls = [r[0] for r in conn.execute(
            "SELECT realized_pnl FROM trades WHERE symbol = 'BTC/USD' AND realized_pnl IS NOT NULL"
        )]  # fmt: skip
        cycles = conn.execute("SELECT count(*) FROM cycles WHERE symbol = 'BTC/USD'").fetchone()[0]
    assert len(data.bars) == 100 and data.bars.index.is_monotonic_increasing
    assert data.metrics.n_trades == len(pnls) > 0
    assert data.metrics.win_rate == pytest.approx(sum(p > 0 for p in pnls) / len(pnls))
    assert data.cycles == cycles
    assert data.last_decision is not None and data.last_decision["symbol"] == "BTC/USD"
    assert data.last_cycle is not None and data.last_cycle["status"] == "ok"
    if data.position:
        expected = data.position["qty"] * (data.last_price - data.position["avg_entry_price"])
        assert data.unrealized_pnl == pytest.approx(expected)


def test_account_overview_has_one_point_per_tick(ro: Store) -> None:
    overview = account_overview(ro)
    curve = overview["curve"]
    assert overview["mode"] == "sim"
    assert not curve.index.has_duplicates
    assert overview["equity"] == curve.iloc[-1]
    assert 0 <= overview["metrics"].max_drawdown_pct < 100


def test_listing_and_recent_cycles(ro: Store) -> None:
    assert [a.symbol for a in list_assets(ro)] == ["BTC/USD", "SOL/USD"]
    recent = recent_cycles(ro, limit=5, symbol="SOL/USD")
    assert len(recent) == 5 and {r["symbol"] for r in recent} == {"SOL/USD"}
    assert [r["started_at"] for r in recent] == sorted(
        (r["started_at"] for r in recent), reverse=True
    )
    with pytest.raises(UnknownSymbolError):
        dashboard_data(ro, "XRP/USD")
