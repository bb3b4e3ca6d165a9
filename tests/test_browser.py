"""The dashboard in a real browser: drawn under Voila, then refreshed live by a new cycle."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from botlib.app.config import load_settings
from botlib.app.cycles import CycleRunner
from botlib.app.jupyter.serve import AI_LOGS_NOTEBOOK, run_server, stop_server, wait_until_up
from botlib.clock import ManualClock
from botlib.storage.store import Store
from botlib.ui.shaping.text import slug
from tests.conftest import CANARY_KEY, T0, openai_engine
from tests.fakes.openai_server import FakeOpenAI
from tests.ui_helpers import (
    copy_db,
    cpu_seconds,
    free_port,
    run_next_cycle,
    voila_kernels,
    wait_for,
    websocket_status,
)

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A chart is drawn once its close line has a path (the svg exists before that).
CHART_DRAWN = """(slug) => [...document.querySelectorAll(`.botlib-chart-${slug} path.line`)]
    .some(line => (line.getAttribute('d') || '').length > 10)"""
LINES_DRAWN = """() => [...document.querySelectorAll('.bqplot.figure path.line')]
    .filter(line => (line.getAttribute('d') || '').length > 0).length"""
DRAWN_IN = """(selector) => [...document.querySelectorAll(`${selector} path.line`)]
    .some(line => (line.getAttribute('d') || '').length > 10)"""
LABEL_IS = """([selector, text]) =>
    (document.querySelector(selector)?.innerText || '').trim() === text"""


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian chromium is not installed: run `apt-get install chromium`")
    return path


def _expected_noise(message: ConsoleMessage) -> bool:
    """The lab template's FontAwesome CSS comes from a CDN, unreachable offline (JUPYTER.md)."""
    url = message.location.get("url", "")
    return "ERR_NAME_NOT_RESOLVED" in message.text and "fontawesome" in url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    executable = _chromium()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass(frozen=True)
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def _voila(
    db: Path, env: dict[str, str], tmp_path: Path, notebook: Path | None = None, **config: Any
) -> Iterator[Served]:
    """Serve `notebook` (the dashboard by default) on a free port; stop it cleanly after."""
    port = free_port()
    server = run_server(
        db, port, notebook=notebook, env=env, runtime_dir=tmp_path / "voila", **config
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, timeout=60, process=server)
        yield Served(url, server)
    finally:
        assert stop_server(server, timeout=15) == 0


def _watch(page: Page) -> tuple[list[str], list[str]]:
    """Collect console errors and uncaught page errors; the expected font ones go apart."""
    errors: list[str] = []
    noise: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            (noise if _expected_noise(message) else errors).append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    return errors, noise


