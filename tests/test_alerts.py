import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from botlib.analysts.budget import BudgetGuard
from botlib.analysts.rules import RulesAnalyst
from botlib.app.wiring import ensure_assets
from botlib.clock import ManualClock, iso
from botlib.core.engine import Engine
from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.ops.alerts import Alerts, recent_alerts
from botlib.ports import BUDGET_REACHED
from botlib.reporting.ai_logs import spend_today
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.conftest import T0
from tests.test_engine import ScriptedAnalyst, buy, plan_analyst
from tests.ui_helpers import free_port
from tests.webhook_server import WebhookServer

CANARY = "/services/T000/B000/canary-webhook-token-7f3a9c"  # must never be stored or logged


class FlakyMarket(SimMarket):
    """The simulator, with NaN closes while `broken` (a fault at the market data border)."""

    broken = True

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        frame = super().bars(symbol, timeframe, end, limit)
        if self.broken:
            frame.loc[frame.index[-2:], "close"] = float("nan")
        return frame


class LaggingMarket(SimMarket):
    """The simulator, six hours late: its last bar is stale at every cycle."""

    def bars(self, symbol: str, timeframe: str, end: datetime, limit: int) -> pd.DataFrame:
        return super().bars(symbol, timeframe, end - timedelta(hours=6), limit)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture botlib's records even after `configure_logging` stopped them propagating."""
    logger = logging.getLogger("botlib")
    logger.addHandler(caplog.handler)
    with caplog.at_level(logging.DEBUG, logger="botlib"):
        yield caplog
    logger.removeHandler(caplog.handler)


def engine_with(store: Store, clock: ManualClock, alerts: Alerts, **kw) -> Engine:  # type: ignore[no-untyped-def]
    market = kw.pop("market", None) or SimMarket()
    analyst = kw.pop("analyst", None) or RulesAnalyst()
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    broker = SimBroker(store, market, clock)
    return Engine(market, broker, analyst, store, clock=clock, alerts=alerts, **kw)


def broke(store: Store, clock: ManualClock) -> BudgetGuard:
    """The rules analyst behind a 0 USD budget: every call is refused (real spend query)."""
    return BudgetGuard(RulesAnalyst(), lambda now: spend_today(store, now), 0.0, clock)


def alert_rows(store: Store) -> list[dict]:  # type: ignore[type-arg]
    return store.rows("SELECT * FROM alerts ORDER BY id")


def test_an_alert_is_recorded_once_per_day(store: Store) -> None:
    alerts = Alerts(store)
    first = alerts.raise_alert("daily_loss", "down 6%", now=T0, severity="critical")
    assert first is not None
    assert alerts.raise_alert("daily_loss", "down 7%", now=T0 + timedelta(hours=3)) is None
    assert alerts.raise_alert("daily_loss", "BTC only", now=T0, symbol="BTC/USD") is not None
    assert alerts.raise_alert("daily_loss", "next day", now=T0 + timedelta(days=1)) is not None
    rows = alert_rows(store)
    assert [(r["message"], r["symbol"]) for r in rows] == [
        ("down 6%", None),
        ("BTC only", "BTC/USD"),
        ("next day", None),
    ]
    assert rows[0]["severity"] == "critical" and rows[0]["delivery"] is None  # no webhook


def test_bad_alert_input_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown alert kind 'fire'"):
        Alerts(store).raise_alert("fire", "x", now=T0)
    with pytest.raises(ValueError, match="severity"):
        Alerts(store).raise_alert("drawdown", "x", now=T0, severity="panic")
    with pytest.raises(ConfigError, match="http") as err:
        Alerts(store, "file:///etc/passwd" + CANARY)
    assert CANARY not in str(err.value)
    assert alert_rows(store) == []


def test_webhook_receives_the_alert_as_json(store: Store) -> None:
    with WebhookServer() as hook:
        alerts = Alerts(store, hook.url(CANARY), timeout_s=30)
        assert alerts.timeout_s == 5.0  # capped: a webhook never holds a cycle for long
        alert_id = alerts.raise_alert(
            "cycle_failures", "BTC/USD failed 3 times", now=T0, severity="critical",
            symbol="BTC/USD", cycle_id="c-1",
        )  # fmt: skip
    assert len(hook.received) == 1
    got = hook.received[0]
    assert (got.path, got.content_type) == (CANARY, "application/json")
    assert got.body == {
        "source": "botlib",
        "id": alert_id,
        "ts": iso(T0),
        "kind": "cycle_failures",
        "severity": "critical",
        "symbol": "BTC/USD",
        "message": "BTC/USD failed 3 times",
        "cycle_id": "c-1",
    }
    assert alert_rows(store)[0]["delivery"] == "sent"


def test_drawdown_alert_is_raised_once_not_every_cycle(store: Store, clock: ManualClock) -> None:
    plan = {"SOL/USD": "HOLD", "BTC/USD": "BUY"}
    risk = RiskLimits(max_drawdown_pct=0.01)  # a buy's fee is a drawdown beyond 0.01 %
    engine = engine_with(store, clock, Alerts(store), analyst=plan_analyst(plan), risk=risk)
    engine.run_cycle("SOL/USD")  # the peak: 100,000 before any fee
    engine.run_cycle("BTC/USD")
    plan["SOL/USD"] = "BUY"
    reasons = [engine.run_cycle("SOL/USD", force=True).reason for _ in range(3)]
    assert all("drawdown limit 0.01%" in r for r in reasons), reasons
    rows = alert_rows(store)
    assert [(r["kind"], r["severity"], r["symbol"]) for r in rows] == [
        ("drawdown", "critical", None)
    ]
    assert "below its peak 100,000.00" in rows[0]["message"]


