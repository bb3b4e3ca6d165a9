import json
import logging

import pytest

from botlib.app.logs import configure_logging
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
