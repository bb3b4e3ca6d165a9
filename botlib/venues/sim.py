"""The embedded venue: a broker that fills against the synthetic market (`sim_market`).

The broker keeps its own books (`sim_*` tables) and answers like Alpaca: a reused
client_order_id is 422/40010001, selling more than held (or than open sells leave free) is
403, orders under $1 are 403, fees (taker 0.25% by default) are taken in the received asset.
Limit and stop_limit orders rest and fill from the market's minute bars (`resting`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botlib.clock import floor_time, iso, parse_time
from botlib.errors import DUPLICATE_CLIENT_ORDER_ID, BrokerError, DataError, OrderRejectedError
from botlib.features.indicators import checked_price
from botlib.models import (
    OPEN_ORDER_STATUSES,
    Account,
    Order,
    OrderRequest,
    Position,
    timeframe_minutes,
)
from botlib.ports import Clock, MarketData
from botlib.storage.store import Store
from botlib.venues.resting import match_bar
from botlib.venues.sim_market import EPOCH, SimMarket

__all__ = ["SimMarket", "SimBroker", "EPOCH", "Fill", "market_fill", "books_after"]


@dataclass(frozen=True, slots=True)
class Fill:
    """One market fill, booked as Alpaca books crypto: the fee is taken in the received asset."""

    price: float  # the last price plus slippage (minus for a sell)
    qty: float  # what the order bought or sold
    value: float  # qty * price: USD paid, or USD proceeds before the fee
    fee: float  # value * fee_rate, in USD
    asset_change: float  # + qty net of the fee (buy), - qty (sell)
    cash_change: float  # - value (buy), + value net of the fee (sell)


def market_fill(
    side: str,
    last: float,
    fee_rate: float,
    slippage: float,
    *,
    qty: float | None = None,
    notional: float | None = None,
) -> Fill:
    """The fill arithmetic of `SimBroker` and the fast backtest: one statement of it.

    >>> market_fill("buy", 100.0, 0.0025, 0.0, notional=50.0).asset_change
    0.49875
    """
    sign = 1 if side == "buy" else -1
    price = last * (1 + sign * slippage)
    filled = qty if qty is not None else (notional or 0.0) / price
    value = filled * price
    if sign > 0:
        return Fill(price, filled, value, value * fee_rate, filled * (1 - fee_rate), -value)
    return Fill(price, filled, value, value * fee_rate, -filled, value * (1 - fee_rate))


def books_after(qty: float, avg_entry: float, fill: Fill) -> tuple[float, float]:
    """A position's quantity and average entry after `fill` (a sell keeps the entry price)."""
    new_qty = qty + fill.asset_change
    if fill.asset_change < 0:
        return max(new_qty, 0.0), avg_entry
    return new_qty, (qty * avg_entry + fill.value) / new_qty


