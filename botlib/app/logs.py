"""Logging for botlib: one line per event, tagged with cycle id and symbol, secrets blanked.

`BOTLIB_LOG_JSON=1` switches to JSON lines. Only the standard `logging` module is used.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from botlib.core.log_tags import current_tags
from botlib.redact import scrub

__all__ = ["configure_logging"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.cycle_id, record.symbol = current_tags()
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "cycle_id": getattr(record, "cycle_id", "-"),
            "symbol": getattr(record, "symbol", "-"),
            "event": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(payload, default=str))


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Install one handler on the `botlib` logger (idempotent: reconfiguring replaces it)."""
    logger = logging.getLogger("botlib")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s cycle=%(cycle_id)s symbol=%(symbol)s %(message)s"
        handler.setFormatter(_TextFormatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
