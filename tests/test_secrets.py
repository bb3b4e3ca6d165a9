"""Secrets: canary keys through every path, then searched for everywhere they could land.

One scenario (module-scoped, so the kernel and the Voila server start once): paper cycles
against a fake Alpaca that only answers the canary key pair, the OpenAI analyst against a fake
OpenAI that checks nothing but receives the canary key, error bodies that echo the keys back
(OpenAI's 401 "Incorrect API key provided: sk-…", an Alpaca 403 naming key and secret, a
proxy's HTML 500 page echoing the request headers), alerts posted to a webhook URL that carries
a token, a papermill tick (kernels read the keys from the environment), `botlib export-logs`
JSON and CSV, and the dashboard served by Voila with the keys in the server's environment.
Then each canary, and every 8-character piece of it (partial masking still leaks), must appear
nowhere: the database, the notebook archive, the exports, log records, subprocess output, the
served page and its widget state, process environments, exception messages.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from botlib.app.config import load_settings
from botlib.app.jupyter.serve import run_server, stop_server, wait_until_up
from botlib.app.scheduler import tick
from botlib.app.wiring import build_engine, ensure_assets
from botlib.clock import ManualClock
from botlib.errors import BotlibError
from botlib.storage.store import Store
from tests.conftest import KERNEL, ROOT, T0, jupyter_dirs
from tests.fakes.alpaca_server import FakeAlpaca, status
from tests.fakes.alpaca_state import Fault
from tests.fakes.openai_server import FakeOpenAI, error
from tests.ledger import tally
from tests.test_openai_analyst import buy
from tests.test_serve import widget_states
from tests.ui_helpers import free_port, voila_kernels
from tests.webhook_server import WebhookServer

pytestmark = pytest.mark.notebooks

# The keys as set in the environment; CANARIES holds the part of each that no ordinary text
# contains (not "sk-proj-", not the webhook's host). Mixed case and letters beyond a-f, so no
# hash, uuid or hex id in the database can hold an 8-character piece of one by chance.
OPENAI_KEY = "sk-proj-CnryQzWvKpXrTnYmLbHgJuVwXyZsTqRk"
ALPACA_KEY = "PKCNRYQWZXVKTLMNPRSJ"
ALPACA_SECRET = "CnrySecrQwZxVbNmKjHgPpLsTyUwXzQrVtYpLmNk"
HOOK_TOKEN = "/services/TCNRYQZ/BCNRYQZ/CnryHookQzXwVmKpLrTsYu"
CANARIES = {
    "OPENAI_API_KEY": OPENAI_KEY.removeprefix("sk-proj-"),
    "ALPACA_API_KEY": ALPACA_KEY,
    "ALPACA_SECRET_KEY": ALPACA_SECRET,
    "BOTLIB_ALERT_WEBHOOK_URL": HOOK_TOKEN.rsplit("/", 1)[1],
}
PIECE = 8  # a shorter piece of a random key identifies nothing; 8+ characters narrow it down


def pieces(secret: str) -> set[str]:
    """Every `PIECE`-character substring of `secret` (finding any of them is a leak)."""
    return {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}


PIECES = {name: pieces(value) for name, value in CANARIES.items()}


def leaked(text: str) -> dict[str, list[str]]:
    """Name each canary any piece of which is in `text`, with the pieces found."""
    found = {name: sorted(p for p in ps if p in text) for name, ps in PIECES.items()}
    return {name: hits for name, hits in found.items() if hits}


class Records(logging.Handler):
    """Keep every record as a plain formatter renders it (no botlib redaction applied)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Evidence:
    """Everything the scenario produced, by place, as text; plus what it ran."""

    places: dict[str, str] = field(default_factory=dict)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    alerts_posted: int = 0
    openai_auth: set[str] = field(default_factory=set)
    alpaca_keys_seen: set[tuple[str, str]] = field(default_factory=set)
    archived: list[Path] = field(default_factory=list)


def _env(root: Path, alpaca: FakeAlpaca, openai: FakeOpenAI, hook: WebhookServer) -> dict[str, str]:
    """The environment a deployment has: keys and settings as variables, Jupyter dirs in tmp."""
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "ALPACA_API_KEY": ALPACA_KEY,
        "ALPACA_SECRET_KEY": ALPACA_SECRET,
        "BOTLIB_ALERT_WEBHOOK_URL": hook.url(HOOK_TOKEN),
        "BOTLIB_MODE": "paper",
        "BOTLIB_ANALYST": "openai",
        "BOTLIB_DB": str(root / "bot.db"),
        "BOTLIB_RUNS_DIR": str(root / "runs"),
        "BOTLIB_KERNEL": KERNEL,
        "BOTLIB_FAILURE_ALERT_AFTER": "1",
        "BOTLIB_FILL_WAIT": "1",
        "ALPACA_TRADING_URL": alpaca.url,
        "ALPACA_DATA_URL": alpaca.url,
        "ALPACA_TIMEOUT": "2",
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_TIMEOUT": "5",
        "OPENAI_MAX_RETRIES": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env |= jupyter_dirs(root)
    return env


