"""The cycle id and symbol every log line of a cycle carries (`botlib.app.logs` prints them)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["log_context", "current_tags"]

_context: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "botlib_log_context", default=("-", "-")
)


@contextlib.contextmanager
def log_context(cycle_id: str, symbol: str) -> Iterator[None]:
    """Tag every log record emitted inside the block with this cycle id and symbol."""
    token = _context.set((cycle_id, symbol))
    try:
        yield
    finally:
        _context.reset(token)


def current_tags() -> tuple[str, str]:
    """Return (cycle id, symbol) of the cycle running in this context, ("-", "-") outside one."""
    return _context.get()
