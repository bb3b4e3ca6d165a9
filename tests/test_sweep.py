"""Backtest sweeps on Dask: each run equals the same run done serially, a failed run is a row
with its error while the others finish, and an external scheduler runs the same tasks."""

from __future__ import annotations

import pickle
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from botlib.analysts.rules import RuleParams, RulesAnalyst
from botlib.backtest import Sizing, load_backtest, run_backtest
from botlib.backtest.sweep import COLUMNS, SweepResult, SweepRun, grid, run_sweep
from botlib.errors import ConfigError
from tests.conftest import ROOT

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = (END - timedelta(days=1), END)
SIZES = (Sizing(10, 25), Sizing(50, 50))


@pytest.fixture(scope="module")
def runs() -> list[SweepRun]:
    """2 symbols x 2 sizes on one day of 15-minute bars, then a run no worker can replay."""
    bad = SweepRun("BTC/USD", *DAY, timeframe="7Min", label="bad timeframe")
    return [*grid(["BTC/USD", "SOL/USD"], [DAY], timeframes=["15Min"], sizings=SIZES), bad]


@pytest.fixture(scope="module")
def sweep(runs: list[SweepRun], tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return run_sweep(runs, tmp_path_factory.mktemp("sweep"), workers=2)


@pytest.mark.slow
def test_each_run_equals_the_same_run_done_serially(
    runs: list[SweepRun], sweep: SweepResult, tmp_path: Path
) -> None:
    assert len(sweep.finished) == 4
    for run, row in zip(runs[:4], sweep.finished.itertuples(), strict=True):
        serial = run_backtest(**run.kwargs(), directory=tmp_path)
        m = serial.metrics
        expected = (serial.return_pct, serial.buy_and_hold_pct, m.n_trades, m.win_rate * 100,
                    m.max_drawdown_pct, m.sharpe, serial.trades["fee"].sum())  # fmt: skip
        got = (row.return_pct, row.buy_and_hold_pct, row.trades, row.win_rate_pct,
               row.max_drawdown_pct, row.sharpe, row.fees)  # fmt: skip
        assert got == expected  # exactly: the same replay, in another process
        assert (row.label, row.position_pct) == (run.name(), run.sizing.position_pct)
        stored = load_backtest(row.db_path)
        assert stored.backtest_id == row.backtest_id != serial.backtest_id
        pd.testing.assert_frame_equal(stored.trades, load_backtest(serial.db_path).trades)
        pd.testing.assert_series_equal(stored.equity, load_backtest(serial.db_path).equity)
    assert sweep.finished["trades"].sum() > 0  # the day traded: the comparison compared trades


@pytest.mark.slow
def test_a_failed_run_is_a_row_with_its_error_and_the_others_finish(
    runs: list[SweepRun], sweep: SweepResult
) -> None:
    assert list(sweep.table.columns) == COLUMNS
    assert list(sweep.table["label"]) == [run.name() for run in runs]  # the order given
    (failed,) = sweep.failed.itertuples()
    assert failed.label == "bad timeframe"
    assert failed.error.startswith("ConfigError: ") and "7Min" in failed.error
    assert pd.isna(failed.backtest_id) and pd.isna(failed.return_pct)
    databases = sorted(Path(p).name for p in sweep.finished["db_path"])
    folder = Path(sweep.table["db_path"][0]).parent
    assert databases == sorted(p.name for p in folder.glob("*.db"))  # none left by the failure


@pytest.mark.slow
def test_an_external_scheduler_runs_the_same_tasks(runs: list[SweepRun], tmp_path: Path) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp://", dashboard_address=":0"
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        result = run_sweep(runs[:1], tmp_path, scheduler=cluster.scheduler_address)
    (row,) = result.table.itertuples()
    assert row.error is None and Path(row.db_path).parent == tmp_path.resolve()
    assert load_backtest(row.db_path).return_pct == row.return_pct


def test_grid_is_the_cartesian_product_and_runs_pickle() -> None:
    loose = RuleParams(atr_target=1.5)
    runs = grid(
        ["BTC/USD", "ETH/USD"], [DAY, (DAY[0] - timedelta(days=1), DAY[0])],
        sizings=SIZES, rules=[RuleParams(), loose], cash=5_000,
    )  # fmt: skip
    assert len(runs) == 2 * 2 * 2 * 2 and len({run.name() for run in runs}) == 16
    assert all(run.cash == 5_000 and run.timeframe == "1Min" for run in runs)
    assert runs[1].name().endswith("pos=10% atr_target=1.5") and runs[1].rules == loose
    copy = pickle.loads(pickle.dumps(runs[1]))
    assert copy.name() == runs[1].name() and copy.analyst.params == loose


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": []}, "at least one run"),
        ({"workers": 0}, "workers must be >= 1"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "has its own workers"),
    ],
)
def test_a_sweep_refuses_bad_arguments_before_starting_a_cluster(
    kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    args = {"runs": [SweepRun("BTC/USD", *DAY)], "directory": tmp_path} | kwargs
    with pytest.raises(ConfigError, match=message):
        run_sweep(**args)  # type: ignore[arg-type]


def test_a_sweep_runs_the_rules_analyst_only() -> None:
    with pytest.raises(ConfigError, match="rules analyst"):
        SweepRun("BTC/USD", *DAY, analyst="openai")
    assert SweepRun("BTC/USD", *DAY, analyst=RulesAnalyst()).rules == RuleParams()


def test_without_the_sweep_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'botlib\[sweep\]'"):
        run_sweep([SweepRun("BTC/USD", *DAY)], tmp_path)


@pytest.mark.slow
def test_the_readme_sweep_example_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text().split("### Sweeps on Dask", 1)[1]
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)  # its databases go to data/backtests/sweep under here
    names: dict[str, object] = {"__name__": "__main__"}
    exec(compile(example, "README.md", "exec"), names)
    sweep = names["sweep"]
    assert isinstance(sweep, SweepResult) and sweep.failed.empty and len(sweep.table) == 8
    assert len(list((tmp_path / "data" / "backtests" / "sweep").glob("*.db"))) == 8
    assert "atr_target=1.5" in capsys.readouterr().out
