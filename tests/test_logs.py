import json
import logging
from pathlib import Path

import pytest

from botlib.app.logs import configure_logging, quiet_console
from botlib.core.log_tags import log_context
from botlib.redact import register_secrets


@pytest.fixture
def captured(capfd: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    yield capfd
    configure_logging("INFO", json_lines=False)


def test_json_lines_with_context_and_redaction(captured: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_lines=True)
    register_secrets(["sk-live-SECRET-123"])
    log = logging.getLogger("botlib.test")
    with log_context("cyc-1", "BTC/USD"):
        log.info("calling with key %s", "sk-live-SECRET-123", extra={"latency_ms": 12})
    log.info("outside")
    lines = [json.loads(x) for x in captured.readouterr().err.splitlines()]
    assert lines[0]["cycle_id"] == "cyc-1" and lines[0]["symbol"] == "BTC/USD"
    assert lines[0]["event"] == "calling with key ***" and lines[0]["latency_ms"] == 12
    assert (lines[1]["cycle_id"], lines[1]["symbol"]) == ("-", "-")


def test_text_lines_are_redacted_too(captured: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    register_secrets(["AKSECRETKEY42"])
    with log_context("cyc-2", "SOL/USD"):
        logging.getLogger("botlib.test").warning("key=AKSECRETKEY42")
    err = captured.readouterr().err
    assert "cycle=cyc-2 symbol=SOL/USD key=***" in err
    assert "AKSECRETKEY42" not in err


def test_a_log_file_gets_every_line_while_the_console_is_quiet(
    captured: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The demo's backfill: a progress bar on the terminal, a line per cycle in the file."""
    log_file = tmp_path / "logs" / "demo.log"
    configure_logging("INFO", log_file=log_file)
    register_secrets(["AKSECRETKEY42"])
    log = logging.getLogger("botlib.test")
    with quiet_console():
        log.info("cycle BTC/USD ok key=AKSECRETKEY42")
        log.warning("a warning still shows")
    log.info("after the backfill")
    err = captured.readouterr().err
    assert "cycle BTC/USD ok" not in err and "a warning still shows" in err
    assert "after the backfill" in err
    written = log_file.read_text()
    assert "cycle BTC/USD ok key=***" in written and "after the backfill" in written
    assert "AKSECRETKEY42" not in written