def _proxy_page(kept: int = 16) -> Fault:
    """An HTML 500 from a debugging proxy that echoes the request's key headers.

    The secret starts `kept` characters before the 120-character cut of the adapter's page
    summary, so a summary cut before it is redacted keeps a piece of the secret.
    """
    head = "500 Internal Server Error: the upstream refused the request; it sent"
    label = " APCA-API-SECRET-KEY: "
    pad = " header" * ((120 - kept - len(head) - len(label)) // 7)
    text = f"{head}{pad}{'.' * ((120 - kept - len(head) - len(label)) % 7)}{label}{ALPACA_SECRET}"
    assert text.index(ALPACA_SECRET) == 120 - kept
    text += f" APCA-API-KEY-ID: {ALPACA_KEY}"
    return Fault("html", 500, f"<html><body><p>{text}</p></body></html>")


def _echo_403() -> Fault:
    message = f"forbidden: key {ALPACA_KEY} with secret {ALPACA_SECRET} may not trade"
    return status(403, {"code": 40310000, "message": message})


def _in_process_cycles(store: Store, clock: ManualClock, alpaca: FakeAlpaca,
                       openai: FakeOpenAI) -> list[str]:  # fmt: skip
    """Four paper cycles through the library API (no CLI): a buy, then three echoed errors."""
    errors: list[str] = []
    engine = build_engine(load_settings(None), store, clock)
    openai.push(buy(), error(401, f"Incorrect API key provided: {OPENAI_KEY}. You can find"
                             " your API key at https://platform.openai.com/account/api-keys.",
                             kind="invalid_request_error", code="invalid_api_key"))  # fmt: skip
    for symbol in ("BTC/USD", "SOL/USD"):
        errors.append(engine.run_cycle(symbol).reason)
    clock.advance(timedelta(minutes=15))
    alpaca.now = clock.now()
    alpaca.inject("*", "/v2/", _echo_403())
    errors.append(engine.run_cycle("BTC/USD").reason)
    alpaca.inject("*", "/v2/", _proxy_page(), times=3)  # reads are tried 3 times
    errors.append(engine.run_cycle("SOL/USD").reason)
    # the errors themselves, as a caller (a notebook, the control panel) would see them
    for fault, times in ((_echo_403(), 1), (_proxy_page(), 3)):
        alpaca.inject("*", "/v2/", fault, times=times)
        with pytest.raises(BotlibError) as raised:
            engine.broker.account()
        errors += [str(raised.value), repr(raised.value)]
    return errors


def _tick(clock: ManualClock, alpaca: FakeAlpaca, openai: FakeOpenAI) -> None:
    """One papermill tick (a kernel per due asset, keys from the environment), echoing keys.

    BTC/USD's kernel meets Alpaca's echoing 403, SOL/USD's an OpenAI 500 quoting the key.
    """
    clock.advance(timedelta(minutes=15))
    alpaca.now = clock.now()
    alpaca.inject("*", "/v2/", _echo_403())
    openai.push(error(500, f"upstream auth failed for {OPENAI_KEY}", kind="server_error"))
    reports = tick(load_settings(None), clock) or []
    assert [r.symbol for r in reports] == ["BTC/USD", "SOL/USD"], reports


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botlib", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def _exports(root: Path, env: dict[str, str]) -> dict[str, str]:
    places = {}
    for fmt in ("json", "csv"):
        out = root / f"logs.{fmt}"
        done = _cli(["export-logs", "--format", fmt, "-o", str(out)], env, root)
        assert done.returncode == 0, done.stderr
        text = out.read_text()
        assert text.count("openai") >= 4, text[:500]  # the decisions really are in it
        places[f"export {fmt}"] = text
        places[f"export {fmt}: stderr"] = done.stdout + done.stderr
    return places


def _served(db: Path, root: Path) -> dict[str, str]:
    """Serve the dashboard with the keys in os.environ; return the page, states, environs."""
    port = free_port()
    process = run_server(db, port, runtime_dir=root / "voila")  # env: os.environ, keys and all
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, timeout=60, process=process)
        page, states = widget_states(url)
        environs = [Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
                    for pid in (process.pid, *voila_kernels(process.pid))]  # fmt: skip
    finally:
        assert stop_server(process, timeout=15) == 0
    assert "BTC/USD" in states and "SOL/USD" in states, states[:300]
    return {
        "voila page": page,
        "voila widget state": states,
        "voila environments": "\n".join(environs),
    }


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    root = tmp_path_factory.mktemp("secrets")
    found = Evidence()
    records = Records()
    botlib_log = logging.getLogger("botlib")
    level = botlib_log.level
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeAlpaca(key_id=ALPACA_KEY, secret_key=ALPACA_SECRET) as alpaca,
        FakeOpenAI() as openai,
        WebhookServer() as hook,
    ):
        env = _env(root, alpaca, openai, hook)
        for name in list(os.environ):
            if name.startswith(("BOTLIB_", "ALPACA_", "OPENAI_")):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.chdir(root)  # no developer's .env; kernels start here too
        for logger in (botlib_log, logging.getLogger()):
            logger.addHandler(records)
        botlib_log.setLevel(logging.INFO)
        try:
            alpaca.now = T0
            clock = ManualClock(T0)
            db = root / "bot.db"
            with Store(db) as store:
                ensure_assets(store, ["BTC/USD", "SOL/USD"], timeframe="15Min",
                              interval_minutes=15)  # fmt: skip
                errors = _in_process_cycles(store, clock, alpaca, openai)
            _tick(clock, alpaca, openai)
            found.places.update(_exports(root, dict(os.environ)))
            found.places.update(_served(db, root))
        finally:
            for logger in (botlib_log, logging.getLogger()):
                logger.removeHandler(records)
            botlib_log.setLevel(level)
        found.places["exception messages"] = "\n".join(errors)
        found.places["log records"] = "\n".join(records.lines)
        found.openai_auth = {h.get("authorization", "") for h in openai.headers}
        found.alpaca_keys_seen = {
            (r["headers"].get("apca-api-key-id", ""), r["headers"].get("apca-api-secret-key", ""))
            for r in alpaca.requests
            if r["path"].startswith("/v2/")
        }
        found.alerts_posted = len(hook.received)
    with closing(sqlite3.connect(db)) as conn:
        found.places["database"] = "\n".join(conn.iterdump())
        conn.row_factory = sqlite3.Row
        found.cycles = [dict(r) for r in conn.execute("SELECT * FROM cycles ORDER BY started_at")]
        found.decisions = [dict(r) for r in conn.execute("SELECT * FROM ai_decision_logs")]
    found.archived = sorted((root / "runs").rglob("*.ipynb"))
    for path in sorted((root / "runs").rglob("*")):
        if path.is_file():
            found.places[f"archive {path.name}"] = path.read_text(errors="replace")
    return found


