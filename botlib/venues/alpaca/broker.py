"""The broker port on Alpaca (`TradingClient`): paper by default, every order exactly once.

A write is never resent blindly: after a timeout, a 5xx or a dropped connection the order is
looked up by its client order id and resent only if Alpaca does not have it; a 422 "client
order id must be unique" means an earlier attempt landed (the executor then fetches it). After
a market order is submitted it is polled (bounded) for its fill; a resting order (limit, or the
stop_limit that protects a position while the bot sleeps) returns once Alpaca accepted it.
Prices go out rounded to the pair's tick, and a filled order carries its fee in USD, read from
the account's CFEE activities (`botlib.venues.alpaca.fees`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botlib.errors import BrokerError, BrokerUnavailableError, OrderRejectedError
from botlib.models import Account, Order, OrderRequest, Position
from botlib.venues.alpaca.fees import order_fee
from botlib.venues.alpaca.http import call, read
from botlib.venues.alpaca.symbols import pair, position_symbol

if TYPE_CHECKING:
    from alpaca.trading.client import TradingClient

__all__ = ["AlpacaBroker", "AssetRules", "parse_order", "DUST_USD"]

log = logging.getLogger(__name__)
DUST_USD = 1.0  # a position worth less than Alpaca's minimum order is dust: it cannot be sold


@dataclass(frozen=True, slots=True)
class AssetRules:
    """What Alpaca accepts for one pair (read once from `GET /v2/assets`)."""

    min_order_size: float
    min_trade_increment: float
    tradable: bool = True
    price_increment: float | None = None  # the tick; None: prices go out as given

    def round_qty(self, qty: float) -> float:
        """Round a quantity down to the increment (never sell more than held).

        >>> AssetRules(0.0001, 0.000001).round_qty(0.12345678)
        0.123456
        """
        steps = math.floor(qty / self.min_trade_increment + 1e-9)
        return round(steps * self.min_trade_increment, 12)

    def round_price(self, price: float, *, down: bool) -> float:
        """Round a price to the tick: down (a limit), else to the nearest tick (a stop).

        >>> rules = AssetRules(0.0001, 0.000001, price_increment=0.5)
        >>> rules.round_price(100.74, down=True), rules.round_price(100.74, down=False)
        (100.5, 100.5)
        """
        tick = self.price_increment
        if not tick:
            return price
        steps = math.floor(price / tick + 1e-9) if down else round(price / tick)
        return round(steps * tick, 12)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_order(order: Any) -> Order:
    """Translate an SDK `Order` into ours (raw SDK objects never leave this module).

    Its fee stays 0.0 here: Alpaca reports crypto fees as account activities, which the
    broker reads for the orders it books (`AlpacaBroker.get_order_by_client_id`).
    """
    kind = order.type or order.order_type or "market"
    return Order(
        id=str(order.id),
        client_order_id=order.client_order_id,
        symbol=pair(order.symbol),
        side=str(getattr(order.side, "value", order.side)),
        status=str(getattr(order.status, "value", order.status)),
        created_at=order.created_at,
        qty=_num(order.qty),
        notional=_num(order.notional),
        filled_qty=_num(order.filled_qty) or 0.0,
        filled_avg_price=_num(order.filled_avg_price),
        fee=0.0,
        filled_at=order.filled_at,
        type=str(getattr(kind, "value", kind)),
        limit_price=_num(order.limit_price),
        stop_price=_num(order.stop_price),
    )


class AlpacaBroker:
    """Account, positions and exactly-once orders (market, limit, stop_limit) on Alpaca."""

    def __init__(
        self,
        client: TradingClient,
        mode: str = "paper",
        *,
        fill_wait_s: float = 10.0,
        poll_s: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.mode = client, mode
        self.fill_wait_s, self.poll_s, self._sleep = fill_wait_s, poll_s, sleep
        self._rules: dict[str, AssetRules] | None = None

    # reads --------------------------------------------------------------------------------
    def account(self) -> Account:
        raw: Any = read("read account", self.client.get_account)
        cash, equity = float(raw.cash or 0), float(raw.equity or 0)
        return Account(cash, equity, float(raw.buying_power or cash), self.mode)

    def positions(self) -> list[Position]:
        raw: Any = read("read positions", self.client.get_all_positions)
        held = [_position(p) for p in raw if str(p.asset_class.value) == "crypto"]
        return [p for p in held if p is not None]

    def position(self, symbol: str) -> Position | None:
        try:
            raw: Any = read("read position", self.client.get_open_position, position_symbol(symbol))
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return _position(raw)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """Return the order with its fee (what the bot books), None when Alpaca has none."""
        found = self._find(client_order_id)
        return None if found is None else self._with_fee(parse_order(found))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Return the orders Alpaca holds open (resting limits and stops), all pairs if None."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        query = GetOrdersRequest(
            status=QueryOrderStatus.OPEN, symbols=[pair(symbol)] if symbol else None, limit=500
        )
        return [parse_order(o) for o in read("list orders", self.client.get_orders, query)]

    def rules(self, symbol: str) -> AssetRules:
        """Return the pair's minimums (all crypto assets are read once, then cached)."""
        if self._rules is None:
            from alpaca.trading.enums import AssetClass
            from alpaca.trading.requests import GetAssetsRequest

            query = GetAssetsRequest(asset_class=AssetClass.CRYPTO)
            assets: Any = read("read assets", self.client.get_all_assets, query)
            self._rules = {
                pair(a.symbol): AssetRules(
                    float(a.min_order_size or 0.0),
                    float(a.min_trade_increment or 1e-9),
                    bool(a.tradable),
                    float(a.price_increment) if a.price_increment else None,
                )
                for a in assets
            }
        found = self._rules.get(pair(symbol))
        if found is None or not found.tradable:
            raise OrderRejectedError(f"{symbol} is not a tradable Alpaca crypto pair", status=422)
        return found

    # writes -------------------------------------------------------------------------------
    def submit_order(self, request: OrderRequest) -> Order:
        """Send `request` once (see the module docstring); wait a bounded time for a market fill.

        A resting order returns as Alpaca accepted it (new/accepted), or filled if it crossed
        at once. A fill carries its fee; a failed fee read raises `BrokerError` with the order
        at the venue: its intent stays pending and the next pass books it, fee included.
        """
        sdk_request = self._sdk_request(request)
        cid = request.client_order_id
        try:
            placed: Any = call("submit order", self.client.submit_order, sdk_request)
        except BrokerUnavailableError as exc:
            log.warning("order %s: %s; looking it up before resending", cid, exc)
            placed = self._find(cid)
            if placed is None:
                log.warning("order %s is not at Alpaca: sending it once more", cid)
                placed = call("submit order (resend)", self.client.submit_order, sdk_request)
            else:
                log.info("order %s had been accepted despite the error", cid)
        order = parse_order(placed)
        return self._with_fee(order if request.rests else self._await_fill(order))

    def cancel_order(self, order_id: str) -> None:
        """Cancel an open order: 422 (OrderRejectedError) once it is no longer open, 404 unknown.

        Alpaca frees what an open sell reserved at once, so a replace is cancel-then-place.
        """
        try:
            call("cancel order", self.client.cancel_order_by_id, order_id)
        except ValueError:  # the SDK refuses an id that is not a UUID before asking
            raise BrokerError(f"order not found for {order_id}", status=404) from None
        except BrokerError as exc:
            if exc.status == 422:
                raise OrderRejectedError(str(exc), status=422, code=exc.code) from None
            raise

    def _sdk_request(self, request: OrderRequest) -> Any:
        """Build the SDK's market, limit or stop_limit request (gtc), rounded to the pair."""
        from alpaca.trading import requests as sdk
        from alpaca.trading.enums import OrderSide, TimeInForce

        rules = self.rules(request.symbol)
        kind = getattr(sdk, _SDK_REQUESTS[request.type])
        return kind(
            symbol=pair(request.symbol),
            side=OrderSide(request.side),
            time_in_force=TimeInForce.GTC,
            client_order_id=request.client_order_id,
            **_sizing(request, rules),
            **_prices(request, rules),
        )

    def _with_fee(self, order: Order) -> Order:
        """Attach the USD fee of what has filled (nothing filled, nothing charged)."""
        if order.filled_qty <= 0:
            return order
        fee, posted = order_fee(self.client, order)
        return replace(order, fee=fee, fee_posted=posted)

    def _find(self, client_order_id: str) -> Any | None:
        try:
            return read("find order", self.client.get_order_by_client_id, client_order_id)
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise

    def _await_fill(self, order: Order) -> Order:
        """Poll until the order is filled or final, at most `fill_wait_s`; partial fills count."""
        deadline = time.monotonic() + self.fill_wait_s
        while order.is_open and time.monotonic() < deadline:
            self._sleep(self.poll_s)
            raw = read("poll order", self.client.get_order_by_id, order.id)
            order = parse_order(raw)
        if order.is_open:
            log.warning("order %s still %s after %.0f s", order.client_order_id, order.status,
                        self.fill_wait_s)  # fmt: skip
        return order


