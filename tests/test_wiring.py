import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from botlib.analysts.budget import BudgetGuard
from botlib.app.backfill import backfill, backfill_to_now
from botlib.app.config import load_settings
from botlib.app.cycles import CycleRunner, raise_if_unconfigured, run_cycles
from botlib.app.wiring import build_engine, ensure_assets
from botlib.clock import ManualClock
from botlib.errors import ConfigError
from botlib.ops.limits import save_limits
from botlib.reporting.cycle_record import reports_table
from botlib.storage.store import Store
from tests.conftest import T0, openai_settings
from tests.fakes.openai_server import FakeOpenAI


def test_backfill_fills_the_gap_once(tmp_path: Path) -> None:
    settings = load_settings(None, db_path=tmp_path / "b.db")
    with Store(settings.db_path) as store:
        ensure_assets(store, ["SOL/USD"], timeframe="1Hour", interval_minutes=60)
        first = backfill_to_now(settings, store, days=0.5)
        assert 12 <= len(first) <= 13
        assert all(r.status.value == "ok" for r in first)
        assert backfill_to_now(settings, store, days=0.5) == []  # nothing missing any more
        table = reports_table(first)
        assert list(table.columns[:3]) == ["symbol", "status", "action"]
        assert len(table) == len(first)
        with pytest.raises(ConfigError, match="positive"):
            backfill_to_now(settings, store, days=0)


def test_ensure_assets_keeps_existing_settings(tmp_path: Path) -> None:
    with Store(tmp_path / "b.db") as store:
        ensure_assets(store, ["BTC/USD"], interval_minutes=5)
        ensure_assets(store, ["BTC/USD"], interval_minutes=30)
        assert store.get_asset("BTC/USD").interval_minutes == 5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"mode": "live", "alpaca_api_key": "k", "alpaca_secret_key": "s"},
            "BOTLIB_LIVE_CONFIRM=yes",
        ),
        ({"mode": "live", "live_confirm": "yes"}, "ALPACA_API_KEY and ALPACA_SECRET_KEY"),
        ({"mode": "paper", "alpaca_api_key": "k"}, "needs ALPACA_SECRET_KEY"),
    ],
)
def test_alpaca_modes_refuse_clearly(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    settings = load_settings(None, **fields)
    with Store(tmp_path / "b.db") as store, pytest.raises(ConfigError, match=message):
        build_engine(settings, store)


def test_openai_without_a_key_names_the_variable(tmp_path: Path) -> None:
    settings = load_settings(None, analyst="openai")
    with Store(tmp_path / "b.db") as store, pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_engine(settings, store)


def test_backfill_never_pays_for_an_llm(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = openai_settings(fake_openai)
    with Store(tmp_path / "b.db") as store:
        ensure_assets(store, ["BTC/USD"])
        reports = backfill(settings, store, ["BTC/USD"], T0, T0 + timedelta(hours=3),
                           timedelta(hours=1))  # fmt: skip
        analysts = {r["analyst"] for r in store.rows("SELECT analyst FROM ai_decision_logs")}
    assert len(reports) == 4 and analysts == {"rules"}
    assert fake_openai.requests == []


def test_backfill_refuses_to_replay_history_on_alpaca(tmp_path: Path) -> None:
    settings = load_settings(None, mode="paper", alpaca_api_key="k", alpaca_secret_key="s")
    with Store(tmp_path / "b.db") as store, pytest.raises(ConfigError, match="simulator"):
        backfill(settings, store, ["BTC/USD"], T0, T0 + timedelta(hours=1), timedelta(hours=1))


@pytest.fixture
def botlib_logging() -> Iterator[None]:
    """Undo `run_cycles`' logging setup, so later tests capture botlib's records as before."""
    logger = logging.getLogger("botlib")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]


def test_operator_limits_reach_the_next_engine(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = openai_settings(fake_openai)
    with Store(tmp_path / "b.db") as store:
        assert build_engine(settings, store).risk.max_daily_loss_pct == 5.0  # the env default
        save_limits(store, settings.limits, T0, max_daily_loss_pct=1, max_position_pct=7)
        save_limits(store, settings.limits, T0, llm_budget_usd=0.5)
        engine = build_engine(settings, store, ManualClock(T0))
    assert (engine.risk.max_daily_loss_pct, engine.risk.max_position_pct) == (1, 7)
    assert engine.risk.max_drawdown_pct == settings.max_drawdown_pct
    assert isinstance(engine.analyst, BudgetGuard) and engine.analyst.limit_usd == 0.5


def test_an_asset_without_its_analysts_key_fails_alone(tmp_path: Path) -> None:
    settings = load_settings(None, db_path=tmp_path / "b.db")  # rules by default, no key
    with Store(settings.db_path) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"])
        store.update_asset("BTC/USD", analyst="openai")
        runner = CycleRunner(settings, store, ManualClock(T0))
        btc, sol = runner.run("BTC/USD"), runner.run("SOL/USD")
        cycles = {r["symbol"]: r for r in store.rows("SELECT * FROM cycles")}
        logged = store.rows("SELECT symbol, analyst FROM ai_decision_logs")
        assert store.get_asset("BTC/USD").last_cycle_at == T0  # retried next interval
    assert (btc.status.value, sol.status.value) == ("failed", "ok")
    assert "OPENAI_API_KEY" in btc.reason
    failed = cycles["BTC/USD"]
    assert (failed["status"], failed["error"], failed["analyst"]) == (
        "failed",
        "ConfigError",
        "openai",
    )
    assert "OPENAI_API_KEY" in failed["reason"]
    assert cycles["SOL/USD"]["status"] == "ok" and logged == [
        {"symbol": "SOL/USD", "analyst": "rules"}
    ]
    raise_if_unconfigured([btc, sol])  # one asset ran: the setup as a whole works


def test_an_asset_set_to_rules_never_calls_the_model(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = openai_settings(fake_openai)
    with Store(tmp_path / "b.db") as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"])
        store.update_asset("BTC/USD", analyst="rules")
        runner = CycleRunner(settings, store, ManualClock(T0))
        reports = [runner.run(s) for s in ("BTC/USD", "SOL/USD")]
        logged = store.rows("SELECT symbol, analyst FROM ai_decision_logs ORDER BY symbol")
    assert [r.status.value for r in reports] == ["ok", "ok"]
    assert logged == [
        {"symbol": "BTC/USD", "analyst": "rules"},
        {"symbol": "SOL/USD", "analyst": "openai"},
    ]
    assert len(fake_openai.requests) == 1 and "SOL/USD" in json.dumps(fake_openai.requests[0])


def test_run_cycles_uses_each_assets_analyst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, botlib_logging: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    db = tmp_path / "n.db"
    with Store(db) as store:
        ensure_assets(store, ["BTC/USD", "SOL/USD"])
        store.update_asset("SOL/USD", analyst="openai")
    reports = run_cycles(["BTC/USD", "SOL/USD"], str(db), at=T0.isoformat())
    assert [(r.symbol, r.status.value) for r in reports] == [
        ("BTC/USD", "ok"),
        ("SOL/USD", "failed"),
    ]
    monkeypatch.setenv("BOTLIB_ANALYST", "openai")  # now nothing can run: one clear error
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run_cycles(["BTC/USD"], str(db), force=True, at=(T0 + timedelta(hours=1)).isoformat())
    with Store(db) as store:
        statuses = [
            r["status"] for r in store.rows("SELECT status FROM cycles ORDER BY started_at")
        ]
    assert statuses.count("failed") == 2  # the refused cycle is still on record