def test_the_canaries_were_really_used(evidence: Evidence) -> None:
    """The scenario is only worth its assertions if the keys went where keys go."""
    assert evidence.openai_auth == {f"Bearer {OPENAI_KEY}"}
    assert evidence.alpaca_keys_seen == {(ALPACA_KEY, ALPACA_SECRET)}
    assert evidence.alerts_posted >= 1  # the webhook URL (with its token) was used
    statuses = [(c["symbol"], c["status"]) for c in evidence.cycles]
    assert len(statuses) == 6, statuses  # four in process, two in the tick's kernels
    assert any(c["action"] == "BUY" for c in evidence.cycles), statuses
    reasons = " | ".join(c["reason"] or "" for c in evidence.cycles)
    assert "HTTP 403" in reasons and "HTTP 500" in reasons, reasons
    errors = " | ".join(d["error"] or "" for d in evidence.decisions)
    assert "AuthenticationError" in errors and "InternalServerError" in errors, errors
    assert len(evidence.archived) == 2
    tally(cycles_run=len(evidence.cycles))


def test_no_canary_anywhere(evidence: Evidence) -> None:
    """Neither a canary nor any 8-character piece of one, in any place the scenario wrote."""
    expected = {"database", "exception messages", "log records", "export json", "export csv",
                "voila page", "voila widget state", "voila environments"}  # fmt: skip
    assert expected <= set(evidence.places)
    leaks = {place: hits for place, text in evidence.places.items() if (hits := leaked(text))}
    tally(canary_checks=len(CANARIES) * len(evidence.places))
    assert leaks == {}


def test_the_detector_finds_a_partial_key() -> None:
    """The search itself: a masked-but-long fragment counts, a 7-character one does not."""
    assert leaked(f"key ...{ALPACA_SECRET[-8:]}") == {"ALPACA_SECRET_KEY": [ALPACA_SECRET[-8:]]}
    assert leaked(f"key ...{ALPACA_SECRET[-7:]}") == {}
    assert leaked("sk-*** and *** and 0123456789abcdef") == {}


def test_dot_env_is_git_ignored_and_the_readme_says_where_keys_live() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False, capture_output=True
    )
    assert ignored.returncode == 0, "add .env to .gitignore"
    readme = (ROOT / "README.md").read_text()
    assert "Keys live only there" in readme  # the Settings section: environment and `.env`
    for name in ("OPENAI_API_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        assert f"`{name}`" in readme


def _hooks() -> dict[str, dict[str, Any]]:
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: repo | {"hook": hook} for repo in config["repos"] for hook in repo["hooks"]}