class SimBroker:
    """A broker that fills market orders at the latest simulated price plus slippage and fees.

    Limit and stop_limit orders rest (status `new`) and are matched against the market's
    `fill_timeframe` bars that close after they were placed (`botlib.venues.resting`), on
    every read, as a venue matches them while the bot sleeps. An open sell reserves its
    quantity, as Alpaca's does: a second sell of the same coins is refused (403).
    """

    mode = "sim"

    def __init__(
        self,
        store: Store,
        market: MarketData,  # simulated bars, or stored ones (FrameMarket)
        clock: Clock,
        *,
        cash: float = 100_000.0,
        fee_rate: float = 0.0025,
        slippage_bps: float = 5.0,
        fill_timeframe: str = "1Min",
    ) -> None:
        self.store, self.market, self.clock = store, market, clock
        self.fee_rate, self.slippage = fee_rate, slippage_bps / 10_000
        self.fill_timeframe = fill_timeframe
        self._settled_at: datetime | None = None
        store.open_sim_account(cash, clock.now())

    def positions(self) -> list[Position]:
        self._settle()
        rows = self.store.sim_positions()
        return [Position(r["symbol"], r["qty"], r["avg_entry_price"]) for r in rows]

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def account(self) -> Account:
        now = self.clock.now()
        positions = self.positions()
        cash = self.store.sim_cash()
        value = sum(p.qty * self.market.latest_price(p.symbol, now) for p in positions)
        return Account(cash=cash, equity=cash + value, buying_power=cash, mode=self.mode)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        self._settle()
        found = self.store.sim_order(client_order_id)
        return _order(found) if found else None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._settle()
        return [_order(r) for r in self.store.open_sim_orders(symbol)]

    def cancel_order(self, order_id: str) -> None:
        """Cancel a resting order; 422 once it is filled or closed, 404 for an unknown id."""
        self._settle()
        row = self.store.sim_order_by_id(order_id)
        if row is None:
            raise BrokerError(f"order not found for {order_id}", status=404)
        if row["status"] not in OPEN_ORDER_STATUSES:
            raise OrderRejectedError(f'order is already in "{row["status"]}" state', status=422)
        self.store.update_sim_order(order_id, {"status": "canceled",
                                               "canceled_at": iso(self.clock.now())})  # fmt: skip

    def submit_order(self, request: OrderRequest) -> Order:
        if self.get_order_by_client_id(request.client_order_id):
            raise OrderRejectedError(
                "client_order_id must be unique", status=422, code=DUPLICATE_CLIENT_ORDER_ID
            )
        now = self.clock.now()
        last = self.market.latest_price(request.symbol, now)
        try:  # no fill at a price the market does not have (an operator's close skips the engine)
            last = checked_price(request.symbol, last)
        except DataError as exc:
            raise OrderRejectedError(f"{exc}: order not filled", status=403) from None
        if request.rests:
            return self._rest(request, now)
        fill = market_fill(request.side, last, self.fee_rate, self.slippage,
                           qty=request.qty, notional=request.notional)  # fmt: skip
        if fill.value < 1.0:
            raise OrderRejectedError("cost basis must be >= minimal amount of order 1", status=403)
        with self.store.transaction():
            self._book(request.symbol, request.side, fill)
            record = _record(request, now) | _filled(fill, now)
            self.store.add_sim_order(record)
        return _order(record)

    def _rest(self, request: OrderRequest, now: datetime) -> Order:
        """Accept a limit or stop_limit order: it rests until a later bar reaches it."""
        price = float(request.limit_price or 0.0)
        qty = request.qty if request.qty is not None else (request.notional or 0.0) / price
        if qty * price < 1.0:
            raise OrderRejectedError("cost basis must be >= minimal amount of order 1", status=403)
        self._check_balance(request.symbol, request.side, qty, qty * price)
        width = timedelta(minutes=timeframe_minutes(self.fill_timeframe))
        start = floor_time(now - timedelta(microseconds=1), int(width.total_seconds() // 60))
        record = _record(request, now) | {"status": "new", "triggered": 0,
                                          "checked_to": iso(start + width)}  # fmt: skip
        self.store.add_sim_order(record)
        return _order(record)

    def _check_balance(self, symbol: str, side: str, qty: float, value: float) -> None:
        """Refuse what Alpaca refuses: more cash or coin than is free of open orders."""
        held = self._held(symbol)
        if side == "buy":
            free = self.store.sim_cash() - self.store.sim_reserved(symbol=None, side="buy")
            if value > free + 1e-9:
                asked = f"requested: {value:.2f}, available: {max(free, 0.0):.2f}"
                raise OrderRejectedError(f"insufficient balance for USD ({asked})", status=403)
            return
        free_qty = (held.qty if held else 0.0) - self.store.sim_reserved(symbol, side="sell")
        if qty > free_qty * (1 + 1e-9) + 1e-12:
            asset = symbol.split("/")[0]
            raise OrderRejectedError(
                f"insufficient balance for {asset} (requested: {qty}, available:"
                f" {max(free_qty, 0.0)})",
                status=403,
            )

    def _held(self, symbol: str) -> Position | None:
        row = next((r for r in self.store.sim_positions() if r["symbol"] == symbol), None)
        return Position(symbol, row["qty"], row["avg_entry_price"]) if row else None

    def _book(self, symbol: str, side: str, fill: Fill) -> None:
        """Refuse what Alpaca refuses (more cash or coin than is free), else update the books."""
        self._check_balance(symbol, side, fill.qty, fill.value)
        held = self._held(symbol)
        qty, avg = (held.qty, held.avg_entry_price) if held else (0.0, 0.0)
        new_qty, new_avg = books_after(qty, avg, fill)
        self.store.set_sim_books(self.store.sim_cash() + fill.cash_change, symbol, new_qty, new_avg)

    def _settle(self) -> None:
        """Match every resting order against the bars that closed since it was last matched.

        Once per clock reading: a cycle reads the broker several times at one (simulated) now,
        and an order placed at that now has no closed bar to meet yet.
        """
        now = self.clock.now()
        if now == self._settled_at:
            return
        for row in self.store.open_sim_orders(None):
            self._match(row, now)
        self._settled_at = now

    def _match(self, row: dict[str, Any], now: datetime) -> None:
        minutes = timeframe_minutes(self.fill_timeframe)
        since = parse_time(row["checked_to"]) or now
        count = int((now - since).total_seconds() // 60) // minutes
        if count <= 0:
            return
        bars = self.market.bars(row["symbol"], self.fill_timeframe, now, count + 1)
        bars = bars[bars.index >= since]
        if bars.empty:
            return
        width = timedelta(minutes=minutes)
        triggered, o, h, lo = bool(row["triggered"]), *(bars[c].to_numpy() for c in
                                                         ("open", "high", "low"))  # fmt: skip
        for i, start in enumerate(bars.index):
            m = match_bar(row["type"], row["side"], limit=row["limit_price"],
                          stop=row["stop_price"], triggered=triggered,
                          open_=float(o[i]), high=float(h[i]), low=float(lo[i]))  # fmt: skip
            triggered = m.triggered
            if m.price is not None:
                self._fill_resting(row, m.price, start.to_pydatetime() + width)
                return
        checked = {"triggered": int(triggered), "checked_to": iso(bars.index[-1] + width)}
        self.store.update_sim_order(row["id"], checked)

    def _fill_resting(self, row: dict[str, Any], price: float, at: datetime) -> None:
        """Fill a resting order in full at `price` (fees as for every fill), or void it."""
        qty = row["qty"] if row["qty"] is not None else row["notional"] / price
        fill = market_fill(row["side"], price, self.fee_rate, 0.0, qty=qty)
        with self.store.transaction():
            self.store.update_sim_order(row["id"], {"status": "filling"})  # frees its reserve
            try:
                self._book(row["symbol"], row["side"], fill)
            except OrderRejectedError:  # the coins or cash went elsewhere (a manual trade)
                self.store.update_sim_order(row["id"], {"status": "canceled",
                                                        "canceled_at": iso(at)})  # fmt: skip
                return
            self.store.update_sim_order(row["id"], {"triggered": 1, "checked_to": iso(at)}
                                        | _filled(fill, at))  # fmt: skip


def _record(request: OrderRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side,
        "type": request.type,
        "limit_price": request.limit_price,
        "stop_price": request.stop_price,
        "qty": request.qty,
        "notional": request.notional,
        "created_at": iso(now),
    }


def _filled(fill: Fill, at: datetime) -> dict[str, Any]:
    return {
        "status": "filled",
        "filled_qty": fill.qty,
        "filled_avg_price": fill.price,
        "fee": fill.fee,
        "filled_at": iso(at),
    }


def _order(row: dict) -> Order:
    return Order(
        id=row["id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        status=row["status"],
        created_at=parse_time(row["created_at"]) or EPOCH,
        qty=row["qty"],
        notional=row["notional"],
        filled_qty=row.get("filled_qty") or 0.0,
        filled_avg_price=row.get("filled_avg_price"),
        fee=row.get("fee") or 0.0,
        filled_at=parse_time(row.get("filled_at")),
        type=row.get("type") or "market",
        limit_price=row.get("limit_price"),
        stop_price=row.get("stop_price"),
    )
