from datetime import timedelta
from pathlib import Path

import pytest

from botlib.config import load_settings
from botlib.errors import ConfigError
from botlib.store import Store
from botlib.wiring import backfill, backfill_to_now, build_engine, ensure_assets, reports_table
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
