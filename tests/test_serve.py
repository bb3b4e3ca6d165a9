"""`botlib serve`: Voila on the dashboard notebook, locked down, started and stopped cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from botlib.errors import ConfigError
from botlib.serve import (
    NOTEBOOK,
    check_kernel,
    child_env,
    run_server,
    serve_forever,
    stop_server,
    voila_config,
    wait_until_up,
)
from botlib.voila_guard import V1_PROTOCOL
from tests.ui_helpers import free_port, voila_kernels, wait_for, websocket_status

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4a10000000049454e44ae426082"
)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(errors="replace")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the dashboard notebook with an image beside it (Voila's default would serve it)."""
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    (folder / "chart.png").write_bytes(PNG)
    return folder / NOTEBOOK.name


@pytest.fixture
def server(site: Path, demo_db: Path, jupyter_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = jupyter_env | {"ALPACA_API_KEY": "should-not-leak", "OPENAI_API_KEY": "nor-this"}
    process = run_server(demo_db, port, notebook=site, env=env, runtime_dir=tmp_path / "voila")
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, timeout=60, process=process)
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith((b"ALPACA_", b"OPENAI_"))]
        assert f"BOTLIB_DB={demo_db.absolute()}".encode() in environ
        yield url
    finally:
        assert stop_server(process, timeout=15) == 0


def test_voila_config_locks_the_server_down(tmp_path: Path) -> None:
    config = voila_config(tmp_path)
    assert config["VoilaConfiguration"] == {
        "strip_sources": True,
        "show_tracebacks": False,
        "file_allowlist": [],
        "preheat_kernel": True,
        "default_pool_size": 1,
    }
    assert config["Voila"]["connection_dir_root"] == str(tmp_path.absolute())
    assert config["Voila"]["kernel_websocket_connection_class"].endswith("V1OnlyConnection")
    culling = config["MappingKernelManager"]
    assert culling["cull_idle_timeout"] > 0 and culling["cull_connected"] is False
    assert voila_config(tmp_path, pool_size=0)["VoilaConfiguration"]["preheat_kernel"] is False


def test_child_env_drops_secrets_and_sets_an_absolute_db(tmp_path: Path) -> None:
    base = {
        "PATH": "/bin",
        "ALPACA_SECRET_KEY": "s",
        "OPENAI_API_KEY": "k",
        "GH_TOKEN": "t",
        "BOTLIB_ALERT_WEBHOOK_URL": "https://hooks.example/T000/secret",
        "BOTLIB_DASHBOARD_AI_LOGS": "1",
    }
    env = child_env(Path("rel/bot.db"), base)
    assert env == {"PATH": "/bin", "BOTLIB_DB": str(Path("rel/bot.db").absolute())}
    assert child_env("x.db", base, ai_logs=True)["BOTLIB_DASHBOARD_AI_LOGS"] == "1"


def test_dashboard_is_served_without_sources(server: str) -> None:
    status, body = _get(server)
    assert status == 200
    assert "application/vnd.jupyter.widget-view+json" in body
    assert "botlib dashboard" in body  # the dashboard's constant text repr
    for source in ("from botlib.ui import", "Dashboard.from_env", "nothing here can trade"):
        assert source not in body


REFUSED = (
    "tree",
    "tree/",
    "lab",
    "lab/tree/dashboard.ipynb",
    "notebooks/dashboard.ipynb",
    "api/contents",
    "api/contents/dashboard.ipynb",
    "api/contents/chart.png",
    "api/contents/..%2F..%2Fetc%2Fpasswd",
    "api/sessions",
    "api/kernels",
    "api/kernelspecs",
    "api/terminals",
    "terminals",
    "terminals/1",
    "terminals/websocket/1",
    "voila/files/chart.png",
    "voila/files/voila.json",
    "voila/files/..%2F..%2F..%2Fetc%2Fpasswd",
    "voila/files/../../../../etc/passwd",
    "voila/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "voila/templates/..%2F..%2F..%2Fetc%2Fpasswd",
    "static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "files/..%2F..%2Fetc%2Fpasswd",
    "chart.png",
    "dashboard.ipynb",
    "files/dashboard.ipynb",
    "voila/render/dashboard.ipynb",
    "voila/render/ai_logs.ipynb",
    "voila/render/trading_cycle.ipynb",
    "voila/render/control.ipynb",
    "voila/render/..%2Fnotebooks%2Ftrading_cycle.ipynb",
    "voila/tree",
)
WRITES = (
    ("PUT", "api/contents/evil.ipynb", b'{"type": "notebook", "content": {}}'),
    ("PUT", "api/contents/chart.png", b'{"type": "file", "format": "text", "content": "x"}'),
    ("POST", "api/contents", b'{"type": "notebook"}'),
    ("POST", "api/kernels", b'{"name": "botlib"}'),
    ("POST", "api/sessions", b'{"path": "x.ipynb", "type": "notebook", "kernel": {}}'),
    ("POST", "api/terminals", b"{}"),
    ("DELETE", "api/contents/dashboard.ipynb", None),
)


