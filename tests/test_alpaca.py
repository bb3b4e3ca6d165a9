"""Paper trading on Alpaca through the real alpaca-py SDK, against a loopback fake Alpaca.

Every fault on the order path must leave exactly one order at the venue and a DB that agrees.
"""

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from botlib.analysts.rules import RulesAnalyst
from botlib.app.config import Settings, load_settings
from botlib.app.wiring import build_alpaca, build_engine, ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.errors import DataError
from botlib.models import OrderRequest
from botlib.ops.control import flatten_all
from botlib.storage.store import Store
from tests.conftest import T0
from tests.fakes.alpaca_server import FakeAlpaca, drop, html, lost_response, status, timeout
from tests.test_engine import ScriptedAnalyst, buy


@pytest.fixture
def alpaca() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as fake:
        fake.now = T0
        yield fake


def paper_settings(fake: FakeAlpaca, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "mode": "paper",
        "alpaca_api_key": fake.key_id,
        "alpaca_secret_key": fake.secret_key,
        "alpaca_trading_url": fake.url,
        "alpaca_data_url": fake.url,
        "alpaca_timeout_s": 1.0,
        "alpaca_fill_wait_s": 1.0,
    }
    return load_settings(None, **(fields | overrides))


def paper_engine(fake: FakeAlpaca, store: Store, clock: ManualClock, analyst: Any = None,
                 **overrides: Any) -> Engine:  # fmt: skip
    """Our real Alpaca adapters (as wired for paper mode) with a chosen analyst."""
    ensure_assets(store, ["BTC/USD", "SOL/USD"], timeframe="15Min", interval_minutes=15)
    market, broker = build_alpaca(paper_settings(fake, **overrides), store)
    return Engine(market, broker, analyst or RulesAnalyst(), store, clock=clock)


def venue_orders(fake: FakeAlpaca, cid: str) -> list[dict[str, Any]]:
    return [o for o in fake.orders if o["client_order_id"] == cid]


def test_a_paper_cycle_buys_and_the_db_matches_the_venue(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    report = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy)).run_cycle("BTC/USD")
    assert report.status.value == "ok" and report.action == "BUY", report.summary()
    (cid,) = report.orders
    (order,) = venue_orders(alpaca, cid)
    trade = store.trade_by_client_id(cid)
    assert trade is not None and trade["broker_order_id"] == order["id"]
    assert trade["status"] == "filled" and trade["qty"] == pytest.approx(float(order["filled_qty"]))
    position = store.get_position("BTC/USD")
    assert position["qty"] == pytest.approx(float(alpaca.positions["BTCUSD"]["qty"]))
    cycle = store.rows("SELECT * FROM cycles")[0]
    assert cycle["mode"] == "paper"
    # the order went out as Alpaca crypto wants it: a notional market order, gtc
    posted = [r for r in alpaca.requests if r["method"] == "POST"][0]["json"]
    assert (posted["type"], posted["time_in_force"], posted["symbol"]) == (
        "market",
        "gtc",
        "BTC/USD",
    )
    assert float(posted["notional"]) == pytest.approx(5_000.0, rel=0.01)  # 5 % of 100k equity


FAULTS = [
    ("500", lambda: status(500)),
    ("504", lambda: status(504)),
    ("429", lambda: status(429)),
    ("html 502", lambda: html(502)),
    ("timeout", lambda: timeout(3.0)),
    ("accepted, 504 lost", lambda: lost_response("504")),
    ("accepted, connection dropped", lambda: lost_response("drop")),
    ("dropped before arrival", drop),
]


@pytest.mark.parametrize(("name", "fault"), FAULTS, ids=[n for n, _ in FAULTS])
def test_order_faults_leave_exactly_one_order(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock, name: str, fault: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    alpaca.inject("POST", "/v2/orders", fault())
    engine = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy))
    with caplog.at_level(logging.INFO, logger="botlib"):
        report = engine.run_cycle("BTC/USD")
    assert report.status.value == "ok" and len(report.orders) == 1, report.summary()
    (cid,) = report.orders
    orders = venue_orders(alpaca, cid)
    assert len(orders) == 1, orders
    trades = store.rows("SELECT * FROM trades WHERE client_order_id = ?", [cid])
    assert len(trades) == 1 and trades[0]["broker_order_id"] == orders[0]["id"]
    assert "looking it up before resending" in caplog.text
    if name.startswith("accepted"):
        assert "had been accepted despite the error" in caplog.text
    # a rerun of the same bar (a crashed tick restarted) never orders again
    again = engine.run_cycle("BTC/USD", force=True)
    assert len(venue_orders(alpaca, cid)) == 1 and again.action in ("BUY", "HOLD")
    assert len([o for o in alpaca.orders if o["side"] == "buy"]) == 1


