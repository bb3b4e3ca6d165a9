"""A loopback fake of Alpaca (trading API + crypto bars) for the unmodified alpaca-py 0.44 SDK.

One server answers both hosts: `TradingClient(key, secret, url_override=fake.url)` appends
`/v2/...`, `CryptoHistoricalDataClient(url_override=fake.url)` appends `/v1beta3/...`. It keeps
account, positions and orders in memory, applies the crypto venue rules of
../shared/CONTRACTS.md (gtc/ioc only, $1 minimum, no shorting, unique client_order_id, 0.25%
fee in the received asset, posted as CFEE account activities), serves deterministic paginated
bars, and injects faults (`fake.inject(...)`) so adapters can be tested against errors the real
venue produces.

Resting limit / stop_limit orders are matched against the generated minute bars that completed
since they were last checked, on every request and whenever `now` is set, by the one rule of
`botlib.venues.resting.match_bar` (the simulator's): a stop fills at the matched price, a gap
below its limit leaves it open and triggered. A symbol given a fixed price with `set_price` is
no longer matched against the generated path: its path is the set price, crossed at once.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from botlib.venues.resting import match_bar
from tests.fakes.alpaca_state import (
    ASSETS,
    OPEN,
    ApiError,
    BarGenerator,
    Fault,
    account_json,
    activities_page,
    activity_id,
    activity_json,
    asset_json,
    bars_page,
    ceil_minute,
    compact,
    drop,
    error,
    held_response,
    html,
    lost_response,
    num,
    order_json,
    pair,
    parse_time,
    position_json,
    status,
    timeout,
    validate_order,
)
from tests.fakes.loopback import Loopback, LoopbackServer

__all__ = [
    "FakeAlpaca",
    "Fault",
    "status",
    "html",
    "timeout",
    "lost_response",
    "held_response",
    "drop",
]

UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output clean."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Every verb goes through one path so faults and recording apply alike."""
        fake, method = self.server.fake, self.command
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body, bad = (json.loads(raw) if raw else None), False
        except ValueError:
            body, bad = raw.decode(errors="replace"), True  # recorded as text
        fake.record(method, parts.path, query, body, headers)
        fault = fake.take_fault(method, parts.path)
        kind = fault.kind if fault else ""
        if fault and kind in ("status", "html"):
            ctype = "text/html" if kind == "html" else "application/json"
            self._send(Reply(fault.status, fault.body, {"Content-Type": ctype}))
            return
        if (fault and kind == "timeout" and fake.stopping.wait(fault.seconds)) or kind == "drop":
            self.close_connection = True
            return
        if bad:
            reply = Reply(400, {"code": 40010000, "message": "request body format is invalid"})
        else:
            reply = fake.handle(method, parts.path, query, body, headers)
        if fault and kind == "held_response" and fake.stopping.wait(fault.seconds):
            return  # executed; the answer never leaves (the client was killed meanwhile)
        if fault and kind == "lost_response":
            if fault.how == "drop":
                self.close_connection = True
                return
            reply = Reply(504, html(504).body, {"Content-Type": "text/html"})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = b"" if reply.status == 204 else body.encode()
        try:
            self.send_response(reply.status)
            if data and "Content-Type" not in reply.headers:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    do_POST = do_DELETE = do_PATCH = do_GET