def _send(method: str, url: str, body: bytes | None) -> int:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_everything_but_the_dashboard_is_refused(server: str, site: Path) -> None:
    """No file browser, lab, contents API, terminals, other notebooks or path traversal."""
    answers = {path: _get(server + path) for path in REFUSED}
    # 403/404, except Voila's template-asset route, which answers a traversal with a 500 (an
    # assertion in its handler): refused all the same, and no body.
    assert {path: code for path, (code, _) in answers.items() if code not in (403, 404)} == {
        "voila/templates/..%2F..%2F..%2Fetc%2Fpasswd": 500
    }
    assert not [path for path, (_, body) in answers.items() if "root:" in body]


def test_no_write_or_spawn_route_answers(server: str, site: Path) -> None:
    before = sorted(p.name for p in site.parent.iterdir())
    statuses = {f"{m} {p}": _send(m, server + p, body) for m, p, body in WRITES}
    assert {call: code for call, code in statuses.items() if code not in (403, 404, 405)} == {}
    assert sorted(p.name for p in site.parent.iterdir()) == before  # nothing written or deleted


def test_kernel_websocket_refuses_clients_without_v1(server: str) -> None:
    """Regression: a non-v1 client made Voila 0.5.13 spin at 100% CPU until SIGKILL."""
    _, body = _get(server)
    kernel = re.search(r'"kernelId": "([0-9a-f-]{36})"', body)
    assert kernel, "the page names its kernel"
    ws = server.replace("http://", "ws://") + f"api/kernels/{kernel.group(1)}/channels"
    assert websocket_status(ws) == 400
    assert websocket_status(ws, "chat, v2.kernel.websocket.jupyter.org") == 400
    assert websocket_status(ws, V1_PROTOCOL) == 101  # what browsers do still works


def _children(pid: int) -> list[int]:
    """List a process's children (Linux /proc), to clean up Voila if serve_forever dies."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _is_voila(pid: int) -> bool:
    try:
        return b"voila" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _port_closed(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/botlib-ping", timeout=1)
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except OSError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_stops_voila_on_signal(
    signum: signal.Signals, demo_db: Path, jupyter_env: dict[str, str]
) -> None:
    port = free_port()
    code = f"from botlib.serve import serve_forever; serve_forever({str(demo_db)!r}, {port})"
    process = subprocess.Popen([sys.executable, "-c", code], env=jupyter_env)
    voila: list[int] = []
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", timeout=60, process=process)
        voila = _children(process.pid)
        assert voila, "serve_forever runs Voila as its child"
        process.send_signal(signum)
        assert process.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while not _port_closed(port):  # Voila (the grandchild) must be gone too
            assert time.monotonic() < deadline, "Voila still answers after serve_forever ended"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pid in voila:
            if _is_voila(pid):
                os.kill(pid, signal.SIGKILL)


def test_server_environment_has_no_secrets_even_from_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert "OPENAI_API_KEY" not in child_env("x.db")
    assert json.dumps(child_env("x.db")).count("sk-test") == 0
    assert os.environ["OPENAI_API_KEY"] == "sk-test"  # the parent keeps its own


def test_serve_forever_names_the_fix_when_the_port_is_taken(
    demo_db: Path, jupyter_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in jupyter_env.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="--port"):
            serve_forever(demo_db, port)


def test_check_kernel_names_the_install_command() -> None:
    check_kernel()  # the project's kernel is registered in the venv
    with pytest.raises(ConfigError, match="ipykernel install --sys-prefix --name nope-kernel"):
        check_kernel("nope-kernel")


def test_bare_requests_do_not_leak_kernels(
    demo_db: Path, jupyter_env: dict[str, str], tmp_path: Path
) -> None:
    """Each `GET /` runs the notebook in a kernel no browser will ever connect to: culled."""
    port = free_port()
    process = run_server(
        demo_db, port, env=jupyter_env, runtime_dir=tmp_path / "voila",
        cull_idle_timeout=3, cull_interval=1,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, timeout=60, process=process)
        wait_for(lambda: len(voila_kernels(process.pid)) == 1, 60, "the pre-heated kernel")
        for _ in range(3):
            assert _get(url)[0] == 200
        assert len(voila_kernels(process.pid)) >= 3  # the requests' kernels (+ the pool refill)
        wait_for(lambda: len(voila_kernels(process.pid)) == 1, 60, "culling back to the pool")
        assert _get(url)[0] == 200  # and the server still serves
    finally:
        assert stop_server(process, timeout=15) == 0