def test_reads_are_retried_and_an_html_error_page_is_read_safely(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.inject("GET", "/v2/account", status(500))
    engine = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy))
    assert engine.run_cycle("BTC/USD").status.value == "ok"  # one 500, retried
    alpaca.inject("GET", "/v2/positions", html(502), times=10)
    clock.advance(timedelta(minutes=15))
    alpaca.now = clock.now()
    failed = engine.run_cycle("SOL/USD")
    assert failed.status.value == "failed" and "HTTP 502" in failed.reason
    assert "<html" not in failed.reason  # the page is summarised, not pasted
    assert len([o for o in alpaca.orders if o["symbol"] == "SOL/USD"]) == 0


def test_a_rejected_order_is_recorded_with_the_venue_reason(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    why = "insufficient balance for USD (requested: 5000, available: 0)"
    alpaca.inject("POST", "/v2/orders", status(403, {"code": 40310000, "message": why}))
    report = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy)).run_cycle("BTC/USD")
    assert report.status.value == "ok" and report.orders == ()
    assert "order rejected (403): insufficient balance for USD" in report.reason
    assert store.rows("SELECT count(*) AS n FROM trades")[0]["n"] == 0


def test_reconciliation_against_the_venue(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.place_manual_trade("SOL/USD", "buy", notional=2_000.0)  # in Alpaca's web UI
    store.set_position("BTC/USD", {"qty": 0.5, "avg_entry_price": 90_000.0})  # a lost close
    engine = paper_engine(alpaca, store, clock, ScriptedAnalyst(lambda c: buy(c, action="HOLD")))
    engine.run_cycle("SOL/USD")
    engine.run_cycle("BTC/USD")
    held = float(alpaca.positions["SOLUSD"]["qty"])
    assert store.get_position("SOL/USD")["qty"] == pytest.approx(held)
    assert store.get_position("BTC/USD") is None
    kinds = {(r["symbol"], r["kind"]) for r in store.rows("SELECT * FROM reconciliations")}
    assert kinds == {("SOL/USD", "adopted"), ("BTC/USD", "cleared")}


def test_partial_fills_are_recorded_as_such(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.fill_mode = "partial"
    report = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy), alpaca_fill_wait_s=0.3)
    result = report.run_cycle("BTC/USD")
    (trade,) = store.rows("SELECT * FROM trades")
    (order,) = venue_orders(alpaca, result.orders[0])
    assert trade["status"] == "partially_filled" == order["status"]
    assert trade["qty"] == pytest.approx(float(order["filled_qty"])) and trade["qty"] > 0