def test_dashboard_draws_and_refreshes_without_reload(
    browser: BrowserContext,
    demo_db: Path,
    jupyter_env: dict[str, str],
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    db = copy_db(demo_db, tmp_path / "live.db")
    started = time.monotonic()
    with _voila(db, jupyter_env, tmp_path) as served:
        url = served.url
        page = browser.new_page()
        errors, noise = _watch(page)
        page.goto(url)
        with Store(db, read_only=True) as store:
            slugs = [slug(asset.symbol) for asset in store.list_assets()]
        assert len(slugs) == 2
        for name in slugs:
            page.wait_for_function(CHART_DRAWN, arg=name, timeout=60_000)
            assert page.locator(f".botlib-light-{name}").count() == 1
        page.wait_for_function(DRAWN_IN, arg=".botlib-equity-chart", timeout=30_000)
        page.wait_for_function(DRAWN_IN, arg=".botlib-drawdown-chart", timeout=30_000)
        drawn_s = time.monotonic() - started
        assert page.evaluate(LINES_DRAWN) >= 2 * len(slugs) + 2
        assert page.locator(".botlib-activity tr").count() > 5
        page.screenshot(path=str(_artefact(tmp_path, "dashboard.png")), full_page=True)

        cycles = int(page.inner_text(".botlib-cycles-BTCUSD"))
        feed = page.inner_text(".botlib-activity")
        page.evaluate("() => { window.botlibSamePage = true; }")  # lost on any reload
        report = run_next_cycle(db, "BTC/USD")
        assert report.status.value == "ok", report.summary()
        written = time.monotonic()
        page.wait_for_function(
            LABEL_IS, arg=[".botlib-cycles-BTCUSD", str(cycles + 1)], timeout=30_000
        )
        refresh_s = time.monotonic() - written
        page.wait_for_function(  # the feed moves with the cycle (it may land a message later)
            "([sel, old]) => document.querySelector(sel).innerText !== old",
            arg=[".botlib-activity", feed],
            timeout=30_000,
        )
        assert "BTC/USD" in page.inner_text(".botlib-activity").splitlines()[2]
        assert page.evaluate("() => window.botlibSamePage === true"), "the page was reloaded"
        assert "live" in page.inner_text(".botlib-status")
        assert errors == []
        assert len(noise) <= 2  # all.min.css and v4-shims.min.css
        record_property("start_to_drawn_s", round(drawn_s, 2))
        record_property("write_to_browser_s", round(refresh_s, 2))
        print(f"\nVoila start -> charts drawn {drawn_s:.1f} s; new cycle -> page {refresh_s:.1f} s")


def test_ai_log_explorer_works_under_voila(
    browser: BrowserContext,
    demo_db: Path,
    jupyter_env: dict[str, str],
    tmp_path: Path,
    fake_openai: FakeOpenAI,
) -> None:
    db = copy_db(demo_db, tmp_path / "ai.db")
    with Store(db) as store:  # add priced LLM calls to the simulator's rules decisions
        engine = openai_engine(fake_openai, store, ManualClock(T0 + timedelta(minutes=15)))
        for symbol in ("BTC/USD", "SOL/USD"):
            engine.run_cycle(symbol, force=True)
        calls = store.db["ai_decision_logs"].count
    with _voila(db, jupyter_env, tmp_path, notebook=AI_LOGS_NOTEBOOK) as served:
        url = served.url
        page = browser.new_page()
        errors, noise = _watch(page)
        page.goto(url)
        page.wait_for_selector(".botlib-ai-table tr[data-id]", timeout=60_000)
        page.wait_for_function(
            """() => [...document.querySelectorAll('.botlib-ai-charts path.line')]
                .some(line => (line.getAttribute('d') || '').length > 10)""",
            timeout=30_000,
        )
        shown = page.locator(".botlib-ai-table tr[data-id]").count()
        assert shown == min(calls, 200)
        assert "gpt-4o" in page.inner_text(".botlib-ai-table")
        page.get_by_role("button", name="Prepare JSON / CSV export").click()
        page.wait_for_selector('a[download="ai_logs.csv"]', timeout=30_000)
        assert page.locator('a[download="ai_logs.json"]').count() == 1
        page.screenshot(path=str(tmp_path / "ai_logs.png"), full_page=True)
        assert CANARY_KEY not in page.content()
        assert errors == []
        assert len(noise) <= 2


def _artefact(tmp_path: Path, name: str) -> Path:
    """Where a screenshot goes: `$BOTLIB_ARTEFACTS` (CI keeps it) or the test's tmp dir."""
    folder = Path(os.environ.get("BOTLIB_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_closed_pages_do_not_leak_kernels(
    browser: BrowserContext, demo_db: Path, jupyter_env: dict[str, str], tmp_path: Path
) -> None:
    """Five pages opened and closed: the kernel count returns to the pool size (1).

    Three tabs close the way a browser does (the unload beacon shuts their kernels down), two
    just vanish (no beacon, like a killed browser): culling ends those once they are idle.
    """
    with _voila(demo_db, jupyter_env, tmp_path, cull_idle_timeout=20, cull_interval=1) as served:
        kernels = lambda: len(voila_kernels(served.process.pid))  # noqa: E731
        wait_for(lambda: kernels() == 1, 60, "the pre-heated kernel")
        pages = []
        for _ in range(5):
            page = browser.new_page()
            page.goto(served.url)
            page.wait_for_function(CHART_DRAWN, arg="BTCUSD", timeout=60_000)
            pages.append(page)
        opened = kernels()
        assert opened >= 5  # one per page, plus the refilled pool
        for page in pages[:3]:
            page.close(run_before_unload=True)
        # Well inside the 20 s idle timeout, so only the beacons can have done it.
        wait_for(lambda: kernels() <= opened - 3, 15, "the unload beacons' shutdowns")
        for page in pages[3:]:
            page.close()
        took = wait_for(lambda: kernels() == 1, 60, "culling back to the pool size")
        print(f"\n5 pages closed -> kernels back to the pool size {took:.1f} s after the last")
        for path in ("tree", "lab", "api/contents", "terminals"):  # no file browser or lab
            probe = browser.new_page()
            assert probe.goto(served.url + path).status in (403, 404)
            probe.close()


def test_non_v1_websocket_is_refused_and_the_page_stays_live(
    browser: BrowserContext, demo_db: Path, jupyter_env: dict[str, str], tmp_path: Path
) -> None:
    """Regression for the Voila 0.5.13 spin: a non-v1 client beside a live page, then updates."""
    db = copy_db(demo_db, tmp_path / "live.db")
    with _voila(db, jupyter_env, tmp_path) as served:
        page = browser.new_page()
        errors, _ = _watch(page)
        page.goto(served.url)
        page.wait_for_function(CHART_DRAWN, arg="BTCUSD", timeout=60_000)
        kernel = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.content())
        assert kernel, "the page names its kernel"
        ws = served.url.replace("http://", "ws://") + f"api/kernels/{kernel.group(1)}/channels"
        assert websocket_status(ws) == 400
        cycles = int(page.inner_text(".botlib-cycles-BTCUSD"))
        cpu_before, wall_before = cpu_seconds(served.process.pid), time.monotonic()
        assert run_next_cycle(db, "BTC/USD").status.value == "ok"
        page.wait_for_function(
            LABEL_IS, arg=[".botlib-cycles-BTCUSD", str(cycles + 1)], timeout=30_000
        )
        time.sleep(2)  # a measuring window, not a wait for a condition: the spin would show here
        busy = (cpu_seconds(served.process.pid) - cpu_before) / (time.monotonic() - wall_before)
        assert busy < 0.5, f"Voila used {busy:.0%} of a core after the refused client"
        assert wait_until_up(served.url, timeout=5) < 5  # still answers at once
        assert errors == []


def test_arena_tab_shows_the_live_analyst_beside_its_shadows(
    browser: BrowserContext, demo_db: Path, jupyter_env: dict[str, str], tmp_path: Path
) -> None:
    db = copy_db(demo_db, tmp_path / "arena.db")
    settings = load_settings(None, db_path=db, mode="sim", shadows=("buy_and_hold", "flat"))
    clock = ManualClock(T0 + timedelta(minutes=15))
    with Store(db) as store:  # three live cycles, each shadowed by two baselines
        runner = CycleRunner(settings, store, clock)
        for _ in range(3):
            assert runner.run("BTC/USD", force=True).status.value == "ok"
            clock.advance(timedelta(minutes=15))
    with _voila(db, jupyter_env, tmp_path) as served:
        page = browser.new_page()
        errors, noise = _watch(page)
        page.goto(served.url)
        page.get_by_role("tab", name="Arena").click(timeout=60_000)
        page.wait_for_selector(".botlib-arena-tab table", timeout=60_000)
        page.wait_for_function(DRAWN_IN, arg=".botlib-arena-curves", timeout=30_000)
        text = page.inner_text(".botlib-arena-tab")
        assert (
            "All assets" in text and "BTC/USD" in text and "Same action on the same cycle" in text
        )
        for name in ("live", "buy_and_hold", "flat"):
            assert name in text
        page.screenshot(path=str(_artefact(tmp_path, "arena.png")), full_page=True)
        assert errors == []
        assert len(noise) <= 2
