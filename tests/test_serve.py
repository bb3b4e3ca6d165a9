"""`botlib serve`: Voila on the dashboard notebook, locked down, started and stopped cleanly."""

from __future__ import annotations

import inspect
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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from botlib.app.jupyter.serve import (
    NOTEBOOK,
    check_kernel,
    child_env,
    run_server,
    serve_forever,
    stop_server,
    voila_config,
    wait_until_up,
)
from botlib.app.jupyter.voila_guard import V1_PROTOCOL
from botlib.errors import ConfigError
from tests.conftest import jupyter_dirs
from tests.ui_helpers import free_port, voila_kernels, wait_for, websocket_status

pytestmark = pytest.mark.slow  # subprocesses, kernels or servers: not in `make check`

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


def module_jupyter_env(root: Path) -> dict[str, str]:
    """`jupyter_env` for a module-scoped server: Jupyter's folders under `root`, no keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "OPENAI_"))}
    env |= jupyter_dirs(root)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the dashboard notebook with an image beside it (Voila's default would serve it)."""
    folder = tmp_path_factory.mktemp("site")
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    (folder / "chart.png").write_bytes(PNG)
    return folder / NOTEBOOK.name


@pytest.fixture(scope="module")
def server(site: Path, demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One locked-down server for the read-only probes below (starting one costs seconds)."""
    root = tmp_path_factory.mktemp("served")
    port = free_port()
    env = module_jupyter_env(root) | {
        "ALPACA_API_KEY": "should-not-leak",
        "OPENAI_API_KEY": "nor-this",
    }
    process = run_server(demo_db, port, notebook=site, env=env, runtime_dir=root / "voila")
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
    for source in ("from botlib.app.jupyter.pages import", "dashboard(interval_s", "can trade"):
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
    code = (
        "from botlib.app.jupyter.serve import serve_forever;"
        f" serve_forever({str(demo_db)!r}, {port})"
    )
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
        seen = set(voila_kernels(process.pid))
        for _ in range(3):
            assert _get(url)[0] == 200
            seen |= set(voila_kernels(process.pid))
        # each request's kernel (and the pool's refill) was started, whether or not culling
        # has already begun on a busy machine: the pre-heated one plus a new one per request
        wait_for(lambda: seen.update(voila_kernels(process.pid)) or len(seen) >= 4, 60,
                 "a kernel per request")  # fmt: skip
        wait_for(lambda: len(voila_kernels(process.pid)) == 1, 60, "culling back to the pool")
        assert _get(url)[0] == 200  # and the server still serves
    finally:
        assert stop_server(process, timeout=15) == 0


# ------------------------------------------ more probes, on one server over the real notebooks
@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Iterator[str]:
    """`run_server` as `botlib serve` runs it: the real notebook, with its siblings beside it."""
    root = tmp_path_factory.mktemp("probed")
    env = module_jupyter_env(root)
    port = free_port()
    process = run_server(demo_db, port, env=env, runtime_dir=root / "voila")
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, timeout=60, process=process)
        yield url
    finally:
        assert stop_server(process, timeout=15) == 0


def _message(msg_type: str, content: dict[str, object], session: str) -> list[bytes]:
    """A Jupyter message (header, parent, metadata, content) as the v1 protocol's parts."""
    header = {
        "msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
        "username": "probe", "date": datetime.now(UTC).isoformat(), "version": "5.3",
    }  # fmt: skip
    metadata = {"version": "1.0.0"} if msg_type == "comm_open" else {}
    return [json.dumps(part).encode() for part in (header, {}, metadata, content)]


def kernel_conversation(
    url: str, requests: list[tuple[str, dict[str, object]]], until: str, timeout: float = 30
) -> tuple[str, list[dict[str, Any]]]:
    """Load the page, talk to its kernel as a browser would (v1 websocket), until `until`.

    Send each (msg_type, content) on the shell channel, then collect every message the
    kernel sends back until one of type `until` arrives; return the page and the messages
    (channel, header, content).
    """
    from jupyter_server.services.kernels.connection.base import (
        deserialize_msg_from_ws_v1,
        serialize_msg_to_ws_v1,
    )
    from websockets.sync.client import connect

    status, page = _get(url)
    kernel = re.search(r'"kernelId": "([0-9a-f-]{36})"', page)
    assert status == 200 and kernel, "the page names its kernel"
    session = uuid.uuid4().hex
    ws_url = url.replace("http://", "ws://") + f"api/kernels/{kernel.group(1)}/channels"
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with connect(f"{ws_url}?session_id={session}", subprotocols=[V1_PROTOCOL]) as ws:  # type: ignore[list-item]
        for msg_type, content in requests:
            ws.send(serialize_msg_to_ws_v1(_message(msg_type, content, session), "shell"))
        while not any(m["header"]["msg_type"] == until for m in received):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {until} within {timeout:g} s: {received}"
            channel, parts = deserialize_msg_from_ws_v1(ws.recv(timeout=remaining))
            header, _, _, content = (json.loads(p) for p in parts[:4])
            received.append({"channel": channel, "header": header, "content": content})
    return page, received


def widget_states(url: str) -> tuple[str, str]:
    """Return the served page and the text of every widget's state (what the page shows).

    Asks the kernel as ipywidgets' front end does: a `jupyter.widget.control` comm, then
    `request_states`; binary buffers (chart arrays) are left out.
    """
    comm = uuid.uuid4().hex
    page, received = kernel_conversation(
        url,
        [
            ("comm_open", {"comm_id": comm, "target_name": "jupyter.widget.control", "data": {}}),
            ("comm_msg", {"comm_id": comm, "data": {"method": "request_states"}}),
        ],
        until="comm_msg",
    )
    states = [m["content"] for m in received if m["header"]["msg_type"] == "comm_msg"]
    return page, json.dumps(states)


def test_a_page_cannot_run_code_in_its_kernel(probed: str, tmp_path: Path) -> None:
    """Voila forwards only widget (comm) and info messages: an execute_request is dropped.

    The kernel handles shell requests in order, so once the kernel_info_reply that follows
    is back, an executed request would already have written its file.
    """
    target = tmp_path / "pwned"
    execute = {"code": f"open({str(target)!r}, 'w').write('x')", "silent": False,
               "store_history": False, "user_expressions": {}, "allow_stdin": False}  # fmt: skip
    _, received = kernel_conversation(
        probed, [("execute_request", execute), ("kernel_info_request", {})], "kernel_info_reply"
    )
    types = {m["header"]["msg_type"] for m in received}
    assert not types & {"execute_reply", "execute_input", "execute_result", "stream", "error"}
    assert not target.exists()
    _, states = widget_states(probed)  # the widget channel the dashboard needs still answers
    assert "BTC/USD" in states and "SOL/USD" in states


MORE_REFUSED = (
    "voila/render/../dashboard.ipynb",
    "voila/render/%2e%2e/notebooks/control.ipynb",
    "voila/render/%2e%2e%2fnotebooks%2fcontrol.ipynb",
    "voila/render/control.ipynb",
    "control.ipynb",
    "trading_cycle.ipynb",
    "notebooks/control.ipynb",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252f..%252fetc%252fpasswd",
    "voila/files/control.ipynb",
    "voila/files/ai_logs.ipynb",
    "voila/files/dashboard.ipynb",
    "voila/files/%2e%2e/%2e%2e/etc/passwd",
    "voila/files/%2e%2e%2fpyproject.toml",
    "voila/tree/",
    "voila/api/contents",
    "voila/api/contents/control.ipynb",
    "voila/api/themes/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "voila/labextensions/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "voila/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "api/contents/%2e%2e/%2e%2e/etc/passwd",
    "api/sessions/00000000-0000-0000-0000-000000000000",
    "api/terminals/1",
    "api/nbconvert",
    "api/config/notebook",
    "api/me",
    "lab/api/settings",
    "lab/workspaces",
    "edit/control.ipynb",
    "view/control.ipynb",
    "nbconvert/html/control.ipynb",
    "login",
    "logout",
)


def test_traversal_variants_and_other_jupyter_routes_are_refused(probed: str) -> None:
    """Encoded dots, double encoding, the sibling notebooks, Jupyter Server's own routes."""
    answers = {path: _get(probed + path) for path in MORE_REFUSED}
    # Jupyter Server's logout page cannot render without its static files: a 500, empty body.
    assert {path: code for path, (code, _) in answers.items() if code not in (403, 404)} == {
        "logout": 500
    }
    assert answers["logout"][1] == ""
    leaked = ("root:", "from botlib", "[project]", "FLATTEN ALL", '"cells"')
    assert not [(p, text) for p, (_, body) in answers.items() for text in leaked if text in body]


def test_no_kernel_is_listed_spawned_or_controlled_by_guessing(probed: str) -> None:
    assert _get(probed + "api/kernels")[0] in (403, 404)  # no list of kernels (nor their ids)
    for method in ("POST", "PUT"):
        assert _send(method, probed + "api/kernels", b'{"name": "botlib"}') in (403, 404, 405)
    guess = "api/kernels/00000000-0000-0000-0000-000000000000"
    assert _get(probed + guess)[0] == 404
    assert _send("DELETE", probed + guess, None) == 404
    for action in ("restart", "interrupt"):
        assert _send("POST", probed + f"{guess}/{action}", b"{}") in (403, 404, 405)


def _listening(port: int) -> list[str]:
    """Local addresses listening on `port` (Linux /proc/net/tcp and tcp6; state 0A)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_the_default_bind_address_is_loopback(probed: str) -> None:
    """`botlib serve`'s default and the socket Voila really opens: 127.0.0.1 only."""
    from botlib.app.cli import _parser

    assert _parser().parse_args(["serve"]).ip == "127.0.0.1"
    for function in (serve_forever, run_server):
        assert inspect.signature(function).parameters["ip"].default == "127.0.0.1"
    port = urllib.parse.urlsplit(probed).port
    assert port is not None
    assert _listening(port) == ["0100007F"]  # 127.0.0.1 (little-endian hex): no ::, no 0.0.0.0


def _status_with_host(url: str, host: str, path: str = "/", upgrade: bool = False) -> int:
    """Send GET `path` to the server at `url` with a chosen Host (and Origin) header."""
    parsed = urllib.parse.urlsplit(url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Origin: http://{host}"]
    if upgrade:
        lines += [
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            f"Sec-WebSocket-Protocol: {V1_PROTOCOL}",
        ]  # fmt: skip
    else:
        lines.append("Connection: close")
    address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
    with socket.create_connection(address, timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(sock.makefile("rb").readline().split()[1])


def test_a_rebound_host_name_is_refused(probed: str) -> None:
    """Regression: a web page whose name was re-pointed at 127.0.0.1 (DNS rebinding) read the
    dashboard and opened its kernel websocket (Voila turns Jupyter Server's Host check off)."""
    port = urllib.parse.urlsplit(probed).port
    _, page = _get(probed)
    kernel = re.search(r'"kernelId": "([0-9a-f-]{36})"', page)
    assert kernel, "the page names its kernel"
    channels = f"/api/kernels/{kernel.group(1)}/channels"
    assert _status_with_host(probed, f"rebind.example:{port}") == 403
    assert _status_with_host(probed, f"rebind.example:{port}", channels, upgrade=True) == 403
    assert _status_with_host(probed, f"localhost:{port}", channels, upgrade=True) == 101
    assert _status_with_host(probed, f"127.0.0.1:{port}", channels, upgrade=True) == 101


def test_a_proxy_name_is_accepted_only_when_given(tmp_path: Path) -> None:
    tornado = voila_config(tmp_path)["Voila"]["tornado_settings"]
    assert tornado["allow_remote_access"] is False and tornado["local_hostnames"] == ["localhost"]
    named = voila_config(tmp_path, hostnames=["dash.example.com"])["Voila"]["tornado_settings"]
    assert named["local_hostnames"] == ["localhost", "dash.example.com"]
    # bound to another address on purpose (`--ip`), it is reached by that IP: no name check
    exposed = voila_config(tmp_path, hostnames=None)["Voila"]["tornado_settings"]
    assert "allow_remote_access" not in exposed