_SDK_REQUESTS = {
    "market": "MarketOrderRequest",
    "limit": "LimitOrderRequest",
    "stop_limit": "StopLimitOrderRequest",
}


def _sizing(request: OrderRequest, rules: AssetRules) -> dict[str, float]:
    """A qty rounded down to the increment (refused under the minimum), or a notional in cents.

    A resting order goes by quantity (Alpaca documents `notional` for market orders): a limit
    buy's USD becomes `notional / limit_price` coins, rounded down.
    """
    if request.qty is None and not request.rests:
        return {"notional": round(float(request.notional or 0.0), 2)}
    wanted = request.qty
    if wanted is None:
        wanted = float(request.notional or 0.0) / float(request.limit_price or 1.0)
    qty = rules.round_qty(wanted)
    if qty < rules.min_order_size or qty <= 0:
        raise OrderRejectedError(
            f"not sent: qty {wanted:g} rounds to {qty:g}, below the minimum"
            f" {rules.min_order_size:g} for {request.symbol}",
            status=403,
        )
    return {"qty": qty}


def _prices(request: OrderRequest, rules: AssetRules) -> dict[str, float]:
    """Round a resting order's prices to the tick: a limit down, a stop to the nearest tick.

    Down for a buy's limit (never pay more than asked) and for a sell's (a stop's limit is the
    worst price accepted: rounding it up could leave the stop unfilled where it was meant to).
    """
    prices: dict[str, float] = {}
    if request.rests:
        prices["limit_price"] = rules.round_price(float(request.limit_price or 0.0), down=True)
    if request.type == "stop_limit":
        prices["stop_price"] = rules.round_price(float(request.stop_price or 0.0), down=False)
    if any(price <= 0 for price in prices.values()):
        raise OrderRejectedError(
            f"not sent: {request.type} prices round to 0 at the tick {rules.price_increment:g}"
            f" of {request.symbol}",
            status=422,
        )
    return prices


def _position(raw: Any) -> Position | None:
    """Translate an SDK position; dust (what fees leave, unsellable) counts as flat."""
    held = Position(pair(raw.symbol), float(raw.qty), float(raw.avg_entry_price))
    return held if held.qty * held.avg_entry_price >= DUST_USD else None
