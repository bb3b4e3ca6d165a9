"""SIGKILL a cycle at every stage, restart, and prove the books: one order, no lost row.

Each scenario runs `botlib tick` in a child process (the real CLI, the real SDKs against the
loopback fakes) and kills it at a stage: through a failpoint (`botlib.core.failpoints`, the process
SIGKILLs itself) or, for "submitted but the answer never came", from outside while the fake
Alpaca holds the answer to an order it has executed. Then the next tick runs, as cron would
start it, and `check_books` asserts what must hold after any crash.

Every tick runs on one fixed clock shared with the fake Alpaca (`botlib tick --at`, `fake.now`,
a `ManualClock` for the restart), so the prices, bars and outcome never depend on the time of
day. `T` is the regression case: at 08:35 UTC on 2026-12-03 the hour before the entry has a
low under the model's stop, and the restart used to "stop out" on it and order a second time.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from botlib.app.config import Settings, load_settings
from botlib.app.scheduler import tick
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock
from botlib.core.failpoints import POINTS
from botlib.storage.store import Store
from tests.conftest import CANARY_KEY, JUPYTER_DIRS, KERNEL
from tests.fakes.alpaca_server import FakeAlpaca, held_response
from tests.fakes.openai_server import FakeOpenAI, buy, decision, prompt_price
from tests.ledger import tally
from tests.ui_helpers import wait_for

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`

SYMBOL = "BTC/USD"
T = datetime(2026, 12, 3, 8, 35, tzinfo=UTC)  # the killed tick's clock; the restart's is later
MINUTE = timedelta(minutes=1)


@dataclass
class Venue:
    """Where orders go: the simulator (books in the same DB) or the fake Alpaca (paper)."""

    db: Path
    alpaca: FakeAlpaca | None = None

    def set_clock(self, moment: datetime) -> None:
        """Move the fake Alpaca's clock (the simulator's market is a function of the tick's)."""
        if self.alpaca is not None:
            self.alpaca.now = moment

    def orders(self) -> list[dict[str, Any]]:
        """Every order the venue holds: client id, filled quantity, side, type, status, id."""
        if self.alpaca is not None:
            return [
                {"client_order_id": o["client_order_id"], "filled_qty": float(o["filled_qty"]),
                 "side": o["side"], "type": o["type"], "status": o["status"], "id": o["id"]}
                for o in self.alpaca.orders
            ]  # fmt: skip
        with closing(sqlite3.connect(self.db)) as conn:
            rows = conn.execute(
                "SELECT client_order_id, coalesce(filled_qty, 0), side, type, status, id"
                " FROM sim_orders ORDER BY created_at"
            ).fetchall()
        keys = ("client_order_id", "filled_qty", "side", "type", "status", "id")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def resting_stops(self) -> list[dict[str, Any]]:
        """The protective stops open at the venue."""
        opened = {"new", "accepted", "pending_new", "partially_filled"}
        return [o for o in self.orders() if o["type"] == "stop_limit" and o["status"] in opened]

    def position_qty(self) -> float:
        if self.alpaca is not None:
            held = self.alpaca.positions.get(SYMBOL.replace("/", ""))
            return float(held["qty"]) if held else 0.0
        with closing(sqlite3.connect(self.db)) as conn:
            row = conn.execute(
                "SELECT qty FROM sim_positions WHERE symbol = ?", [SYMBOL]
            ).fetchone()
        return float(row[0]) if row else 0.0


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@contextmanager
def paper_venue(tmp_path: Path, interval_minutes: int = 1) -> Iterator[Venue]:
    """A fresh database with BTC/USD and the fake Alpaca beside it (paper mode)."""
    db = tmp_path / "bot.db"
    with Store(db) as store:
        ensure_assets(store, [SYMBOL], interval_minutes=interval_minutes)
    with FakeAlpaca(key_id="AKCRASHTEST", secret_key="crash-test-secret") as fake:
        yield Venue(db, fake)


