"""Logging for botlib: one line per event, tagged with cycle id and symbol, secrets blanked.

`BOTLIB_LOG_JSON=1` switches to JSON lines. Only the standard `logging` module is used.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["configure_logging", "log_context", "register_secrets", "scrub"]

_context: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "botlib_log_context", default=("-", "-")
)
_secrets: set[str] = set()
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


@contextlib.contextmanager
def log_context(cycle_id: str, symbol: str) -> Iterator[None]:
    """Tag every log record emitted inside the block with this cycle id and symbol."""
    token = _context.set((cycle_id, symbol))
    try:
        yield
    finally:
        _context.reset(token)


def register_secrets(values: list[str]) -> None:
    """Remember secret strings so that no handler ever writes them."""
    _secrets.update(v for v in values if len(v) >= 4)


# An OpenAI-style key, even partly masked as in a 401 message ("sk-proj-****...abcd").
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{16,}")


def _redact(text: str) -> str:
    """Blank registered secrets; one shaped like an OpenAI key reads `sk-***`, as the pattern
    leaves it, so the marker does not depend on whether the key had been registered."""
    for secret in _secrets:
        text = text.replace(secret, "sk-***" if _KEY_LIKE.fullmatch(secret) else "***")
    return text


def scrub(text: str) -> str:
    """Blank registered secrets and anything shaped like an API key (for stored text too)."""
    return _KEY_LIKE.sub("sk-***", _redact(text))


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.cycle_id, record.symbol = _context.get()
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
