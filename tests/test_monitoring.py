"""`botlib.reporting.monitoring` and the activity feed's queries, checked against plain SQL and
`botlib.reporting.analytics` on the full data."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from botlib.clock import iso
from botlib.core.risk import RiskLimits
from botlib.models import AssetSettings
from botlib.reporting.activity import read_activity
from botlib.reporting.analytics import metrics
from botlib.reporting.monitoring import equity_curve, read_account, read_performance
from botlib.storage.store import Store
from botlib.ui.activity import activity_html
from tests.conftest import T0
from tests.ui_helpers import copy_db

NOW = T0 + timedelta(minutes=5)  # the demo's last cycle ran at T0


@pytest.fixture
def demo(demo_db: Path, tmp_path: Path) -> Iterator[Store]:
    """A writable copy of the demo database (hand-inserted rows go here)."""
    store = Store(copy_db(demo_db, tmp_path / "demo.db"))
    yield store
    store.close()


def _snapshots(store: Store) -> pd.DataFrame:
    frame = pd.DataFrame(store.rows("SELECT * FROM equity_snapshots ORDER BY id"))
    frame["time"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame


def _curve(frame: pd.DataFrame, column: str, base: float = 0.0) -> pd.Series:
    """The full-data curve as `botlib.reporting.queries` builds it: one point per time, the
    last row."""
    series = pd.Series(frame[column].to_numpy(dtype=float) + base, index=frame["time"])
    return series[~series.index.duplicated(keep="last")]


# header ---------------------------------------------------------------------------------------
def test_header_numbers_equal_sql(demo: Store) -> None:
    status = read_account(demo, NOW, RiskLimits())
    snaps = _snapshots(demo)
    last, first = snaps.iloc[-1], snaps.iloc[0]
    assert status.equity == pytest.approx(last["equity"])
    assert status.cash == pytest.approx(last["cash"])
    assert status.total_pnl == pytest.approx(last["equity"] - first["equity"])
    assert status.peak_equity == pytest.approx(snaps["equity"].max())
    assert status.mode == "sim"
    positions = demo.rows("SELECT symbol, qty FROM positions WHERE qty > 0")
    assert positions, "the demo should end with an open position"
    value = sum(
        p["qty"] * demo.load_bars(p["symbol"], "15Min", limit=1)["close"].iloc[-1]
        for p in positions
    )
    assert (status.positions, status.positions_value) == (len(positions), pytest.approx(value))


def test_day_pnl_uses_the_last_snapshot_before_midnight_or_the_days_first(demo: Store) -> None:
    snaps = _snapshots(demo)
    midnight = pd.Timestamp(NOW.date(), tz="UTC")
    before = snaps[snaps["time"] < midnight].iloc[-1]
    status = read_account(demo, NOW, RiskLimits())
    assert status.day_start_equity == pytest.approx(before["equity"])
    assert status.day_pnl == pytest.approx(snaps.iloc[-1]["equity"] - before["equity"])
    # On the demo's first day nothing precedes midnight: the day starts at its first snapshot.
    first_day = read_account(demo, snaps.iloc[0]["time"].to_pydatetime(), RiskLimits())
    assert first_day.day_start_equity == pytest.approx(snaps.iloc[0]["equity"])


def test_llm_spend_today_counts_decisions_and_reflections_since_midnight(demo: Store) -> None:
    rows = [
        ("ai_decision_logs", NOW - timedelta(hours=1), 0.25),
        ("ai_decision_logs", NOW - timedelta(days=1), 0.5),  # yesterday: not today's budget
        ("ai_reflections", NOW - timedelta(minutes=1), 0.125),
    ]
    for table, when, cost in rows:
        demo.db.table(table).insert(
            {"symbol": "BTC/USD", "created_at": iso(when), "cost_usd": cost}
        )
    status = read_account(demo, NOW, RiskLimits(llm_budget_usd=2.0))
    assert status.llm_today == pytest.approx(0.375)
    assert status.limits.llm_budget_usd == 2.0


def test_heartbeat_reads_the_newest_tick(demo: Store) -> None:
    assert read_account(demo, NOW, RiskLimits()).heartbeat.state(NOW) == "none"
    ticks = demo.db.table("ticks")
    ticks.insert({"started_at": iso(NOW - timedelta(hours=1)), "ran": 2, "failed": 0})
    ticks.insert(
        {
            "started_at": iso(NOW - timedelta(seconds=50)),
            "finished_at": iso(NOW - timedelta(seconds=45)),
            "next_at": iso(NOW + timedelta(seconds=10)),
            "due": 2,
            "ran": 2,
            "failed": 1,
        }
    )
    beat = read_account(demo, NOW, RiskLimits()).heartbeat
    assert beat.started_at == NOW - timedelta(seconds=50)
    assert beat.next_at == NOW + timedelta(seconds=10)
    assert beat.failed == 1
    assert beat.state(NOW) == "ok"
    assert beat.state(NOW + timedelta(minutes=2, seconds=9)) == "ok"  # 2:59 after the start
    assert beat.state(NOW + timedelta(minutes=2, seconds=11)) == "late"


def test_lights_ok_failed_stale_paused_and_waiting(store: Store) -> None:
    for symbol, paused in (("OK/USD", False), ("BAD/USD", False), ("OLD/USD", False),
                           ("OFF/USD", True), ("NEW/USD", False)):  # fmt: skip
        store.upsert_asset(AssetSettings(symbol=symbol, interval_minutes=15, paused=paused))
    cycles = [
        ("OK/USD", NOW - timedelta(minutes=3), "ok", None),
        ("BAD/USD", NOW - timedelta(minutes=3), "failed", "<b>broker</b> down"),
        ("OLD/USD", NOW - timedelta(minutes=33), "ok", None),  # 2 x 15 + 2 = 32 minutes
        ("OFF/USD", NOW - timedelta(hours=5), "ok", None),
    ]
    for n, (symbol, started, status, reason) in enumerate(cycles):
        store.start_cycle(f"c{n}", symbol, started - timedelta(minutes=15))  # an older one
        store.start_cycle(f"d{n}", symbol, started)
        store.finish_cycle(f"d{n}", started, status=status, reason=reason, error="BrokerError")
    # NEW/USD was added a minute ago: it waits for its first cycle
    store.db.execute("UPDATE trading_assets SET created_at = ?", [iso(NOW - timedelta(minutes=1))])
    lights = {a.symbol: a.light(NOW) for a in read_account(store, NOW, RiskLimits()).assets}
    assert {s: light.state for s, light in lights.items()} == {
        "OK/USD": "ok",
        "BAD/USD": "failed",
        "OLD/USD": "stale",
        "OFF/USD": "paused",
        "NEW/USD": "waiting",
    }
    assert lights["BAD/USD"].text == "failed: <b>broker</b> down"  # escaped by the widget
    assert "BrokerError" in lights["BAD/USD"].detail


def _equity(store: Store, points: list[tuple[datetime, float]]) -> None:
    store.db.table("equity_snapshots").insert_all(
        {"ts": iso(when), "symbol": "BTC/USD", "equity": value, "cash": value, "asset_pnl": 0.0}
        for when, value in points
    )


def test_halted_when_drawdown_exceeds_the_limit(store: Store) -> None:
    start = NOW - timedelta(hours=3)
    _equity(store, [(start, 100_000.0), (start + timedelta(hours=1), 120_000.0)])
    limits = RiskLimits(max_drawdown_pct=20.0, max_daily_loss_pct=50.0)
    assert read_account(store, NOW, limits).halt_reasons() == []
    _equity(store, [(start + timedelta(hours=2), 95_000.0)])  # 20.8 % below the 120k peak
    status = read_account(store, NOW, limits)
    assert status.drawdown_pct == pytest.approx(100 * 25_000 / 120_000)
    assert [r.split(" ")[0] for r in status.halt_reasons()] == ["drawdown"]
    looser = limits.model_copy(update={"max_drawdown_pct": 21.0})
    assert read_account(store, NOW, looser).halt_reasons() == []


def test_halted_when_the_days_loss_reaches_its_limit(store: Store) -> None:
    midnight = datetime.combine(NOW.date(), datetime.min.time(), tzinfo=UTC)
    _equity(store, [(midnight - timedelta(hours=1), 100_000.0), (midnight, 101_000.0)])
    _equity(store, [(midnight + timedelta(hours=2), 96_000.0)])  # -4 % on the day
    limits = RiskLimits(max_daily_loss_pct=5.0, max_drawdown_pct=50.0)
    status = read_account(store, NOW, limits)
    assert status.day_pnl == pytest.approx(-4_000.0)
    assert status.halt_reasons() == []
    _equity(store, [(midnight + timedelta(hours=3), 95_000.0)])  # -5 %: reached
    reasons = read_account(store, NOW, limits).halt_reasons()
    assert len(reasons) == 1 and reasons[0].startswith("today's loss 5.00 %")


# performance ----------------------------------------------------------------------------------
def test_performance_equals_analytics_on_the_full_data(demo: Store) -> None:
    """Trade statistics are exact. On the demo each 15-minute snapshot time falls in its own
    bucket (1000 buckets over a day are 86 s wide), so the bucketed curve IS the full curve:
    Sharpe and max drawdown agree to 1e-6 (relative and percentage points)."""
    demo.db.table("ai_decision_logs").insert_all(
        [{"symbol": "BTC/USD", "cost_usd": 0.5}, {"symbol": "SOL/USD", "cost_usd": 0.25}]
    )
    demo.db.table("ai_reflections").insert({"symbol": "BTC/USD", "cost_usd": 0.125})
    performance = read_performance(demo)
    snaps, trades = _snapshots(demo), pd.DataFrame(demo.rows("SELECT * FROM trades"))
    base = float(snaps.iloc[0]["equity"])
    for row in performance.rows[:-1]:
        mine = snaps[snaps["symbol"] == row.label]
        done = trades[trades["symbol"] == row.label]
        expected = metrics(
            _curve(mine, "asset_pnl", base),
            done["realized_pnl"].dropna().astype(float),
            float(mine.iloc[-1]["asset_pnl"]),
        )
        _same_metrics(row.metrics, expected)
        assert row.fees == pytest.approx(done["fee"].sum())
    total = performance.rows[-1]
    assert total.label == "Total"
    account = _curve(snaps, "equity")
    pnls = trades["realized_pnl"].dropna().astype(float)
    _same_metrics(total.metrics, metrics(account, pnls, account.iloc[-1] - account.iloc[0]))
    assert total.fees == pytest.approx(trades["fee"].sum())
    assert [r.llm_usd for r in performance.rows] == pytest.approx([0.625, 0.25, 0.875])
    assert total.gross_pnl == pytest.approx(total.metrics.total_pnl + total.fees)
    assert total.cost_adjusted_pnl == pytest.approx(total.metrics.total_pnl - 0.875)
    assert performance.curve.index.equals(account.index)
    assert performance.curve.to_list() == pytest.approx(account.to_list())


def _same_metrics(mine: object, expected: object) -> None:
    got, want = mine.as_dict(), expected.as_dict()  # type: ignore[attr-defined]
    assert got["n_trades"] == want["n_trades"] > 0
    for key in ("total_pnl", "win_rate", "avg_win", "avg_loss", "profit_factor", "sharpe"):
        assert got[key] == (None if want[key] is None else pytest.approx(want[key], rel=1e-6)), key
    assert got["max_drawdown_pct"] == pytest.approx(want["max_drawdown_pct"], abs=1e-6)


def test_equity_curve_has_at_most_one_point_per_bucket_and_ends_on_the_latest(
    demo: Store,
) -> None:
    snaps = _snapshots(demo)
    curve = equity_curve(demo, buckets=10)
    assert 1 < len(curve) <= 10
    assert curve.iloc[-1] == pytest.approx(snaps.iloc[-1]["equity"])
    assert curve.index.is_monotonic_increasing
    assert equity_curve(demo, "NONE/USD").empty


# activity -------------------------------------------------------------------------------------
def _add_one_of_each(store: Store, at: datetime) -> None:
    """Write one event of each source, a minute apart, after the demo's last cycle."""

    def later(minutes: int) -> str | None:
        return iso(at + timedelta(minutes=minutes))

    store.start_cycle("denied-1", "BTC/USD", at, mode="sim")
    halted = "denied: trading halted (drawdown limit), exits only"
    store.finish_cycle(
        "denied-1", at, status="ok", action="BUY", risk_verdict="denied", risk_reason=halted
    )
    reasoning = "<script>alert('x')</script> breakout"
    store.log_decision(
        {"symbol": "SOL/USD", "created_at": later(1), "action": "BUY", "confidence": 0.8,
         "reasoning": reasoning}
    )  # fmt: skip
    store.record_trade(
        {"symbol": "SOL/USD", "side": "buy", "client_order_id": "hand-1", "qty": 2.5,
         "price": 140.0, "reason": "signal", "status": "filled", "filled_at": later(2)}
    )  # fmt: skip
    store.db.table("alerts").insert(
        {"ts": later(3), "kind": "drawdown", "severity": "critical", "message": "<img src=x> -21 %"}
    )
    store.db.table("operator_actions").insert(
        {"ts": later(4), "actor": "ops", "action": "pause", "symbol": "BTC/USD", "result": "ok"}
    )


