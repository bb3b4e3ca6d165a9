from pathlib import Path

import pytest

from botlib.app.config import load_settings
from botlib.errors import ConfigError


def test_defaults_are_the_simulator_and_the_rules_analyst() -> None:
    s = load_settings(None)
    assert (s.resolved_mode, s.resolved_analyst) == ("sim", "rules")
    assert s.db_path == Path("data/botlib.db")
    assert s.symbols == ("BTC/USD", "SOL/USD")


def test_keys_switch_defaults_to_paper_and_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "AKCANARY1234")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "SKCANARY5678")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-9999")
    s = load_settings(None)
    assert (s.resolved_mode, s.resolved_analyst) == ("paper", "openai")
    assert "CANARY" not in repr(s) and "canary" not in repr(s)
    assert sorted(s.secret_values()) == ["AKCANARY1234", "SKCANARY5678", "sk-canary-9999"]


def test_explicit_mode_wins_over_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    monkeypatch.setenv("BOTLIB_MODE", "sim")
    assert load_settings(None).resolved_mode == "sim"


def test_symbols_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTLIB_SYMBOLS", "btc/usd, eth/usd")
    assert load_settings(None).symbols == ("BTC/USD", "ETH/USD")


def test_env_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("BOTLIB_DB=/tmp/elsewhere.db\nBOTLIB_SIM_CASH=5000\n")
    s = load_settings(env)
    assert (s.db_path, s.sim_cash) == (Path("/tmp/elsewhere.db"), 5000.0)


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("BOTLIB_MODE", "yolo", "BOTLIB_MODE"),
        ("BOTLIB_SIM_CASH", "-1", "BOTLIB_SIM_CASH"),
        ("BOTLIB_SIM_FEE", "0.5", "BOTLIB_SIM_FEE"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=field):
        load_settings(None)


def test_overrides_by_field_name() -> None:
    assert load_settings(None, db_path="x.db").db_path == Path("x.db")


def test_scheduling_defaults_run_notebooks_and_keep_two_weeks() -> None:
    s = load_settings(None)
    assert (s.tick_notebooks, s.kernel, s.cycle_notebook) == (True, "botlib", None)
    assert (s.runs_dir, s.runs_keep_days, s.runs_keep_hours) == (Path("runs"), 14, 24)


def test_scheduling_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTLIB_TICK_NOTEBOOKS", "false")
    monkeypatch.setenv("BOTLIB_RUNS_DIR", "/srv/runs")
    monkeypatch.setenv("BOTLIB_RUNS_KEEP_DAYS", "30")
    monkeypatch.setenv("BOTLIB_RUNS_KEEP_HOURS", "0")
    monkeypatch.setenv("BOTLIB_KERNEL", "python3")
    monkeypatch.setenv("BOTLIB_CYCLE_NOTEBOOK", "mine.ipynb")
    s = load_settings(None)
    assert s.tick_notebooks is False and s.runs_dir == Path("/srv/runs")
    assert (s.runs_keep_days, s.runs_keep_hours) == (30, 0)
    assert (s.kernel, s.cycle_notebook) == ("python3", Path("mine.ipynb"))


@pytest.mark.parametrize(
    ("name", "value"),
    [("BOTLIB_RUNS_KEEP_DAYS", "0"), ("BOTLIB_RUNS_KEEP_HOURS", "-1"), ("BOTLIB_KERNEL", "")],
)
def test_bad_scheduling_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings(None)
