"""One place for Alpaca's two spellings of a crypto pair: `BTC/USD` for data and orders,
`BTCUSD` for positions (a slash in a positions path is a 404)."""

from __future__ import annotations

import re

from botlib.errors import UnknownSymbolError

__all__ = ["pair", "position_symbol"]

_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")
_CLEAN = re.compile(r"[^A-Z0-9]")


def pair(symbol: str) -> str:
    """Return the `BASE/QUOTE` form of `symbol` (`btcusd`, `BTC-USD`, `BTC/USD` all work).

    >>> pair("btcusd"), pair("SOL/USD"), pair("ETH-USDT")
    ('BTC/USD', 'SOL/USD', 'ETH/USDT')
    """
    text = symbol.strip().upper()
    if "/" in text:
        base, _, quote = text.partition("/")
        if base and quote:
            return f"{_CLEAN.sub('', base)}/{_CLEAN.sub('', quote)}"
    flat = _CLEAN.sub("", text)
    for quote in _QUOTES:
        if flat.endswith(quote) and len(flat) > len(quote):
            return f"{flat[: -len(quote)]}/{quote}"
    raise UnknownSymbolError(symbol)


def position_symbol(symbol: str) -> str:
    """Return the `BASEQUOTE` form Alpaca uses for positions.

    >>> position_symbol("BTC/USD")
    'BTCUSD'
    """
    return pair(symbol).replace("/", "")