def test_pre_commit_runs_detect_private_key_and_ruff() -> None:
    hooks = _hooks()
    assert hooks["detect-private-key"]["repo"] == "https://github.com/pre-commit/pre-commit-hooks"
    assert hooks["detect-private-key"]["rev"] == "v6.0.0"
    ruff = subprocess.run([str(Path(sys.executable).parent / "ruff"), "--version"],
                          capture_output=True, text=True, check=True).stdout.split()[1]  # fmt: skip
    for hook_id in ("ruff-check", "ruff-format"):
        assert hooks[hook_id]["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
        assert hooks[hook_id]["rev"] == f"v{ruff}", "match the rev to the installed ruff"
    assert hooks["ruff-check"]["hook"]["args"] == ["--fix"]


def _detect_private_key(files: list[str]) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "detect-private-key"
    return subprocess.run([str(tool), *files], cwd=ROOT, capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_no_private_key_in_the_repository_and_a_planted_one_is_caught(tmp_path: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    files = [f for f in listed if (ROOT / f).is_file()]
    assert len(files) > 100 and "tests/test_secrets.py" in files
    clean = _detect_private_key(files)
    assert clean.returncode == 0, clean.stdout
    planted = tmp_path / "id_rsa"
    marker = "RSA PRIVATE KEY"  # split, so this file itself holds no key header
    planted.write_text(f"-----BEGIN {marker}-----\nMIIEowIBAAKCAQEA\n-----END {marker}-----\n")
    caught = _detect_private_key([*files[:5], str(planted)])
    assert caught.returncode == 1 and f"Private key found: {planted}" in caught.stdout


def test_the_remote_access_guide_matches_the_server() -> None:
    """docs/remote-access.md quotes serve.py's defaults and the paths a proxy must carry."""
    import inspect

    from botlib.app.jupyter.serve import serve_forever

    guide = (ROOT / "docs" / "remote-access.md").read_text()
    defaults = inspect.signature(serve_forever).parameters
    assert f"{defaults['ip'].default}:{defaults['port'].default}" in guide  # 127.0.0.1:8866
    for needed in ("ssh -N -L 8866:127.0.0.1:8866", "basic_auth", "auth_basic",
                   "proxy_set_header   Upgrade", "/api/kernels/<id>/channels",
                   "/voila/query/<id>", "control.ipynb", "--hostname"):  # fmt: skip
        assert needed in guide, needed
    assert "hostnames" in defaults  # what `--hostname` passes


def _api_error(status_code: int, body: str) -> Exception:
    """The alpaca-py error its REST client raises for an HTTP error answer."""
    import requests
    from alpaca.common.exceptions import APIError

    response = requests.Response()
    response.status_code = status_code
    return APIError(body, requests.HTTPError(response=response))


def test_regression_a_key_cut_mid_way_by_the_error_summary_is_blanked() -> None:
    """A proxy page echoing the secret across the 120-character cut left 16 characters of it:
    the summary was cut first, and the redactor only knew the whole secret."""
    from botlib.venues.alpaca.http import trading_client, translate

    trading_client(ALPACA_KEY, ALPACA_SECRET, paper=True, url="http://127.0.0.1:9", timeout_s=1)
    page = _proxy_page().body
    unavailable = translate(_api_error(500, page), "read account")  # type: ignore[arg-type]
    assert "HTTP 500" in str(unavailable) and leaked(str(unavailable)) == {}
    body = json.dumps({"code": 40310000, "message": f"key {ALPACA_KEY} secret {ALPACA_SECRET}"})
    rejected = translate(_api_error(403, body), "submit order")
    assert leaked(str(rejected)) == {} and str(rejected) == "key *** secret ***"


def test_building_a_client_registers_its_key_without_the_cli() -> None:
    """A notebook or script that wires its own engine gets the same redaction as the CLI."""
    from botlib.analysts.openai import make_client
    from botlib.redact import scrub
    from botlib.venues.alpaca.http import trading_client

    alpaca_pair = ("PKREGISTERQZWXVKTLMN", "RegisterSecretQwZxVbNmKjHgPpLsTyUwXzQrVt")
    gateway_key = "gw-RegisterGatewayKeyQzWvKpXr"  # not shaped like sk-…: only registration helps
    assert [scrub(v) for v in (*alpaca_pair, gateway_key)] == [*alpaca_pair, gateway_key]
    trading_client(*alpaca_pair, paper=True, url="http://127.0.0.1:9", timeout_s=1)
    make_client(gateway_key, "http://127.0.0.1:9/v1").close()
    assert [scrub(f"x {v} y") for v in (*alpaca_pair, gateway_key)] == ["x *** y"] * 3
