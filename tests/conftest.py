"""Shared fixtures: temp databases, a fixed clock, the simulator, isolated Jupyter dirs."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from botlib.analysts.rules import RulesAnalyst
from botlib.app.backfill import backfill
from botlib.app.config import Settings, load_settings
from botlib.app.wiring import build_engine, ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.ledger import TALLY

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "botlib"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
JUPYTER_DIRS = ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")
CANARY_KEY = "sk-test-canary-0123456789abcdefXYZ"  # must never reach the DB, logs or exports

# A shell's background job (`make test &`, `nohup ... &`) starts with SIGINT ignored, and every
# process below it inherits that: the Ctrl-C tests then send SIGINT to children that never see
# it (found 2026-12-03: test_demo and test_serve's SIGINT case timed out only when launched so).
# A Python handler here is reset to the default in each child, so they get Ctrl-C as from a
# terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def jupyter_dirs(root: Path) -> dict[str, str]:
    """Jupyter's and IPython's folders, made fresh under `root`: a process started with them
    reads no user config or kernels and leaves nothing behind."""
    dirs = {name: root / name.lower() for name in JUPYTER_DIRS}
    for folder in dirs.values():
        folder.mkdir()
    return {name: str(folder) for name, folder in dirs.items()}


class _TallyFromWorkers:
    """Under pytest-xdist each worker tallies its own tests: the controller adds them up."""

    @pytest.hookimpl
    def pytest_testnodedown(self, node: object, error: object) -> None:
        TALLY.update(getattr(node, "workeroutput", {}).get("tally", {}))


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_TallyFromWorkers(), "botlib-tally")


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # a worker: hand its tally to the controller
        output["tally"] = dict(TALLY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the reliability tests exercised (the figures docs/reliability.md quotes)."""
    if TALLY:
        totals = ", ".join(f"{key}={TALLY[key]}" for key in sorted(TALLY))
        terminalreporter.write_line(f"reliability tally: {totals}")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's keys and settings out of tests; tests opt in explicitly."""
    for name in list(os.environ):
        if name.startswith(("BOTLIB_", "ALPACA_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture
def settings() -> Settings:
    return load_settings(None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "bot.db")
    yield s
    s.close()


@pytest.fixture
def market() -> SimMarket:
    return SimMarket()


@pytest.fixture
def sim_broker(store: Store, market: SimMarket, clock: ManualClock) -> SimBroker:
    return SimBroker(store, market, clock)


@pytest.fixture
def engine(store: Store, market: SimMarket, sim_broker: SimBroker, clock: ManualClock) -> Engine:
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return Engine(market, sim_broker, RulesAnalyst(), store, clock=clock)


def make_demo_db(path: Path, days: float = 1.0, end: datetime = T0) -> Path:
    """Backfill `days` of 15-minute cycles for BTC/USD and SOL/USD into `path` (real engine)."""
    st = Store(path)
    try:
        ensure_assets(st, ["BTC/USD", "SOL/USD"], timeframe="15Min", interval_minutes=15)
        backfill(load_settings(None), st, ["BTC/USD", "SOL/USD"], end - timedelta(days=days),
                 end, timedelta(minutes=15))  # fmt: skip
    finally:
        st.close()
    return path


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a day of simulated trading for both assets (shared, do not write).

    Built once per run, not once per pytest-xdist worker: the first worker to get the lock
    builds it in the run's shared temp folder, the others wait and reuse it.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's folder
    path, done = shared / "demo" / "demo.db", shared / "demo" / "built"
    path.parent.mkdir(exist_ok=True)
    with FileLock(f"{path}.lock"):
        if not done.exists():
            make_demo_db(path)
            done.touch()  # a worker that waited on the lock sees a whole database
    return path


@pytest.fixture
def jupyter_env(tmp_path: Path) -> dict[str, str]:
    """Environment for Jupyter subprocesses: nothing written under ~, the venv's kernel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "OPENAI_"))}
    env |= jupyter_dirs(tmp_path)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI the real SDK talks to (answers a valid HOLD unless told otherwise)."""
    with FakeOpenAI() as fake:
        yield fake


def openai_settings(fake: FakeOpenAI, **overrides: object) -> Settings:
    """Settings for the OpenAI analyst against `fake`: short timeout, no SDK retries."""
    fields: dict[str, object] = {
        "analyst": "openai",
        "openai_api_key": CANARY_KEY,
        "openai_base_url": fake.base_url,
        "openai_timeout_s": 5.0,
        "openai_max_retries": 0,
    }
    return load_settings(None, **(fields | overrides))


def openai_engine(
    fake: FakeOpenAI, store: Store, clock: ManualClock, **overrides: object
) -> Engine:
    """The real wiring (SDK, prices, cache, budget guard) pointed at the fake."""
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return build_engine(openai_settings(fake, **overrides), store, clock)
