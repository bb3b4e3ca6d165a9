"""How numbers and times read on every page: money, P&L, percentages, quantities, UTC minutes.

Plain strings (or a span with a class, for `tone`), so unit tests check every label.
"""

from __future__ import annotations

import math
from datetime import datetime

from botlib.clock import parse_time

__all__ = ["NONE", "slug", "money", "signed_money", "percent", "quantity", "utc_minute", "tone"]

NONE = "—"


def slug(symbol: str) -> str:
    """Make a CSS-safe name for a symbol.

    >>> slug("BTC/USD")
    'BTCUSD'
    """
    return "".join(ch for ch in symbol if ch.isalnum())


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def money(value: float | None) -> str:
    """Format dollars with cents (more digits below $1, where cents hide the price).

    >>> money(98315.856), money(0.01234), money(None)
    ('$98,315.86', '$0.01234', '—')
    """
    if _missing(value):
        return NONE
    assert value is not None
    return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:.4g}"


def signed_money(value: float | None) -> str:
    """Format a P&L with its sign in front, so gains and losses read at a glance.

    >>> signed_money(38.356), signed_money(-723.96), signed_money(0.0)
    ('+$38.36', '−$723.96', '$0.00')
    """
    if _missing(value):
        return NONE
    assert value is not None
    if round(value, 2) == 0:
        return "$0.00"
    return ("+" if value > 0 else "−") + money(abs(value))


def percent(fraction: float | None, digits: int = 1) -> str:
    """Format a fraction as a percentage.

    >>> percent(0.2), percent(None)
    ('20.0 %', '—')
    """
    return NONE if _missing(fraction) else f"{float(fraction or 0) * 100:.{digits}f} %"


def quantity(value: float) -> str:
    """Show six significant digits: enough for 0.105331 BTC and 65.1234 SOL.

    >>> quantity(0.10533122483720507)
    '0.105331'
    """
    return f"{value:,.6g}"


def utc_minute(value: str | datetime | None) -> str:
    """Format a stored ISO time as `YYYY-MM-DD HH:MM UTC`.

    >>> utc_minute("2026-11-20T12:00:00+00:00")
    '2026-11-20 12:00 UTC'
    """
    when = parse_time(value) if isinstance(value, str) else value
    return NONE if when is None else f"{when:%Y-%m-%d %H:%M} UTC"


def tone(value: float | None, text: str) -> str:
    """Wrap a P&L in a span whose class colours it green or red."""
    if _missing(value) or round(value or 0.0, 2) == 0:
        return text
    return f'<span class="botlib-{"gain" if (value or 0) > 0 else "loss"}">{text}</span>'