def test_engine_owned_exits_close_on_the_venue(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    engine = paper_engine(alpaca, store, clock, ScriptedAnalyst(lambda c: buy(c, action="HOLD")))
    alpaca.place_manual_trade("BTC/USD", "buy", notional=3_000.0)
    engine.run_cycle("BTC/USD")  # adopted with a stop just under the entry
    store.set_position("BTC/USD", store.get_position("BTC/USD") | {"stop_loss": 10**9})
    clock.advance(timedelta(minutes=15))
    alpaca.now = clock.now()
    report = engine.run_cycle("BTC/USD")
    assert report.exit_reason == "stop_loss" and len(report.orders) == 1
    assert "BTCUSD" not in alpaca.positions or float(alpaca.positions["BTCUSD"]["qty"]) < 1e-4
    sell = store.trade_by_client_id(report.orders[0])
    assert sell["reason"] == "stop_loss" and sell["realized_pnl"] is not None


def test_bars_are_cached_and_only_new_ones_fetched(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.page_size = 100  # the SDK follows next_page_token
    engine = paper_engine(alpaca, store, clock)
    engine.run_cycle("BTC/USD")
    first = alpaca.requests_to("/v1beta3/crypto/us/bars")
    assert len(first) >= 3  # 250+ bars in pages of 100
    saved = store.load_bars("BTC/USD", "15Min", limit=1000)
    assert saved.index[-1] + timedelta(minutes=15) <= T0  # the forming bar was not stored
    clock.advance(timedelta(minutes=15))
    alpaca.now = clock.now()
    engine.run_cycle("BTC/USD", force=True)
    later = alpaca.requests_to("/v1beta3/crypto/us/bars")[len(first) :]
    assert len(later) == 1 and later[0]["query"]["start"].startswith("2026-11-20T12:00")


def test_gaps_are_filled_and_a_stale_feed_skips_the_cycle(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.bar_gaps = [(T0 - timedelta(hours=2), T0 - timedelta(hours=1, minutes=30))]
    engine = paper_engine(alpaca, store, clock)
    assert engine.run_cycle("BTC/USD").status.value == "ok"
    bars = store.load_bars("BTC/USD", "15Min", limit=20)
    assert (bars.index.to_series().diff().dropna() == timedelta(minutes=15)).all()
    assert (
        bars.loc[T0 - timedelta(hours=2) : T0 - timedelta(hours=1, minutes=45), "volume"] == 0
    ).all()
    alpaca.frozen_at = T0
    clock.advance(timedelta(hours=2))
    alpaca.now = clock.now()
    report = engine.run_cycle("BTC/USD", force=True)
    assert report.status.value == "skipped" and report.reason.startswith("stale data")


def test_a_hole_longer_than_the_fill_limit_is_a_data_error(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    alpaca.bar_gaps = [(T0 - timedelta(hours=5), T0 - timedelta(hours=2))]
    market, _ = build_alpaca(paper_settings(alpaca), store)
    with pytest.raises(DataError, match="bars missing in a row"):
        market.bars("BTC/USD", "15Min", T0, 250)


def test_the_kill_switch_on_paper(alpaca: FakeAlpaca, store: Store, clock: ManualClock) -> None:
    engine = paper_engine(alpaca, store, clock, ScriptedAnalyst(buy), alpaca_fill_wait_s=0.2)
    engine.run_cycle("BTC/USD")
    alpaca.fill_mode = "accepted"  # the next order rests open at the venue
    resting = engine.broker.submit_order(
        OrderRequest("SOL/USD", "buy", "sol-resting", notional=50.0)
    )
    assert resting.status in ("new", "accepted")
    alpaca.fill_mode = "immediate"
    notes = flatten_all(engine)
    assert any("cancelled open order sol-resting" in n for n in notes)
    assert any("BTC/USD: closed by manual" in n for n in notes)
    assert venue_orders(alpaca, "sol-resting")[0]["status"] == "canceled"
    assert len([o for o in alpaca.orders if o["side"] == "sell"]) == 1
    assert "BTCUSD" not in alpaca.positions or float(alpaca.positions["BTCUSD"]["qty"]) < 1e-4


def test_live_mode_needs_the_confirmation_and_says_which_account(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="botlib"):
        engine = build_engine(paper_settings(alpaca, mode="live", live_confirm="yes"), store, clock)
    assert engine.broker.mode == "live" and "Alpaca LIVE account" in caplog.text
    ensure_assets(store, ["BTC/USD"], timeframe="15Min", interval_minutes=15)
    assert engine.run_cycle("BTC/USD").status.value == "ok"
    assert store.rows("SELECT mode FROM cycles")[0]["mode"] == "live"


def test_keys_never_reach_the_database(
    alpaca: FakeAlpaca, store: Store, clock: ManualClock
) -> None:
    paper_engine(alpaca, store, clock, ScriptedAnalyst(buy)).run_cycle("BTC/USD")
    dump = "\n".join(store.db.conn.iterdump())
    assert "BUY" in dump and alpaca.key_id not in dump and alpaca.secret_key not in dump


@pytest.mark.slow  # a subprocess
def test_the_cli_trades_paper_with_keys_from_the_environment(
    alpaca: FakeAlpaca, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_"))}
    env |= {
        "ALPACA_API_KEY": alpaca.key_id,
        "ALPACA_SECRET_KEY": alpaca.secret_key,
        "ALPACA_TRADING_URL": alpaca.url,
        "ALPACA_DATA_URL": alpaca.url,
        "BOTLIB_DB": str(tmp_path / "paper.db"),
        "BOTLIB_LOG_JSON": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "botlib", "cycle", "--symbol", "BTC/USD", "--at", T0.isoformat()],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("BTC/USD ok ")
    assert "trading on the Alpaca PAPER account" in result.stderr
    assert alpaca.key_id not in result.stderr + result.stdout
    assert alpaca.secret_key not in result.stderr + result.stdout
    with Store(tmp_path / "paper.db", read_only=True) as store:
        assert store.rows("SELECT mode, status FROM cycles") == [{"mode": "paper", "status": "ok"}]
