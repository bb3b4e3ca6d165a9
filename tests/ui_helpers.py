"""Helpers shared by the dashboard tests: copy a demo DB, run one more real cycle, free ports."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from botlib.analysts.rules import RulesAnalyst
from botlib.clock import ManualClock, parse_time
from botlib.core.engine import Engine
from botlib.models import CycleReport
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket


def copy_db(source: Path, target: Path) -> Path:
    """Copy a database with SQLite's backup API (safe even with a WAL beside it)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def run_next_cycle(db: Path, symbol: str = "BTC/USD") -> CycleReport:
    """Run one forced cycle 15 minutes after the DB's last one, as the scheduler would."""
    store = Store(db)
    try:
        last = parse_time(store.rows("SELECT max(started_at) AS ts FROM cycles")[0]["ts"])
        assert last is not None, "the database has no cycles to follow"
        clock = ManualClock(last + timedelta(minutes=15))
        market = SimMarket()
        broker = SimBroker(store, market, clock)
        engine = Engine(market, broker, RulesAnalyst(), store, clock=clock)
        return engine.run_cycle(symbol, force=True)
    finally:
        store.close()


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def voila_kernels(voila_pid: int) -> list[int]:
    """List the kernel processes a Voila server started (its `ipykernel` children, Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"ipykernel" not in cmdline.read_bytes():
                continue
            stat = (cmdline.parent / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == voila_pid:
            found.append(int(cmdline.parent.name))
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.25) -> float:
    """Poll `condition` until it holds; return the seconds it took; fail naming `what`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def websocket_status(url: str, subprotocol: str | None = None, timeout: float = 30.0) -> int:
    """Open a websocket handshake on `url` (ws://host:port/path) and return the HTTP status.

    A raw socket rather than a websocket client: nothing is left open whatever the answer
    (101 switching protocols, or a refusal such as 400).
    """
    parsed = urllib.parse.urlsplit(url)
    lines = [
        f"GET {parsed.path} HTTP/1.1",
        f"Host: {parsed.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *([f"Sec-WebSocket-Protocol: {subprotocol}"] if subprotocol else []),
    ]
    address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])
