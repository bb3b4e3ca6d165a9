"""Bounded, translated calls into alpaca-py.

The SDK's `requests` session has no timeout (a hung socket blocks forever) and retries 429/504
itself, three times, 3 s apart, ignoring Retry-After and resending orders blindly. So every
client gets a default timeout on its session and no SDK retries; reads are retried here with
backoff (tenacity); writes never are (the broker looks an order up before resending it).

Error texts are scrubbed here, at the border, before they are cut short: a venue or a proxy
that echoes the key headers back must not put them (or, cut mid-key, a piece of them) into an
exception, a cycle's reason, an alert or a log record. `trading_client` registers its key pair
with the redactor, so this holds for callers that never went through the CLI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from botlib.errors import (
    BrokerError,
    BrokerUnavailableError,
    OrderRejectedError,
)
from botlib.redact import register_secrets, scrub

__all__ = ["bound", "trading_client", "data_client", "translate", "call", "read"]

log = logging.getLogger(__name__)
T = TypeVar("T")  # not PEP 695 syntax, so tools on older Pythons can still read the file


class _DeadlineAdapter(HTTPAdapter):
    """Give every request a timeout unless the caller set one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def bound(client: T, timeout_s: float) -> T:  # noqa: UP047
    """Put `client` (an alpaca-py REST client) under a deadline and switch off its retries."""
    session: requests.Session = client._session  # type: ignore[attr-defined]
    for scheme in ("http://", "https://"):
        session.mount(scheme, _DeadlineAdapter(timeout_s))
    client._retry = 0  # type: ignore[attr-defined]
    return client


def trading_client(key: str, secret: str, *, paper: bool, url: str | None, timeout_s: float) -> Any:
    """Return a bounded `TradingClient` (paper or live host, or `url` when given).

    The key pair is registered with the log redactor first (see the module docstring).
    """
    from alpaca.trading.client import TradingClient

    register_secrets([key, secret])
    return bound(TradingClient(key, secret, paper=paper, url_override=url), timeout_s)


def data_client(url: str | None, timeout_s: float) -> Any:
    """Return a bounded `CryptoHistoricalDataClient` (crypto bars need no keys)."""
    from alpaca.data.historical import CryptoHistoricalDataClient

    return bound(CryptoHistoricalDataClient(url_override=url), timeout_s)


def _page_text(body: str) -> str:
    """Summarise a non-JSON error body (a proxy's HTML page) in a few plain words, scrubbed."""
    plain = " ".join(re.sub(r"<[^>]*>", " ", scrub(body)).split())
    return f"{plain[:120]} (an HTML page, not Alpaca's JSON)" if "<" in body else plain[:200]


def _body(exc: Any) -> tuple[int | None, str | None]:
    """Read Alpaca's `{"code", "message"}`; an HTML error page (a proxy's 502) has neither."""
    try:
        return int(exc.code), str(exc.message)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None


def translate(exc: Exception, what: str) -> BrokerError | OrderRejectedError:
    """Map an SDK or transport error to ours, saying what was being done."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        code, message = _body(exc)
        text = scrub(message) if message else _page_text(str(exc))
        if status is not None and (status >= 500 or status == 429):
            return BrokerUnavailableError(
                f"{what}: HTTP {status}: {text}", status=status, code=code
            )
        if what.startswith("submit") and status in (403, 422):
            return OrderRejectedError(f"{text}", status=status, code=code)
        return BrokerError(f"{what}: HTTP {status}: {text}", status=status, code=code)
    if isinstance(exc, requests.Timeout):
        return BrokerUnavailableError(f"{what}: no answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.RequestException):
        return BrokerUnavailableError(f"{what}: {type(exc).__name__}: {scrub(str(exc))[:200]}")
    raise exc


def call(what: str, fn: Callable[..., T], *args: Any) -> T:  # noqa: UP047
    """Run one SDK call once, translating its errors."""
    from alpaca.common.exceptions import APIError

    try:
        return fn(*args)
    except (APIError, requests.RequestException) as exc:
        raise translate(exc, what) from None


def read(what: str, fn: Callable[..., T], *args: Any) -> T:  # noqa: UP047
    """Run a read-only SDK call, retrying timeouts, 5xx and 429 with backoff (3 attempts)."""
    retrying = retry(
        retry=retry_if_exception_type(BrokerUnavailableError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    return retrying(call)(what, fn, *args)