def test_activity_merges_every_source_newest_first(demo: Store) -> None:
    _add_one_of_each(demo, T0 + timedelta(minutes=1))
    items = read_activity(demo)
    assert len(items) == 30
    assert [i.when for i in items] == sorted((i.when for i in items), reverse=True)
    assert [i.kind for i in items[:5]] == ["operator", "alert", "trade", "decision", "denied"]
    assert items[4].row["risk_reason"].startswith("denied: trading halted")
    kinds = {i.kind for i in read_activity(demo, limit=200)}
    assert kinds == {"operator", "alert", "trade", "decision", "denied", "cycle"}
    # a HOLD's "denied" verdict is no denial: the demo's hold cycles show as plain cycles
    holds = [i for i in read_activity(demo, limit=200) if i.row.get("action") == "HOLD"]
    assert holds and all(i.kind in {"cycle", "decision"} for i in holds)


def test_activity_table_escapes_database_text(demo: Store) -> None:
    _add_one_of_each(demo, T0 + timedelta(minutes=1))
    table = activity_html(read_activity(demo))
    assert "<script>" not in table and "<img" not in table
    assert html.escape("<script>alert('x')</script> breakout") in table
    assert html.escape("[critical] drawdown: <img src=x> -21 %") in table
    assert "BUY 2.5 @ $140.00 · signal" in table
    assert "pause → ok by ops" in table
    assert table.index("pause") < table.index("drawdown") < table.index("breakout")