@pytest.fixture(params=["sim", "paper"])
def venue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Venue]:
    db = tmp_path / "bot.db"
    with Store(db) as store:
        ensure_assets(store, [SYMBOL], interval_minutes=1)
    if request.param == "sim":
        yield Venue(db)
        return
    with FakeAlpaca(key_id="AKCRASHTEST", secret_key="crash-test-secret") as fake:
        yield Venue(db, fake)


def child_env(venue: Venue, openai: FakeOpenAI, failpoint: str | None) -> dict[str, str]:
    """The tick's environment: keys and URLs of the fakes, cycles in-process, maybe a failpoint."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTLIB_", "ALPACA_", "OPENAI_"))
    }
    env |= {
        "BOTLIB_DB": str(venue.db),
        "BOTLIB_SYMBOLS": SYMBOL,
        "BOTLIB_ANALYST": "openai",
        "BOTLIB_TICK_NOTEBOOKS": "false",
        "OPENAI_API_KEY": CANARY_KEY,
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "10",
    }
    if venue.alpaca is not None:
        env |= {
            "BOTLIB_MODE": "paper",
            "ALPACA_API_KEY": venue.alpaca.key_id,
            "ALPACA_SECRET_KEY": venue.alpaca.secret_key,
            "ALPACA_TRADING_URL": venue.alpaca.url,
            "ALPACA_DATA_URL": venue.alpaca.url,
            "ALPACA_TIMEOUT": "5",
            "BOTLIB_FILL_WAIT": "2",
        }
    if failpoint:
        env["BOTLIB_FAILPOINTS"] = failpoint
    return env


def start_tick(
    venue: Venue, openai: FakeOpenAI, failpoint: str | None, at: datetime = T
) -> subprocess.Popen[str]:
    """Start `botlib tick --at at` in a child process, the fake Alpaca's clock moved to `at`."""
    venue.set_clock(at)
    return subprocess.Popen(
        [sys.executable, "-m", "botlib", "tick", "--at", at.isoformat()],
        env=child_env(venue, openai, failpoint),
        cwd=venue.db.parent,  # no developer's .env
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def killed_tick(venue: Venue, openai: FakeOpenAI, failpoint: str, at: datetime = T) -> str:
    """Run a tick that a failpoint kills; return its stderr (the log up to the kill)."""
    proc = start_tick(venue, openai, failpoint, at)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, f"the tick was not killed at {failpoint}:\n{err[-3000:]}"
    assert f"failpoint {failpoint}" in err
    return err


def restart(venue: Venue, openai: FakeOpenAI, at: datetime = T + MINUTE) -> Settings:
    """Run the next tick in this process (the failpoint gone) at `at`, as cron would start it."""
    env = child_env(venue, openai, None)
    settings = load_settings(
        None,
        db_path=venue.db,
        symbols=[SYMBOL],
        analyst="openai",
        tick_notebooks=False,
        openai_api_key=CANARY_KEY,
        openai_base_url=openai.base_url,
        openai_max_retries=0,
        **(
            {
                "mode": "paper",
                "alpaca_api_key": env["ALPACA_API_KEY"],
                "alpaca_secret_key": env["ALPACA_SECRET_KEY"],
                "alpaca_trading_url": env["ALPACA_TRADING_URL"],
                "alpaca_data_url": env["ALPACA_DATA_URL"],
                "alpaca_fill_wait_s": 2.0,
            }
            if venue.alpaca is not None
            else {}
        ),
    )
    venue.set_clock(at)
    reports = tick(settings, ManualClock(at))
    assert reports is not None, "the restart found the tick lock held"
    assert [r.status.value for r in reports] == ["ok"], [r.summary() for r in reports]
    return settings


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with Store(db, read_only=True) as reader:
        return reader.rows(sql, params)


def check_books(venue: Venue) -> dict[str, int]:
    """What must hold after any crash and restart; returns the figures for the tally.

    Books equal the venue's: every fill booked once with its quantity (and, at Alpaca, its
    fee to the cent), the position's quantity, exactly one protective stop resting for an
    open position and none for a closed one, never more sells filled than buys, and, once
    flat, the realised P&L equal to the venue's cash change to the cent.
    """
    with closing(sqlite3.connect(venue.db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # no orphan rows
    assert rows(venue.db, "SELECT id FROM cycles WHERE status = 'running'") == []
    orders = venue.orders()
    pending = rows(venue.db, "SELECT * FROM order_intents WHERE status = 'pending'")
    resting = {o["client_order_id"] for o in venue.resting_stops()}
    assert {i["client_order_id"] for i in pending} == resting, (pending, orders)  # only stops
    ids = [o["client_order_id"] for o in orders]
    duplicates = len(ids) - len(set(ids))
    trades = rows(venue.db, "SELECT * FROM trades")
    booked = {t["client_order_id"]: t for t in trades}
    lost = [o for o in orders if o["filled_qty"] > 0 and o["client_order_id"] not in booked]
    assert duplicates == 0 and len(booked) == len(trades), (orders, trades)
    assert lost == [], f"fills the books lost: {lost}"
    assert set(booked) <= set(ids), "a trade the venue never saw"
    for order in orders:
        if order["client_order_id"] in booked:
            assert booked[order["client_order_id"]]["qty"] == pytest.approx(order["filled_qty"])
    sides = [t["side"] for t in trades]
    assert sides.count("sell") <= sides.count("buy"), "a second sell"
    position = rows(venue.db, "SELECT qty FROM positions WHERE symbol = ?", (SYMBOL,))
    dust = 1e-6  # what float sums leave at the venue after a full sale counts as flat
    held = position[0]["qty"] if position else 0.0
    assert held == pytest.approx(venue.position_qty(), abs=dust)
    assert len(resting) == (1 if held > dust else 0), ("one stop per open position", orders)
    if venue.alpaca is not None:
        _same_money_as_alpaca(venue.alpaca, trades, flat=held <= dust)
    return {"orders_checked": len(orders), "duplicates_found": duplicates, "rows_lost": len(lost),
            "protective_stops_checked": 1}  # fmt: skip


def _same_money_as_alpaca(fake: FakeAlpaca, trades: list[dict[str, Any]], flat: bool) -> None:
    """Each trade's fee is Alpaca's CFEE for its order; flat, P&L is Alpaca's cash change."""
    fees: dict[str, float] = {}
    for fee in fake.fees:
        fees[fee["order_id"]] = fees.get(fee["order_id"], 0.0) + fee["usd"]
    for trade in trades:
        assert trade["fee"] == pytest.approx(fees.get(trade["broker_order_id"], 0.0), abs=0.005)
    if flat:
        pnl = sum(t["realized_pnl"] or 0.0 for t in trades)
        assert pnl == pytest.approx(fake.cash - fake._start_cash, abs=0.01)


def killed_cycle(db: Path) -> dict[str, Any]:
    found = rows(db, "SELECT * FROM cycles WHERE error IN ('interrupted', 'notebook')")
    assert len(found) == 1, found
    return found[0]


# What each stage of a buy leaves: orders at the venue, and what the killed cycle's reason says.
EXPECTED = {
    "cycle.after_decision": (0, "interrupted after the decision, before any order"),
    "order.before_submit": (0, "in flight (reconciliation resolves it)"),
    "order.after_submit": (1, "in flight (reconciliation resolves it)"),
    "entry.after_fill": (1, "interrupted after booking"),  # bought, no stop placed yet
    "cycle.before_finish": (2, "interrupted after booking"),  # the buy and its stop
}


def test_every_failpoint_is_crash_tested() -> None:
    assert set(EXPECTED) | {"order.after_cancel"} == set(POINTS)


@pytest.mark.parametrize("stage", list(EXPECTED))
def test_a_buy_killed_at_each_stage_is_whole_after_the_next_tick(
    venue: Venue, openai: FakeOpenAI, stage: str
) -> None:
    openai.push(buy())
    killed_tick(venue, openai, stage)
    expected_orders, why = EXPECTED[stage]
    assert len(venue.orders()) == expected_orders

    restart(venue, openai)  # the fake answers HOLD from now on
    figures = check_books(venue)
    bought = expected_orders > 0
    assert figures["orders_checked"] == (2 if bought else 0)  # the buy and one stop
    cycle = killed_cycle(venue.db)
    assert cycle["status"] == "failed" and why in cycle["reason"], cycle
    kinds = [r["kind"] for r in rows(venue.db, "SELECT kind FROM reconciliations")]
    if stage == "order.after_submit":  # booked for the killed cycle, with the model's stops
        assert kinds == ["order_recovered"]
        trade = rows(venue.db, "SELECT * FROM trades")[0]
        assert trade["cycle_id"] == cycle["id"] and trade["decision_id"] is not None
        stop = rows(venue.db, "SELECT stop_loss FROM ai_decision_logs WHERE cycle_id = ?",
                    (cycle["id"],))[0]["stop_loss"]  # fmt: skip
        assert rows(venue.db, "SELECT stop_loss FROM positions")[0]["stop_loss"] == stop
    elif stage == "order.before_submit":
        assert kinds == ["order_not_sent"]
        assert rows(venue.db, "SELECT status FROM order_intents") == [{"status": "not_sent"}]
    else:
        assert kinds == []
    tally(cycles_run=2, faults_injected=1, **figures)


def test_paper_order_executed_but_its_answer_never_arrived(
    tmp_path: Path, openai: FakeOpenAI
) -> None:
    """Killed from outside while Alpaca has executed the order and holds the answer."""
    with paper_venue(tmp_path, 1) as venue:
        db, fake = venue.db, venue.alpaca
        assert fake is not None
        fake.inject("POST", "/v2/orders", held_response(120))
        openai.push(buy())
        proc = start_tick(venue, openai, None)
        try:
            wait_for(lambda: len(fake.orders) == 1, 60, "the order at the venue")
        finally:
            proc.kill()
            proc.communicate(timeout=30)
        assert proc.returncode == -9
        assert rows(db, "SELECT count(*) AS n FROM trades")[0]["n"] == 0
        assert rows(db, "SELECT status FROM order_intents") == [{"status": "pending"}]

        restart(venue, openai)
        figures = check_books(venue)
        assert figures["orders_checked"] == 2  # the buy and its stop
        assert "in flight" in killed_cycle(db)["reason"]
        assert [r["kind"] for r in rows(db, "SELECT kind FROM reconciliations")] == [
            "order_recovered"
        ]
    tally(cycles_run=2, faults_injected=1, **figures)


def test_a_sell_killed_after_submit_is_booked_with_its_pnl(
    venue: Venue, openai: FakeOpenAI
) -> None:
    openai.push(buy())
    proc = start_tick(venue, openai, None)  # a clean buy first
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert rows(venue.db, "SELECT count(*) AS n FROM positions")[0]["n"] == 1

    openai.push(decision(action="SELL", confidence=0.9))  # an interval later: due again
    killed_tick(venue, openai, "order.after_submit", at=T + MINUTE)
    restart(venue, openai, at=T + 2 * MINUTE)
    figures = check_books(venue)
    sells = rows(venue.db, "SELECT * FROM trades WHERE side = 'sell'")
    assert len(sells) == 1 and sells[0]["realized_pnl"] is not None
    assert sells[0]["cycle_id"] == killed_cycle(venue.db)["id"]
    assert rows(venue.db, "SELECT * FROM positions") == []
    kinds = [r["kind"] for r in rows(venue.db, "SELECT kind FROM reconciliations")]
    assert kinds == ["order_recovered"]  # not "cleared": the sell is in the books
    tally(cycles_run=3, faults_injected=1, **figures)


@pytest.mark.notebooks
def test_a_cycle_notebook_whose_kernel_dies_fails_with_the_stage_and_is_recovered(
    tmp_path: Path, jupyter_env: dict[str, str], openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default tick (papermill): the kernel dies after submit; the tick records it and lives."""
    venue = Venue(tmp_path / "bot.db")
    with Store(venue.db) as store:
        ensure_assets(store, [SYMBOL], interval_minutes=1)
    for name, value in child_env(venue, openai, "order.after_submit").items():
        if name.startswith(("BOTLIB_", "OPENAI_", "JUPYTER", "IPYTHON")):
            monkeypatch.setenv(name, value)
    for name in JUPYTER_DIRS:
        monkeypatch.setenv(name, jupyter_env[name])
    monkeypatch.chdir(tmp_path)
    openai.push(buy())
    settings = load_settings(
        None, db_path=venue.db, runs_dir=tmp_path / "runs", kernel=KERNEL, tick_notebooks=True
    )
    reports = tick(settings, ManualClock(T))  # the notebook gets `at` from this clock
    monkeypatch.delenv("BOTLIB_FAILPOINTS")  # this process must not reach it
    assert reports is not None and [r.status.value for r in reports] == ["failed"]
    cycle = killed_cycle(venue.db)
    assert "DeadKernelError" in cycle["reason"] and "in flight" in cycle["reason"], cycle
    assert len(venue.orders()) == 1

    restart(venue, openai, at=T + 2 * MINUTE)  # the failed asset is due next interval
    figures = check_books(venue)
    assert figures["orders_checked"] == 2  # the buy and its stop
    assert rows(venue.db, "SELECT cycle_id FROM trades")[0]["cycle_id"] == cycle["id"]
    tally(cycles_run=2, faults_injected=1, **figures)


@pytest.mark.parametrize("stage", ["order.before_submit", "order.after_submit"])
def test_a_restart_that_buys_again_still_leaves_one_order(
    venue: Venue, openai: FakeOpenAI, stage: str
) -> None:
    """The model asks BUY again after the crash (maybe on the same bar: the same client id)."""
    openai.push(buy())
    killed_tick(venue, openai, stage)
    openai.push(buy())
    restart(venue, openai)
    figures = check_books(venue)
    assert figures["orders_checked"] == 2 and len(rows(venue.db, "SELECT * FROM trades")) == 1
    tally(cycles_run=2, faults_injected=1, **figures)


# resting protection: the new stages -------------------------------------------------------
def bought(venue: Venue, openai: FakeOpenAI, **fields: Any) -> None:
    """A clean tick at T that buys (the model's stop 2 % under) and leaves its stop resting."""
    openai.push(buy(**fields))
    proc = start_tick(venue, openai, None)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert len(venue.resting_stops()) == 1


def test_a_stop_replace_killed_between_cancel_and_place_is_repaired(
    venue: Venue, openai: FakeOpenAI
) -> None:
    bought(venue, openai)
    [first] = venue.resting_stops()
    raised = lambda r: round(prompt_price(r) * 0.99, 2)  # noqa: E731 - a HOLD that raises it
    openai.push(decision(action="HOLD", confidence=0.0, position_size_pct=0, stop_loss=raised))
    killed_tick(venue, openai, "order.after_cancel", at=T + MINUTE)
    assert venue.resting_stops() == []  # cancelled at the venue, the next one not placed

    restart(venue, openai, at=T + 2 * MINUTE)
    figures = check_books(venue)
    [second] = venue.resting_stops()
    assert second["client_order_id"] == first["client_order_id"].replace("-p1", "-p2")
    stop = rows(venue.db, "SELECT stop_loss FROM positions")[0]["stop_loss"]
    assert rows(venue.db, "SELECT stop_price FROM order_intents WHERE client_order_id = ?",
                (second["client_order_id"],)) == [{"stop_price": stop}]  # fmt: skip
    assert stop > rows(venue.db, "SELECT stop_loss FROM ai_decision_logs WHERE action = 'BUY'")[
        0]["stop_loss"]  # fmt: skip
    tally(cycles_run=3, faults_injected=1, **figures)


def venue_price(venue: Venue, at: datetime) -> float:
    """The latest price the bot sees at `at` on this venue."""
    if venue.alpaca is not None:
        return venue.alpaca.bars.price_at(SYMBOL, at)
    from botlib.venues.sim import SimMarket

    return SimMarket().latest_price(SYMBOL, at)


def test_a_take_profit_killed_after_the_cancel_sells_once_after_the_restart(
    venue: Venue, openai: FakeOpenAI
) -> None:
    bought(venue, openai, take_profit=lambda r: round(prompt_price(r) * 1.0005, 2))
    target = rows(venue.db, "SELECT take_profit, stop_loss FROM positions")[0]
    prices = [venue_price(venue, T + k * MINUTE) for k in range(600)]
    k = next(k for k in range(2, 599) if min(prices[k : k + 2]) >= target["take_profit"])
    reached = T + k * MINUTE
    assert min(prices[1 : k + 1]) > target["stop_loss"]  # the stop does not fire first
    killed_tick(venue, openai, "order.after_cancel", at=reached)
    assert venue.resting_stops() == [] and venue.position_qty() > 0  # unprotected, not sold

    restart(venue, openai, at=reached + MINUTE)  # a new stop first, then the take-profit
    # (the price is still at the target a minute later: `k` was chosen so)
    figures = check_books(venue)
    sells = rows(venue.db, "SELECT reason FROM trades WHERE side = 'sell'")
    assert sells == [{"reason": "take_profit"}] and venue.position_qty() == pytest.approx(
        0, abs=1e-6
    )
    stops = [o for o in venue.orders() if o["type"] == "stop_limit"]
    assert [o["status"] for o in stops] == ["canceled", "canceled"]  # p1, then p2 for the sale
    tally(cycles_run=3, faults_injected=1, **figures)


def test_a_gapped_stop_is_exited_by_the_guard_at_alpaca(tmp_path: Path, openai: FakeOpenAI) -> None:
    """The path gaps through the stop and its limit: the venue cannot fill; the guard sells."""
    with paper_venue(tmp_path, 60) as venue:
        db, fake = venue.db, venue.alpaca
        assert fake is not None
        bought(venue, openai)
        [stop] = venue.resting_stops()
        fake.gap(SYMBOL, T + 5 * MINUTE, 0.9)  # 10 % down in one minute, under stop and limit
        venue.set_clock(T + 7 * MINUTE)
        assert fake.triggered(stop["id"]) and len(venue.resting_stops()) == 1  # gapped
        guard = subprocess.run(
            [sys.executable, "-m", "botlib", "guard", "--once", "--at",
             (T + 7 * MINUTE).isoformat()],
            env=child_env(venue, openai, None), cwd=tmp_path, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert guard.returncode == 0, guard.stderr[-3000:]
        assert guard.stdout.startswith(f"{SYMBOL} gap_exit")
        figures = check_books(venue)
        assert rows(db, "SELECT reason FROM trades WHERE side = 'sell'") == [{"reason": "gap_exit"}]
        assert [a["kind"] for a in rows(db, "SELECT kind FROM alerts")] == ["gap_exit"]
    tally(cycles_run=1, faults_injected=1, **figures)


def prompt_zone(request: dict[str, Any]) -> dict[str, float]:
    """The bullish FVG under the price, as the prompt's `smc:` line shows it to the model."""
    import json

    lines = request["messages"][1]["content"].splitlines()
    smc = next(line for line in lines if line.startswith("smc: "))
    return json.loads(smc.removeprefix("smc: "))["fvg_below"]


def test_a_limit_entry_that_fills_cycles_later_is_booked_with_its_decision(
    tmp_path: Path, openai: FakeOpenAI
) -> None:
    """At Alpaca (real SDK, fake venue): a limit buy at the FVG's top rests, fills two hours
    later from the price path, and the next cycle books it for the cycle and decision that
    placed it, with that decision's stop resting at the venue."""
    at = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # the fake's path has an FVG under the price
    with paper_venue(tmp_path, 60) as venue:
        db, fake = venue.db, venue.alpaca
        assert fake is not None
        under = lambda r: round(prompt_zone(r)["bottom"] * 0.995, 2)  # noqa: E731
        openai.push(buy(order_type="limit", limit_price=lambda r: prompt_zone(r)["top"],
                        stop_loss=under))  # fmt: skip
        restart(venue, openai, at=at)
        [placed] = rows(db, "SELECT * FROM order_intents WHERE order_type = 'limit'")
        assert placed["status"] == "pending" and venue.position_qty() == 0
        cycles = 1
        while venue.position_qty() == 0 or rows(db, "SELECT id FROM trades") == []:
            assert cycles <= 3, "the limit should fill within its 3 bars"
            restart(venue, openai, at=at + cycles * timedelta(hours=1))  # HOLD from now on
            cycles += 1
        assert cycles >= 3, "filled at once: this proves nothing about a later fill"
        [trade] = rows(db, "SELECT * FROM trades")
        assert (trade["cycle_id"], trade["decision_id"]) == (placed["cycle_id"],
                                                             placed["decision_id"])  # fmt: skip
        assert trade["price"] <= placed["limit_price"] and trade["reason"] == "signal"
        position = rows(db, "SELECT * FROM positions")[0]
        assert position["stop_loss"] == placed["stop_loss"]  # the decision's, not a default
        figures = check_books(venue)  # and its stop rests at the venue
        assert rows(db, "SELECT kind FROM reconciliations") == []  # booked, not adopted
    tally(cycles_run=cycles, **figures)


def test_fees_alpaca_posts_late_are_booked_when_they_appear(
    tmp_path: Path, openai: FakeOpenAI
) -> None:
    """Alpaca has posted crypto fees at the end of the day: the fills are booked at once with
    their fee pending, and a later guard pass books the fees (and the sell's P&L net of them)
    to the cent."""
    with paper_venue(tmp_path, 1) as venue:
        db, fake = venue.db, venue.alpaca
        assert fake is not None
        fake.fees_posted = False
        openai.push(buy())
        restart(venue, openai, at=T)
        openai.push(decision(action="SELL", confidence=0.9))
        settings = restart(venue, openai, at=T + MINUTE)
        booked = rows(db, "SELECT side, fee, fee_pending, realized_pnl FROM trades ORDER BY id")
        assert [(t["side"], t["fee"], t["fee_pending"]) for t in booked] == [
            ("buy", 0.0, 1),
            ("sell", 0.0, 1),
        ]
        assert booked[1]["realized_pnl"] > fake.cash - fake._start_cash  # no sell fee in it yet
        fake.fees_posted = True
        from botlib.app.guarding import guard_once

        venue.set_clock(T + 2 * MINUTE)
        [result] = guard_once(settings, ManualClock(T + 2 * MINUTE)) or []
        assert result.symbol == SYMBOL and result.action is None
        assert rows(db, "SELECT count(*) AS n FROM trades WHERE fee_pending = 1") == [{"n": 0}]
        figures = check_books(venue)  # fees and the P&L now equal Alpaca's to the cent
    tally(cycles_run=2, **figures)


def test_an_order_still_open_after_the_fill_wait_is_booked_with_its_decision(
    tmp_path: Path, openai: FakeOpenAI
) -> None:
    """Regression: an open market order of the bot's was once taken for an unknown order."""
    with paper_venue(tmp_path, 60) as venue:
        db, fake = venue.db, venue.alpaca
        assert fake is not None
        fake.fill_mode = "accepted"  # the venue takes the order and fills it later
        openai.push(buy())
        settings = restart(venue, openai, at=T)
        [cycle] = rows(db, "SELECT id, decision_id, reason FROM cycles")
        assert "market buy still new: booked when it fills" in cycle["reason"]
        from botlib.app.guarding import guard_once

        venue.set_clock(T + MINUTE)
        assert guard_once(settings, ManualClock(T + MINUTE)) is not None  # still open: waits
        assert rows(db, "SELECT * FROM trades") == [] and venue.resting_stops() == []
        fake.fill_open_orders()
        fake.fill_mode = "immediate"
        venue.set_clock(T + 2 * MINUTE)
        guard_once(settings, ManualClock(T + 2 * MINUTE))
        [trade] = rows(db, "SELECT cycle_id, decision_id FROM trades")
        assert trade == {"cycle_id": cycle["id"], "decision_id": cycle["decision_id"]}
        stop = rows(db, "SELECT stop_loss FROM ai_decision_logs")[0]["stop_loss"]
        assert rows(db, "SELECT stop_loss FROM positions") == [{"stop_loss": stop}]
        kinds = rows(db, "SELECT kind FROM reconciliations")
        assert kinds == [{"kind": "order_recovered"}]  # booked from its intent: not unknown,
        assert rows(db, "SELECT kind FROM alerts") == []  # not adopted with default stops
        figures = check_books(venue)  # and the decision's stop now rests at the venue
    tally(cycles_run=1, **figures)
