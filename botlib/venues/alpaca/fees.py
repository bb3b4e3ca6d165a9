"""Crypto fees on Alpaca: CFEE account activities, matched to their order, valued in USD.

Alpaca does not put a crypto fee on the order. It charges it in the received asset (a buy's in
coins, so the position holds fewer coins than were bought; a sell's in USD) and reports it as an
account activity of type CFEE, one per fill. alpaca-py's `TradingClient` has no activities
method, so the SDK's generic REST `get` reads `GET /v2/account/activities/CFEE`, through the
same bounded, retried `read` as every other read, and each activity is validated with the
SDK's `NonTradeActivity` model.

Matching rests on an assumption: a CFEE activity names its order in an `order_id` field (real
activities carry symbol, qty (negative, in the fee's asset), price, date, net_amount,
description and status; `order_id` is what we rely on). The SDK's model drops fields it does
not declare, so `order_id` is read from the raw activity. Valued in USD: a coin fee (a buy's)
is |qty| x price; a USD fee (a sell's) is |net_amount|, or |qty| when net_amount is 0.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from botlib.errors import BrokerError
from botlib.models import Order
from botlib.venues.alpaca.http import read

__all__ = ["order_fee", "fee_activities", "fee_usd", "PAGE_SIZE"]

log = logging.getLogger(__name__)
PAGE_SIZE, MAX_PAGES = 100, 20  # Alpaca's largest activities page; a bound on the walk
# The Trading API's activities omit account_id (it is the caller's); the SDK's model, shared
# with the Broker API, requires one: the nil UUID stands in.
_NO_ACCOUNT = "00000000-0000-0000-0000-000000000000"


def _parse(raw: Any) -> tuple[str | None, Any]:
    """Validate one raw activity; return its order id (None when absent) and the SDK model."""
    from alpaca.trading.models import NonTradeActivity

    try:
        activity = NonTradeActivity(**({"account_id": _NO_ACCOUNT} | raw))
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        text = " ".join(str(exc).split())[:200]
        raise BrokerError(f"read fee activities: an activity in an unknown shape: {text}") from None
    order_id = raw.get("order_id")
    return (None if order_id is None else str(order_id).lower()), activity


def fee_activities(client: Any, since: datetime) -> list[tuple[str | None, Any]]:
    """Return (order id, activity) for every CFEE activity after `since`, newest first.

    Pages are followed by `page_token` (the last id of a page) up to `MAX_PAGES`.
    """
    found: list[tuple[str | None, Any]] = []
    query: dict[str, Any] = {"after": since.date().isoformat(), "direction": "desc",
                             "page_size": PAGE_SIZE}  # fmt: skip
    for _ in range(MAX_PAGES):
        page: Any = read("read fee activities", client.get, "/account/activities/CFEE", query)
        if not isinstance(page, list):
            raise BrokerError("read fee activities: the answer is not a list of activities")
        found += [_parse(raw) for raw in page]
        if len(page) < PAGE_SIZE:
            return found
        query = query | {"page_token": page[-1].get("id")}
    log.warning("fee activities: more than %d pages since %s, read the newest only",
                MAX_PAGES, since.date())  # fmt: skip
    return found


def fee_usd(activity: Any, side: str) -> float:
    """Value one CFEE activity in USD: a buy's fee is in coins, a sell's in USD.

    >>> from types import SimpleNamespace as A
    >>> fee_usd(A(qty=-0.0000025, price=60000.0, net_amount=0.0), "buy")
    0.15
    >>> fee_usd(A(qty=-0.15, price=60000.0, net_amount=-0.15), "sell")
    0.15
    """
    qty = abs(float(activity.qty or 0.0))
    if side == "buy":
        return round(qty * float(activity.price or 0.0), 10)
    return abs(float(activity.net_amount or 0.0)) or qty


def order_fee(client: Any, order: Order) -> tuple[float, bool]:
    """Return the USD fee of `order`'s fills so far (the sum of its CFEE activities) and
    whether it is posted.

    A filled order whose fee is not posted yet counts 0.0, not posted: Alpaca has posted crypto
    fees at the end of the day, and holding the booking back until then would leave the bot
    blind to its own position; the trade is booked with `fee_pending` and its fee and P&L are
    corrected once the activity appears (`botlib.core.orders.reconcile`). A failed read raises
    instead (`BrokerError`): the booking is then retried on the next pass, with the fee.
    """
    since = order.created_at - timedelta(days=1)  # `after` is a date: keep the whole day
    fees = [
        fee_usd(activity, order.side)
        for order_id, activity in fee_activities(client, since)
        if order_id == order.id.lower() and _counts(activity)
    ]
    if not fees:
        log.warning("order %s: no CFEE activity posted yet; its fee is booked as 0 until it is",
                    order.client_order_id)  # fmt: skip
    return sum(fees), bool(fees)


def _counts(activity: Any) -> bool:
    """A canceled activity (a fee reversed) charges nothing."""
    status = getattr(activity.status, "value", activity.status)
    return status != "canceled"
