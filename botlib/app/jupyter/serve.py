"""Serve the read-only dashboard notebook with Voila, locked down (`botlib serve`).

Single-notebook mode (directory mode would list and run every notebook), no sources, no
tracebacks, no files, idle kernels culled, and a child environment without API keys: the
dashboard only reads the database named by `BOTLIB_DB`.

Bound to loopback, it also refuses requests whose `Host` header names another machine
(`hostnames` adds a reverse proxy's public name). Voila switches Jupyter Server's host check
off, and without it any web page the operator opens could read the dashboard through DNS
rebinding (its name re-pointed at 127.0.0.1): the page, then the kernel's widget state over a
websocket whose Origin matches that name. docs/remote-access.md shows the proxy set-ups.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from botlib.app.config import load_settings
from botlib.app.jupyter.shipped import KERNEL, kernel_hint, notebook_path
from botlib.errors import ConfigError

__all__ = [
    "NOTEBOOK",
    "AI_LOGS_NOTEBOOK",
    "KERNEL",
    "child_env",
    "voila_config",
    "voila_command",
    "run_server",
    "wait_until_up",
    "stop_server",
    "check_kernel",
    "serve_forever",
]

NOTEBOOK = notebook_path("dashboard.ipynb")
AI_LOGS_NOTEBOOK = notebook_path("ai_logs.ipynb")  # the read-only AI-log explorer
_SECRET_PREFIXES = ("ALPACA_", "OPENAI_")
_SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "API_KEY", "WEBHOOK")
AI_LOGS_TAB = "BOTLIB_DASHBOARD_AI_LOGS"  # the dashboard notebook adds the AI-log explorer tab

log = logging.getLogger(__name__)


def child_env(
    db_path: Path | str, base: Mapping[str, str] | None = None, *, ai_logs: bool = False
) -> dict[str, str]:
    """Return the Voila process's environment: `base` minus secrets, plus absolute `BOTLIB_DB`.

    `ai_logs` asks the dashboard for its second tab, the AI-log explorer (same kernel, same
    single notebook: nothing more is exposed).
    """
    env = {
        name: value
        for name, value in (os.environ if base is None else base).items()
        if not name.startswith(_SECRET_PREFIXES)
        and not any(marker in name.upper() for marker in _SECRET_MARKERS)
    }
    env["BOTLIB_DB"] = str(Path(db_path).expanduser().absolute())
    env.pop(AI_LOGS_TAB, None)
    if ai_logs:
        env[AI_LOGS_TAB] = "1"
    return env


def voila_config(
    runtime_dir: Path | str,
    *,
    cull_idle_timeout: int = 120,
    cull_interval: int = 30,
    pool_size: int = 1,
    hostnames: Sequence[str] | None = (),
) -> dict[str, Any]:
    """Return the Voila settings that lock the server down (written as `voila.json`).

    A config file rather than command-line flags, because traitlets deprecates `--X=[]`, the
    only command-line spelling of the empty `file_allowlist`. `pool_size` kernels are kept
    pre-heated (the notebook already ran), so a page paints without waiting for a kernel; a kernel
    whose page is gone is shut down by the page's unload beacon, or culled once idle for
    `cull_idle_timeout` seconds (a bare `GET /` never connects, so only culling ends it).
    Requests must name a loopback address, `localhost` or one of `hostnames` in their `Host`
    header (the DNS-rebinding guard of the module docstring); None accepts any name, for a
    server deliberately bound to a non-loopback address and reached by its IP.
    """
    tornado: dict[str, Any] = {"disable_check_xsrf": True}
    if hostnames is not None:
        tornado |= {"allow_remote_access": False, "local_hostnames": ["localhost", *hostnames]}
    return {
        "Voila": {
            "port_retries": 0,  # fail on a taken port instead of silently moving
            "connection_dir_root": str(Path(runtime_dir).absolute()),
            "kernel_websocket_connection_class": "botlib.app.jupyter.voila_guard.V1OnlyConnection",
            # The unload beacon carries an `_xsrf` cookie no pre-heated page ever gets (JUPYTER.md),
            # so it was refused and closed tabs kept their kernels. The only POST route in
            # single-notebook mode is that shutdown, addressed by an unguessable kernel id.
            "tornado_settings": tornado,
        },
        "VoilaConfiguration": {
            "strip_sources": True,
            "show_tracebacks": False,
            "file_allowlist": [],  # serve no files from the notebook's folder
            "preheat_kernel": pool_size > 0,
            "default_pool_size": pool_size,
        },
        "MappingKernelManager": {
            "default_kernel_name": KERNEL,
            "cull_idle_timeout": cull_idle_timeout,
            "cull_interval": cull_interval,
            "cull_connected": False,  # an open page keeps its kernel, however quiet
        },
    }


def voila_command(
    notebook: Path | str | None = None,
    *,
    port: int = 8866,
    ip: str = "127.0.0.1",
    config_dir: Path | str,
) -> list[str]:
    """Build the Voila command line; settings come from `config_dir`'s `voila.json` only."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(Path(notebook or NOTEBOOK).absolute()),
        "--no-browser",
        f"--Voila.ip={ip}",
        f"--Voila.port={port}",
        # the only config path: no stray voila.py in a working or Jupyter config directory
        f"--Voila.config_file_paths={Path(config_dir).absolute()}",
    ]