@pytest.mark.parametrize("failure", ["http 500", "closed port"])
def test_a_failed_delivery_is_recorded_and_the_cycle_still_runs(
    store: Store, clock: ManualClock, logs: pytest.LogCaptureFixture, failure: str
) -> None:
    with WebhookServer(status=500) as hook:
        url = (
            hook.url(CANARY) if failure == "http 500" else f"http://127.0.0.1:{free_port()}{CANARY}"
        )
        engine = engine_with(store, clock, Alerts(store, url), analyst=broke(store, clock))
        report = engine.run_cycle("BTC/USD")
    assert report.status.value == "ok" and report.action == "HOLD"
    rows = alert_rows(store)
    assert [(r["kind"], r["severity"]) for r in rows] == [("llm_budget", "warning")]
    assert rows[0]["message"].startswith(BUDGET_REACHED)
    delivery = rows[0]["delivery"]
    if failure == "http 500":
        assert delivery == "failed: HTTP 500"
    else:
        assert delivery.startswith("failed: ") and "refused" in delivery.lower()
    assert len(hook.received) == (1 if failure == "http 500" else 0)
    assert "was not delivered" in logs.text  # the capture works, and holds no URL
    assert CANARY not in logs.text and "canary" not in logs.text
    dump = "\n".join(store.db.conn.iterdump())
    assert "canary" not in dump


def test_llm_budget_alert_once_a_day_for_the_account(store: Store, clock: ManualClock) -> None:
    engine = engine_with(store, clock, Alerts(store), analyst=broke(store, clock))
    engine.run_cycle("BTC/USD")
    engine.run_cycle("SOL/USD")
    clock.advance(timedelta(hours=1))
    engine.run_cycle("BTC/USD")
    refused = store.rows("SELECT error FROM ai_decision_logs")
    assert len(refused) == 3 and all(r["error"].startswith(BUDGET_REACHED) for r in refused)
    assert [(r["kind"], r["symbol"]) for r in alert_rows(store)] == [("llm_budget", None)]


def test_no_budget_alert_while_the_budget_lasts(store: Store, clock: ManualClock) -> None:
    guard = BudgetGuard(RulesAnalyst(), lambda now: spend_today(store, now), 5.0, clock)
    engine_with(store, clock, Alerts(store), analyst=guard).run_cycle("BTC/USD")
    assert alert_rows(store) == []


def test_cycle_failures_alert_once_per_streak(store: Store, clock: ManualClock) -> None:
    market = FlakyMarket()
    engine = engine_with(store, clock, Alerts(store), market=market, failure_alert_after=3)

    def run() -> str:
        clock.advance(timedelta(hours=1))
        return engine.run_cycle("BTC/USD").status.value

    assert [run(), run()] == ["failed", "failed"]
    assert alert_rows(store) == []
    assert run() == "failed"
    rows = alert_rows(store)
    assert [(r["kind"], r["severity"], r["symbol"]) for r in rows] == [
        ("cycle_failures", "critical", "BTC/USD")
    ]
    assert "last 3 cycles failed" in rows[0]["message"] and "NaN" in rows[0]["message"]
    assert [run(), run()] == ["failed", "failed"]
    assert len(alert_rows(store)) == 1  # the same streak
    market.broken = False
    assert run() == "ok"
    market.broken = True
    assert [run(), run(), run()] == ["failed"] * 3
    assert len(alert_rows(store)) == 2  # a new streak


def test_stale_data_alert_once_an_hour(store: Store, clock: ManualClock) -> None:
    engine = engine_with(store, clock, Alerts(store), market=LaggingMarket())
    statuses = []
    for minutes in (0, 20, 40, 65):
        clock.set(T0 + timedelta(minutes=minutes))
        statuses.append(engine.run_cycle("BTC/USD", force=True).status.value)
    assert statuses == ["skipped"] * 4
    rows = alert_rows(store)
    assert [(r["kind"], r["severity"], r["symbol"]) for r in rows] == [
        ("stale_data", "warning", "BTC/USD")
    ] * 2
    assert [r["ts"] for r in rows] == [iso(T0), iso(T0 + timedelta(minutes=65))]
    assert "stale data" in rows[0]["message"]


def test_alerts_off_without_an_alerts_object(store: Store, clock: ManualClock) -> None:
    ensure_assets(store, ["BTC/USD"])
    market = LaggingMarket()
    engine = Engine(market, SimBroker(store, market, clock), RulesAnalyst(), store, clock=clock)
    assert engine.run_cycle("BTC/USD").status.value == "skipped"
    assert alert_rows(store) == []


def test_recent_alerts_newest_first_on_a_read_only_store(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store:
        alerts = Alerts(store)
        for hours, symbol in ((0, "BTC/USD"), (1, "SOL/USD"), (2, "ETH/USD")):
            alerts.raise_alert("stale_data", symbol, now=T0 + timedelta(hours=hours), symbol=symbol)
    with Store(path, read_only=True) as reader:
        newest = recent_alerts(reader, limit=2)
    assert [a["symbol"] for a in newest] == ["ETH/USD", "SOL/USD"]


def test_a_scripted_buy_raises_no_alert(store: Store, clock: ManualClock) -> None:
    """Regression guard: an ordinary trading cycle is not an alert."""
    engine = engine_with(store, clock, Alerts(store), analyst=ScriptedAnalyst(buy))
    assert engine.run_cycle("BTC/USD").orders
    assert alert_rows(store) == []
