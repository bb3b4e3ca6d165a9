"""One root error with a few named kinds, so callers can catch what they can act on."""

from __future__ import annotations

__all__ = [
    "BotlibError",
    "ConfigError",
    "DataError",
    "UnknownSymbolError",
    "OrderRejectedError",
    "BrokerError",
    "BrokerUnavailableError",
    "StaleDataError",
    "AnalystError",
    "StoreError",
]


class BotlibError(Exception):
    """Root of every error botlib raises on purpose; the message says how to fix the input."""


class ConfigError(BotlibError):
    """A setting is missing, malformed or contradicts another one."""


class DataError(BotlibError):
    """Market data that cannot be traded on: NaN, gaps, wrong order, too short."""


class StaleDataError(DataError):
    """No new bar for several intervals: the cycle is skipped, not failed."""


class UnknownSymbolError(BotlibError):
    """A symbol that is not configured or not tradable."""

    def __init__(self, symbol: str, known: list[str] | None = None) -> None:
        hint = f"; known: {', '.join(known)}" if known else ""
        super().__init__(f"unknown symbol {symbol!r}{hint}")
        self.symbol = symbol


class OrderRejectedError(BotlibError):
    """The venue refused an order; `status` and `code` mirror Alpaca's error shape."""

    def __init__(self, message: str, *, status: int, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def is_duplicate(self) -> bool:
        """Alpaca answers 422/40010001 for a client_order_id it has already seen."""
        return self.status == 422 and self.code == DUPLICATE_CLIENT_ORDER_ID


DUPLICATE_CLIENT_ORDER_ID = 40010001


class BrokerError(BotlibError):
    """The broker answered with an error (status and Alpaca's code when it sent one)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BrokerUnavailableError(BrokerError):
    """No usable answer: a timeout, a dropped connection, a 5xx or 429; a write may have landed."""


class AnalystError(BotlibError):
    """The analyst could not produce a valid decision (the cycle then HOLDs)."""


class StoreError(BotlibError):
    """The database cannot be opened, read or written."""