def run_server(
    db_path: Path | str,
    port: int = 8866,
    ip: str = "127.0.0.1",
    *,
    notebook: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    runtime_dir: Path | str | None = None,
    ai_logs: bool = False,
    hostnames: Sequence[str] = (),
    **config: int,
) -> subprocess.Popen[bytes]:
    """Start Voila in the background on `db_path`; stop it with `stop_server`.

    `env` is the base environment (secrets are dropped from it); `runtime_dir` holds kernel
    connection files and is Voila's working directory (a new temp dir when not given);
    `hostnames` are the names (a reverse proxy's) requests may carry besides loopback ones
    (any name when `ip` is not a loopback address); `config` overrides `voila_config`'s
    keywords (pool size, culling).
    """
    runtime = Path(runtime_dir or tempfile.mkdtemp(prefix="botlib-voila-"))
    runtime.mkdir(parents=True, exist_ok=True)
    names = None if _exposed(ip) else hostnames
    settings = voila_config(runtime, hostnames=names, **config)
    (runtime / "voila.json").write_text(json.dumps(settings, indent=2))
    command = voila_command(notebook, port=port, ip=ip, config_dir=runtime)
    # Own session: a terminal's Ctrl-C reaches only `serve_forever`, which stops Voila in order.
    return subprocess.Popen(
        command, env=child_env(db_path, env, ai_logs=ai_logs), cwd=runtime, start_new_session=True
    )


def wait_until_up(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> float:
    """Wait until the server at `url` answers HTTP; return the seconds it took.

    Polls a path that renders nothing (any status counts), since `GET /` would start a kernel.
    Raise RuntimeError if `process` exits first, TimeoutError after `timeout` seconds.
    """
    start = time.monotonic()
    probe = url.rstrip("/") + "/botlib-ping"
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Voila exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(probe, timeout=2):  # noqa: S310 (our own http URL)
                pass
            return time.monotonic() - start
        except urllib.error.HTTPError as exc:
            exc.close()  # any status means the server is up
            return time.monotonic() - start
        except OSError:
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{url} did not answer within {timeout:g} s") from None
            time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """Stop Voila with SIGTERM (it shuts its kernels down), SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def check_kernel(name: str = KERNEL) -> None:
    """Fail fast, naming the fix, when the project's Jupyter kernel is not registered."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise ConfigError(
            f"Jupyter kernel {name!r} is not installed; {kernel_hint(name)}"
        ) from None


def _exposed(ip: str) -> bool:
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ip != "localhost"


def serve_forever(
    db_path: Path | str | None = None,
    port: int = 8866,
    ip: str = "127.0.0.1",
    notebook: Path | str | None = None,
    ai_logs: bool = False,
    hostnames: Sequence[str] = (),
) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM, then stop Voila cleanly; return its code.

    `db_path` defaults to the `BOTLIB_DB` setting; `ai_logs` adds the AI-log explorer as a
    second tab of the dashboard; `hostnames` are a reverse proxy's public names (see
    `run_server`). This is what `botlib serve` calls.
    """
    check_kernel()
    db = Path(db_path or load_settings().db_path).expanduser().absolute()
    if not db.exists():
        log.warning("%s does not exist yet; the dashboard will say so until it does", db)
    if _exposed(ip):
        log.warning("%s is reachable from other machines and the dashboard has no login", ip)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    with tempfile.TemporaryDirectory(prefix="botlib-voila-") as runtime:
        process = run_server(
            db, port, ip, notebook=notebook, runtime_dir=runtime, ai_logs=ai_logs,
            hostnames=hostnames,
        )  # fmt: skip
        try:
            wait_until_up(f"http://{ip}:{port}/", timeout=60, process=process)
            log.info("dashboard on http://%s:%s/ (read-only, %s); Ctrl-C stops it", ip, port, db)
            return process.wait()
        except RuntimeError as exc:
            raise ConfigError(f"{exc}: is port {port} taken? choose another with --port") from None
        except KeyboardInterrupt:
            log.info("stopping the dashboard")
            return 0
        finally:
            stop_server(process)
            signal.signal(signal.SIGTERM, previous)