class FakeAlpaca(Loopback):
    """Start with `with FakeAlpaca() as fake:`; point both SDK clients at `fake.url`."""

    def __init__(
        self,
        *,
        key_id: str = "fake-key-id",
        secret_key: str = "fake-secret-key",
        cash: float = 100_000.0,
        seed: int = 7,
    ) -> None:
        self.key_id, self.secret_key = key_id, secret_key
        self.cash = cash
        self.fee_rate = 0.0025
        self.fill_mode = "immediate"  # immediate | partial | accepted
        self.page_size = 1000
        self.bar_gaps: list[datetime | tuple[datetime, datetime]] = []
        self.duplicate_bars: set[datetime] = set()
        self.frozen_at: datetime | None = None
        self.prices: dict[str, float] = {}
        self.requests: list[dict[str, Any]] = []
        self.fees: list[dict[str, Any]] = []  # one per fill: served as CFEE activities
        self.fees_posted = True  # False: fees not posted yet (Alpaca once posted them daily)
        self.bars = BarGenerator(seed)
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/{key_id}"))
        self._start_cash = cash
        self._now: datetime | None = None
        self._orders: dict[str, dict[str, Any]] = {}
        self._positions: dict[str, dict[str, Any]] = {}  # "BTCUSD" -> {symbol, qty, cost}
        self._faults: list[list[Any]] = []
        self._lock = threading.RLock()
        super().__init__(_Handler)
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/v2/account"), self._account),
            ("GET", re.compile(r"/v2/account/activities"), self._activities),
            ("GET", re.compile(r"/v2/account/activities/([^/]+)"), self._activities),
            ("GET", re.compile(r"/v2/assets"), self._assets),
            ("GET", re.compile(r"/v2/assets/(.+)"), self._asset),
            ("GET", re.compile(r"/v2/positions"), self._list_positions),
            ("DELETE", re.compile(r"/v2/positions"), self._close_all),
            ("GET", re.compile(r"/v2/positions/([^/]+)"), self._get_position),
            ("DELETE", re.compile(r"/v2/positions/([^/]+)"), self._close_position),
            ("POST", re.compile(r"/v2/orders"), self._submit),
            ("GET", re.compile(r"/v2/orders"), self._list_orders),
            ("DELETE", re.compile(r"/v2/orders"), self._cancel_all),
            ("GET", re.compile(r"/v2/orders:by_client_order_id"), self._by_client_id),
            ("GET", re.compile(r"/v2/orders/([^/]+)"), self._get_order),
            ("DELETE", re.compile(r"/v2/orders/([^/]+)"), self._cancel),
            ("GET", re.compile(r"/v1beta3/crypto/us/bars"), self._crypto_bars),
        ]

    # ----------------------------------------------------------------- lifecycle, helpers
    @property
    def url(self) -> str:
        return self.origin

    @property
    def now(self) -> datetime:
        """The fake's clock: a fixed time once set, else the real UTC now."""
        return self._now or datetime.now(UTC)

    @now.setter
    def now(self, moment: datetime | None) -> None:
        """Move the clock; resting orders meet the minute bars it moved past."""
        with self._lock:
            self._now = moment
            self._match_paths()

    def inject(self, method: str, path_prefix: str, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests matching method (or "*") and path prefix."""
        with self._lock:
            self._faults.append([method.upper(), path_prefix, fault, times])

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                if entry[0] in ("*", method) and path.startswith(entry[1]) and entry[3] > 0:
                    entry[3] -= 1
                    return entry[2]
        return None

    def record(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: dict[str, str]) -> None:  # fmt: skip
        with self._lock:
            self.requests.append(
                {"method": method, "path": path, "query": query, "json": body, "headers": headers}
            )

    def requests_to(self, path: str, method: str = "GET") -> list[dict[str, Any]]:
        """Recorded requests for exactly `path` (e.g. to count the SDK's bar pages)."""
        with self._lock:
            return [r for r in self.requests if r["path"] == path and r["method"] == method]

    def price(self, symbol: str) -> float:
        """The fill price: `set_price`'s value, else the generated bars' price at `now`."""
        sym = pair(symbol) or symbol
        with self._lock:
            return self.prices.get(sym) or self.bars.price_at(sym, self.now)

    def set_price(self, symbol: str, price: float) -> None:
        """Fix the market price; resting orders of `symbol` that now cross are filled.

        From now on `symbol` is not matched against the generated bars (the path up to now is).
        """
        with self._lock:
            self._match_paths()
            sym = pair(symbol) or symbol
            self.prices[sym] = float(price)
            for order in list(self._orders.values()):
                if order["symbol"] == sym:
                    self._try_fill(order)

    def fill_open_orders(self) -> None:
        """Fill every open order that can fill (market always, limits when crossed) in full."""
        with self._lock:
            for order in list(self._orders.values()):
                self._try_fill(order, force=True)

    def set_position(self, symbol: str, qty: float, avg_entry_price: float) -> None:
        """Seed a holding directly (cash untouched), e.g. a deposit of coins."""
        sym = pair(symbol) or symbol
        with self._lock:
            cost = qty * avg_entry_price
            self._positions[compact(sym)] = {"symbol": sym, "qty": qty, "cost": cost}

    def place_manual_trade(self, symbol: str, side: str, *, qty: float | None = None,
                           notional: float | None = None, price: float | None = None
                           ) -> dict[str, Any]:  # fmt: skip
        """Simulate a trade made in Alpaca's web UI: filled at once, unknown to the bot."""
        if price is not None:
            self.set_price(symbol, price)
        with self._lock:
            sym, cid = pair(symbol) or symbol, f"web-{uuid.uuid4().hex}"
            order = self._new_order(symbol=sym, side=side, qty=qty, notional=notional,
                                    client_order_id=cid)  # fmt: skip
            self._execute(order, 1.0)
            return order_json(order)

    def gap(self, symbol: str, at: datetime, factor: float) -> None:
        """Make the generated path of `symbol` gap by `factor` at the minute `at` (see bars.gap)."""
        with self._lock:
            self.bars.gap(pair(symbol) or symbol, at, factor)

    def triggered(self, order_id: str) -> bool:
        """Whether a stop_limit order's stop has been reached (Alpaca's order does not say)."""
        with self._lock:
            return bool(self._orders[order_id]["triggered"])

    def fee_activities(self) -> list[dict[str, Any]]:
        """Every CFEE activity, oldest first, in the wire shape the activities endpoint serves."""
        with self._lock:
            fees = sorted(self.fees, key=lambda f: (f["at"], f["seq"]))
            return [activity_json(f, self.account_id) for f in fees]

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Every order in creation order, in the wire shape `GET /v2/orders` returns."""
        with self._lock:
            return [order_json(o) for o in self._orders.values()]

    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        """Open positions keyed `BTCUSD`, in the wire shape `GET /v2/positions` returns."""
        with self._lock:
            return {k: self._position_json(k) for k in self._positions}

    # ----------------------------------------------------------------------- dispatch
    def handle(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: dict[str, str]) -> Reply:  # fmt: skip
        if path.startswith("/v2/") and (
            headers.get("apca-api-key-id") != self.key_id
            or headers.get("apca-api-secret-key") != self.secret_key
        ):
            return Reply(401, UNAUTHORIZED)
        for verb, pattern, action in self._routes:
            found = pattern.fullmatch(path)
            if verb == method and found:
                try:
                    with self._lock:
                        self._match_paths()
                        return action(query, body, *map(unquote, found.groups()))
                except ApiError as err:
                    return Reply(err.status, err.body)
                except Exception as exc:  # a bug in the fake: answer it rather than drop
                    return Reply(500, {"code": 50010000, "message": f"fake crashed: {exc!r}"})
        return Reply(404, {"code": 40410000, "message": "endpoint not found"})

    def _account(self, query: dict[str, str], body: Any) -> Reply:
        value = sum(p["qty"] * self.price(p["symbol"]) for p in self._positions.values())
        free, start = self._free_cash(), self._start_cash
        return Reply(200, account_json(self.account_id, self.cash, value, free, start))

    def _assets(self, query: dict[str, str], body: Any) -> Reply:
        wanted = (query.get("asset_class", "crypto"), query.get("status", "active"))
        if wanted != ("crypto", "active"):
            return Reply(200, [])
        return Reply(200, [asset_json(s) for s in ASSETS])

    def _asset(self, query: dict[str, str], body: Any, symbol: str) -> Reply:
        sym = pair(symbol)
        if not sym:
            raise error(404, "asset not found", 40410000)
        return Reply(200, asset_json(sym))

    # ---------------------------------------------------------------------- positions
    def _held(self, sym: str) -> float:
        return self._positions.get(compact(sym), {}).get("qty", 0.0)

    def _remaining(self, order: dict[str, Any]) -> tuple[float, float]:
        """(qty, usd) still to fill, valued at the limit price or else the market."""
        ref = order["limit_price"] or self.price(order["symbol"])
        if order["notional"] is not None:
            usd = order["notional"] - order["filled_usd"]
            return usd / ref, usd
        qty = order["qty"] - order["filled_qty"]
        return qty, qty * ref

    def _free_cash(self) -> float:
        opens = [o for o in self._orders.values() if o["status"] in OPEN and o["side"] == "buy"]
        return self.cash - sum(self._remaining(o)[1] for o in opens)

    def _free_qty(self, sym: str) -> float:
        opens = [o for o in self._orders.values()
                 if o["status"] in OPEN and o["side"] == "sell" and o["symbol"] == sym]  # fmt: skip
        return self._held(sym) - sum(self._remaining(o)[0] for o in opens)

    def _position_json(self, key: str) -> dict[str, Any]:
        pos = self._positions[key]
        sym = pos["symbol"]
        return position_json(sym, pos["qty"], pos["cost"], self.price(sym), self._free_qty(sym))

    def _list_positions(self, query: dict[str, str], body: Any) -> Reply:
        return Reply(200, [self._position_json(k) for k in self._positions])

    def _get_position(self, query: dict[str, str], body: Any, symbol: str) -> Reply:
        if "/" in symbol or compact(symbol) not in self._positions:
            raise error(404, "position does not exist")
        return Reply(200, self._position_json(compact(symbol)))

    def _close_position(self, query: dict[str, str], body: Any, symbol: str) -> Reply:
        if "/" in symbol or compact(symbol) not in self._positions:
            raise error(404, "position does not exist")
        pos = self._positions[compact(symbol)]
        qty = pos["qty"]
        if query.get("percentage"):
            qty = pos["qty"] * float(query["percentage"]) / 100
        elif query.get("qty"):
            qty = float(query["qty"])
        available = self._free_qty(pos["symbol"])
        if qty > available + 1e-12:
            message = f"insufficient qty available for order (requested: {num(qty)}, "
            raise error(403, message + f"available: {num(available)})")
        order = self._new_order(symbol=pos["symbol"], side="sell", qty=qty, notional=None)
        self._try_fill(order)
        return Reply(200, order_json(order))

    def _close_all(self, query: dict[str, str], body: Any) -> Reply:
        if query.get("cancel_orders", "").lower() == "true":
            self._cancel_all(query, body)
        answers = []
        for key in list(self._positions):
            try:
                answers.append({"symbol": key, "status": 200,
                                "body": self._close_position({}, None, key).body})  # fmt: skip
            except ApiError as err:
                answers.append(
                    {"symbol": key, "status": err.status, "body": {**err.body, "symbol": key}}
                )
        return Reply(207, answers)

    # ------------------------------------------------------------------------- orders
    def _new_order(self, **fields: Any) -> dict[str, Any]:
        """Record an order (fields as `validate_order` returns them); it starts `new`."""
        now = self.now
        order = {
            "id": str(uuid.uuid4()), "limit_price": None, "stop_price": None, "status": "new",
            "filled_qty": 0.0, "filled_usd": 0.0, "created_at": now, "updated_at": now,
            "filled_at": None, "canceled_at": None, "time_in_force": "gtc", "type": "market",
            "client_order_id": str(uuid.uuid4()), **fields,
        }  # fmt: skip
        order["triggered"] = order["type"] != "stop_limit"
        order["checked_to"] = ceil_minute(now)  # resting orders meet the bars after this
        self._orders[order["id"]] = order
        return order

    def _submit(self, query: dict[str, str], body: Any) -> Reply:
        fields = validate_order(body)
        sym, side, cid = fields["symbol"], fields["side"], fields["client_order_id"]
        if any(o["client_order_id"] == cid for o in self._orders.values()):
            raise error(422, "client_order_id must be unique", 40010001)
        ref = fields["limit_price"] or self.price(sym)
        usd = fields["notional"] or fields["qty"] * ref
        if usd < 1:
            raise error(403, "cost basis must be >= minimal amount of order 1")
        if side == "buy":
            want, have, asset = usd, self._free_cash(), "USD"
        else:
            want, have, asset = usd / ref, self._free_qty(sym), sym.split("/")[0]
        if want > have + 1e-9:
            message = f"insufficient balance for {asset} (requested: {num(want)}, "
            raise error(403, message + f"available: {num(max(have, 0.0))})")
        order = self._new_order(**fields)
        self._try_fill(order)
        ioc = order["time_in_force"] == "ioc" and self.fill_mode != "accepted"
        if ioc and order["status"] in OPEN:
            order.update(status="canceled", canceled_at=self.now)
        return Reply(200, order_json(order))

    def _crosses(self, order: dict[str, Any]) -> bool:
        price, buy = self.price(order["symbol"]), order["side"] == "buy"
        if not order["triggered"]:
            stop = order["stop_price"]
            if not (price >= stop if buy else price <= stop):
                return False
            order["triggered"] = True
        limit = order["limit_price"]
        return limit is None or (price <= limit if buy else price >= limit)

    def _try_fill(self, order: dict[str, Any], force: bool = False) -> None:
        if order["status"] not in OPEN or not self._crosses(order):
            return
        if self.fill_mode == "accepted" and not force:
            return
        partial = self.fill_mode == "partial" and not force and order["filled_qty"] == 0
        self._execute(order, 0.5 if partial else 1.0)

    def _execute(self, order: dict[str, Any], portion: float, price: float | None = None,
                 at: datetime | None = None) -> None:  # fmt: skip
        """Fill `portion` of what remains at `price` (default: the market's) at `at` (now).

        The fee is taken in the received asset (coins off a buy, USD off a sell's proceeds)
        and posted as one CFEE activity per fill.
        """
        sym = order["symbol"]
        price = self.price(sym) if price is None else price
        if order["notional"] is not None:
            qty = (order["notional"] - order["filled_usd"]) * portion / price
        else:
            qty = (order["qty"] - order["filled_qty"]) * portion
        pos = self._positions.setdefault(compact(sym), {"symbol": sym, "qty": 0.0, "cost": 0.0})
        if order["side"] == "sell":
            qty = min(qty, pos["qty"])
        usd, now = qty * price, at or self.now
        if order["side"] == "buy":
            fee = {"asset": sym.split("/")[0], "qty": qty * self.fee_rate}
            self.cash -= usd
            pos["qty"] += qty - fee["qty"]
            pos["cost"] += usd
        else:
            fee = {"asset": "USD", "qty": usd * self.fee_rate}
            pos["cost"] -= pos["cost"] * qty / pos["qty"] if pos["qty"] else 0.0
            pos["qty"] -= qty
            self.cash += usd - fee["qty"]
        if pos["qty"] <= 1e-12:
            del self._positions[compact(sym)]
        self.fees.append({"id": activity_id(now), "seq": len(self.fees), "order_id": order["id"],
                          "symbol": sym, "at": now, "price": price, "usd": usd * self.fee_rate,
                          **fee})  # fmt: skip
        order["filled_qty"] += qty
        order["filled_usd"] += usd
        order.update(status="filled" if portion >= 1 else "partially_filled", updated_at=now)
        if portion >= 1:
            order["filled_at"] = now

    def _match_paths(self) -> None:
        """Match every resting order of a symbol without a set price against its path."""
        if self.fill_mode == "accepted":
            return  # the venue accepts and holds; `fill_open_orders` fills
        end = self.now.replace(second=0, microsecond=0)  # bars before it have closed
        for order in list(self._orders.values()):
            resting = order["status"] in OPEN and order["type"] != "market"
            if resting and order["symbol"] not in self.prices:
                self._match_path(order, end)

    def _match_path(self, order: dict[str, Any], end: datetime) -> None:
        """Walk the minute bars in [checked_to, end): trigger, fill at the matched price."""
        sym = order["symbol"]
        for start in self.bars.starts(order["checked_to"], end, 1):
            bar = self.bars.bar(sym, start, 1, end)
            found = match_bar(order["type"], order["side"], limit=order["limit_price"],
                              stop=order["stop_price"], triggered=order["triggered"],
                              open_=bar["o"], high=bar["h"], low=bar["l"])  # fmt: skip
            order["triggered"] = found.triggered
            if found.price is not None:
                order["checked_to"] = start + timedelta(minutes=1)
                self._execute(order, 1.0, found.price, order["checked_to"])
                return
        order["checked_to"] = max(order["checked_to"], end)

    def _activities(self, query: dict[str, str], body: Any, kind: str | None = None) -> Reply:
        if not self.fees_posted:
            return Reply(200, [])
        return Reply(200, activities_page(self.fees, self.account_id, query, kind))

    def _list_orders(self, query: dict[str, str], body: Any) -> Reply:
        wanted = query.get("status", "open")
        symbols = {pair(s) or s for s in query.get("symbols", "").split(",") if s}
        after = parse_time(query["after"]) if query.get("after") else None
        until = parse_time(query["until"]) if query.get("until") else None
        found = [
            o for o in self._orders.values()
            if (wanted == "all" or (o["status"] in OPEN) == (wanted == "open"))
            and (not symbols or o["symbol"] in symbols)
            and query.get("side", o["side"]) == o["side"]
            and (after is None or o["created_at"] > after)
            and (until is None or o["created_at"] <= until)
        ]  # fmt: skip
        found.sort(key=lambda o: o["created_at"], reverse=query.get("direction", "desc") == "desc")
        limit = min(int(query.get("limit") or 50), 500)
        return Reply(200, [order_json(o) for o in found[:limit]])

    def _by_client_id(self, query: dict[str, str], body: Any) -> Reply:
        cid = query.get("client_order_id", "")
        for order in self._orders.values():
            if order["client_order_id"] == cid:
                return Reply(200, order_json(order))
        raise error(404, "order not found")

    def _get_order(self, query: dict[str, str], body: Any, order_id: str) -> Reply:
        if order_id not in self._orders:
            raise error(404, f"order not found for {order_id}")
        return Reply(200, order_json(self._orders[order_id]))

    def _cancel(self, query: dict[str, str], body: Any, order_id: str) -> Reply:
        order = self._orders.get(order_id)
        if order is None:
            raise error(404, "order not found")
        if order["status"] not in OPEN:
            raise error(422, f'order is already in "{order["status"]}" state')
        order.update(status="canceled", canceled_at=self.now, updated_at=self.now)
        return Reply(204)

    def _cancel_all(self, query: dict[str, str], body: Any) -> Reply:
        answers = []
        for order in self._orders.values():
            if order["status"] in OPEN:
                order.update(status="canceled", canceled_at=self.now, updated_at=self.now)
                answers.append({"id": order["id"], "status": 200, "body": None})
        return Reply(207, answers)

    def _crypto_bars(self, query: dict[str, str], body: Any) -> Reply:
        feed = (self.bar_gaps, self.duplicate_bars, self.frozen_at, self.page_size)
        return Reply(200, bars_page(self.bars, query, self.now, *feed))
