"""Logging for botlib: one line per event, tagged with cycle id and symbol, secrets blanked.

`BOTLIB_LOG_JSON=1` switches to JSON lines. Only the standard `logging` module is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from botlib.core.log_tags import current_tags
from botlib.redact import scrub

__all__ = ["configure_logging", "quiet_console"]

_TEXT = "%(asctime)s %(levelname)s %(name)s cycle=%(cycle_id)s symbol=%(symbol)s %(message)s"
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


def configure_logging(
    level: str = "INFO", json_lines: bool = False, log_file: Path | str | None = None
) -> None:
    """Install the `botlib` logger's handlers (idempotent: reconfiguring replaces them).

    Every line goes to stderr, and to `log_file` too when one is given (`BOTLIB_LOG_FILE`).
    """
    logger = logging.getLogger("botlib")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(_ContextFilter())
        handler.setFormatter(_JsonFormatter() if json_lines else _TextFormatter(_TEXT))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


@contextlib.contextmanager
def quiet_console(level: int = logging.WARNING) -> Iterator[None]:
    """Show only `level` and above on stderr inside the block; a log file still gets it all.

    A backfill writes a line per cycle (hundreds): the demo shows a progress bar instead.
    """
    console = [
        h
        for h in logging.getLogger("botlib").handlers
        if type(h) is logging.StreamHandler  # not the FileHandler subclass
    ]
    before = [h.level for h in console]
    for handler in console:
        handler.setLevel(level)
    try:
        yield
    finally:
        for handler, old in zip(console, before, strict=True):
            handler.setLevel(old)
