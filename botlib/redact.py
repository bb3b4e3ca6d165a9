"""Secrets never reach a log line, a stored text or an export: every layer writes through here.

Adapters register the keys they are built with (`register_secrets`); `scrub` blanks those and
anything shaped like an API key, so an endpoint echoing a key in an error leaks nothing.
"""

from __future__ import annotations

import re

__all__ = ["register_secrets", "scrub"]

_secrets: set[str] = set()

# An OpenAI-style key, even partly masked as in a 401 message ("sk-proj-****...abcd").
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{16,}")


def register_secrets(values: list[str]) -> None:
    """Remember secret strings so that no handler ever writes them."""
    _secrets.update(v for v in values if len(v) >= 4)


def _redact(text: str) -> str:
    """Blank registered secrets; one shaped like an OpenAI key reads `sk-***`, as the pattern
    leaves it, so the marker does not depend on whether the key had been registered."""
    for secret in _secrets:
        text = text.replace(secret, "sk-***" if _KEY_LIKE.fullmatch(secret) else "***")
    return text


def scrub(text: str) -> str:
    """Blank registered secrets and anything shaped like an API key (for stored text too).

    >>> scrub("401: key sk-proj-abcdefghijklmnop1234 is invalid")
    '401: key sk-*** is invalid'
    """
    return _KEY_LIKE.sub("sk-***", _redact(text))
