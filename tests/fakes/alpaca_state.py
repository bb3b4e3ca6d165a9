"""Pure helpers for the Alpaca fake (`alpaca_server.py`): wire shapes, errors, bar generator.

Kept free of HTTP and locking so the shapes the real alpaca-py 0.44 models parse live in one
place (numeric fields the SDK declares `str` are rendered as JSON strings, ids are UUIDs).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

__all__ = [
    "ASSETS",
    "OPEN",
    "ApiError",
    "BarGenerator",
    "Fault",
    "account_json",
    "activities_page",
    "activity_id",
    "activity_json",
    "bars_page",
    "ceil_minute",
    "asset_json",
    "compact",
    "drop",
    "error",
    "html",
    "iso",
    "lost_response",
    "num",
    "order_json",
    "pair",
    "parse_time",
    "parse_timeframe",
    "position_json",
    "status",
    "timeout",
    "validate_order",
]

OPEN = {"new", "accepted", "pending_new", "partially_filled"}

_NS = uuid.UUID("6f1c2a52-7d1e-4a43-9d55-4a6a3d0c0e11")
# symbol -> (name, min_order_size, min_trade_increment, price_increment, base price)
ASSETS: dict[str, tuple[str, str, str, str, float]] = {
    "BTC/USD": ("Bitcoin  / US Dollar", "0.000011", "0.000000001", "1", 60000.0),
    "ETH/USD": ("Ethereum  / US Dollar", "0.000284", "0.000000001", "0.1", 3000.0),
    "SOL/USD": ("Solana  / US Dollar", "0.006", "0.000000001", "0.005", 150.0),
    "LTC/USD": ("Litecoin  / US Dollar", "0.011", "0.000000001", "0.005", 80.0),
    "DOGE/USD": ("Dogecoin  / US Dollar", "6", "0.000000001", "0.0000005", 0.15),
}


class ApiError(Exception):
    """An HTTP error answer in Alpaca's `{"code", "message"}` shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}


def error(status: int, message: str, code: int | None = None) -> ApiError:
    """An ApiError with the code Alpaca uses for `status` unless `code` is given."""
    default = {401: 40110000, 403: 40310000, 404: 40410000, 422: 42210000}.get(status, 40010000)
    return ApiError(status, code or default, message)


@dataclass
class Fault:
    """What the server does instead of (or after) answering; build with the functions below."""

    kind: str  # status | html | timeout | lost_response | held_response | drop
    status: int = 500
    body: Any = None
    seconds: float = 0.0
    how: str = "504"


def status(code: int, body: Any = None) -> Fault:
    """Answer `code` with a JSON body (default: Alpaca's `{"code", "message"}` shape)."""
    return Fault("status", code, body or {"code": code * 100_000, "message": f"fake error {code}"})


def html(code: int = 502) -> Fault:
    """Answer an HTML page, as a proxy in front of the API does (APIError.code then raises)."""
    title = "Gateway Timeout" if code == 504 else "Bad Gateway"
    return Fault("html", code, f"<html><body><h1>{code} {title}</h1></body></html>")


def timeout(seconds: float = 5.0) -> Fault:
    """Hang `seconds` (or until shutdown), then handle the request normally."""
    return Fault("timeout", seconds=seconds)


def lost_response(how: str = "504") -> Fault:
    """Execute the request, then lose the answer: an HTML 504 (`how="504"`) or a dropped socket."""
    return Fault("lost_response", 504, how=how)


def held_response(seconds: float = 60.0) -> Fault:
    """Execute the request, then hold the answer `seconds` (or until shutdown).

    The crash tests kill the client while the order exists at the venue but its answer has
    not arrived: the "after submit, before the response" stage.
    """
    return Fault("held_response", seconds=seconds)


def drop() -> Fault:
    """Close the connection without executing the request or answering."""
    return Fault("drop")


def compact(symbol: str) -> str:
    """`BTC/USD` -> `BTCUSD` (the form positions use)."""
    return symbol.replace("/", "").upper()


def pair(symbol: str) -> str | None:
    """Map `BTC/USD` or `BTCUSD` to the known `BTC/USD` form, None when unknown."""
    wanted = compact(symbol)
    return next((s for s in ASSETS if compact(s) == wanted), None)


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(_NS, symbol))


def num(value: float) -> str:
    """Render a number the way Alpaca does: a JSON string, no float noise or trailing zeros."""
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def iso(moment: datetime) -> str:
    """RFC 3339 with a `Z`, as Alpaca sends timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse the RFC 3339 / date strings the SDK sends (naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def asset_json(symbol: str) -> dict[str, Any]:
    """A crypto asset as `GET /v2/assets` returns it (Asset's float fields arrive as strings)."""
    name, min_size, increment, price_increment, _ = ASSETS[symbol]
    return {
        "id": asset_id(symbol),
        "class": "crypto",
        "exchange": "CRYPTO",
        "symbol": symbol,
        "name": name,
        "status": "active",
        "tradable": True,
        "marginable": False,
        "maintenance_margin_requirement": 100,
        "margin_requirement_long": "100",
        "margin_requirement_short": "100",
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": True,
        "attributes": [],
        "min_order_size": min_size,
        "min_trade_increment": increment,
        "price_increment": price_increment,
    }


_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_UNIT_MINUTES = {"Min": 1, "T": 1, "Hour": 60, "H": 60, "Day": 1440, "D": 1440}


def parse_timeframe(text: str) -> int:
    """`15Min` / `1Hour` / `1Day` -> minutes; Week/Month are not served by the fake."""
    found = _TIMEFRAME.match(text)
    if not found or int(found.group(1)) < 1:
        raise ApiError(400, 40010001, f"invalid timeframe: {text}")
    return int(found.group(1)) * _UNIT_MINUTES[found.group(2)]


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class _Day:
    opens: np.ndarray  # minute opens
    closes: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    volumes: np.ndarray
    trades: np.ndarray


class BarGenerator:
    """Deterministic 1-minute prices per (symbol, UTC day), aggregated to any timeframe.

    Each day is a Brownian bridge between deterministic day levels, so the path looks like a
    random walk, is continuous across days, and a 1Hour bar equals its sixty 1Min bars.
    """

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self._days: dict[tuple[str, int], _Day] = {}
        self._gaps: dict[str, list[tuple[int, float]]] = {}  # symbol -> (first minute, factor)

    def gap(self, symbol: str, at: datetime, factor: float) -> None:
        """Scale `symbol`'s prices by `factor` from the minute starting at `at` on.

        The minute before `at` closes at the old level and the minute at `at` opens at the new
        one: a gap between two bars (a crash, an outage), which a continuous generated path
        never has and a resting stop must survive. Gaps compound.
        """
        self._gaps.setdefault(symbol, []).append((int(at.timestamp() // 60), float(factor)))

    def _scale(self, symbol: str, first: int, count: int) -> np.ndarray:
        """The gap factor of each of `count` minutes from epoch minute `first`."""
        minutes, scale = np.arange(first, first + count), np.ones(count)
        for start, factor in self._gaps.get(symbol, []):
            scale[minutes >= start] *= factor
        return scale

    def _level(self, symbol: str, day: int) -> float:
        base = ASSETS[symbol][4] if symbol in ASSETS else 100.0
        wave = 0.08 * math.sin(day / 9.0) + 0.05 * math.sin(day / 3.1 + 1.0)
        jitter = (_seed(self.seed, symbol, "level", day) % 10_000) / 10_000 - 0.5
        return base * math.exp(wave + 0.03 * jitter)

    def _day(self, symbol: str, day: int) -> _Day:
        key = (symbol, day)
        if key not in self._days:
            rng = np.random.default_rng(_seed(self.seed, symbol, day))
            start, end = self._level(symbol, day), self._level(symbol, day + 1)
            walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, 0.0012, 1440))])
            frac = np.linspace(0.0, 1.0, 1441)
            log_path = np.log(start) + frac * (np.log(end) - np.log(start))
            path = np.exp(log_path + walk - frac * walk[-1])
            opens, closes = path[:-1], path[1:]
            wick = np.abs(rng.normal(0.0, 0.0006, (2, 1440)))
            highs = np.maximum(opens, closes) * (1 + wick[0])
            lows = np.minimum(opens, closes) * (1 - wick[1])
            volumes = np.round(rng.gamma(2.0, 0.5, 1440) * 1000 / start, 9) + 1e-6
            trades = rng.integers(1, 40, 1440)
            self._days[key] = _Day(opens, closes, highs, lows, volumes, trades)
        return self._days[key]

    def price_at(self, symbol: str, moment: datetime) -> float:
        """The last minute close at or before `moment` (the fake's default market price)."""
        minute = int(moment.timestamp() // 60) - 1
        day, index = divmod(minute, 1440)
        return float(self._day(symbol, day).closes[index] * self._scale(symbol, minute, 1)[0])

    def bar(self, symbol: str, start: datetime, minutes: int, now: datetime) -> dict[str, Any]:
        """One bar from `minutes` 1-minute bars starting at `start`; minutes >= `now` are absent."""
        first = int(start.timestamp() // 60)
        last = min(first + minutes, math.ceil(now.timestamp() / 60))
        rows = []
        for day in range(first // 1440, (last - 1) // 1440 + 1):
            data = self._day(symbol, day)
            lo, hi = max(first - day * 1440, 0), min(last - day * 1440, 1440)
            rows.append([getattr(data, f)[lo:hi] for f in _Day.__dataclass_fields__])
        opens, closes, highs, lows, volumes, trades = (
            np.concatenate(c) for c in zip(*rows, strict=True)
        )
        scale = self._scale(symbol, first, last - first)
        opens, closes, highs, lows = (a * scale for a in (opens, closes, highs, lows))
        typical = (highs + lows + closes) / 3
        volume = float(volumes.sum())
        return {
            "t": iso(start),
            "o": round(float(opens[0]), 6),
            "h": round(float(highs.max()), 6),
            "l": round(float(lows.min()), 6),
            "c": round(float(closes[-1]), 6),
            "v": round(volume, 9),
            "n": int(trades.sum()),
            "vw": round(float((typical * volumes).sum() / volume), 6),
        }

    def starts(self, begin: datetime, end: datetime, minutes: int) -> list[datetime]:
        """Bar starts aligned to the timeframe (epoch multiples) in [begin, end)."""
        step = minutes * 60
        first = math.ceil(begin.timestamp() / step) * step
        stop = end.timestamp()
        return [
            datetime.fromtimestamp(t, UTC)
            for t in range(int(first), math.ceil(stop), step)
            if t < stop
        ]


def _opt(value: float | None) -> str | None:
    return None if value is None else num(value)


def _when(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def account_json(account_id: str, cash: float, value: float, free_cash: float,
                 start_cash: float) -> dict[str, Any]:  # fmt: skip
    """`GET /v2/account`: a cash account, so buying power is cash (no margin on crypto)."""
    cash_s, equity = num(cash), num(cash + value)
    return {
        "id": account_id, "account_number": "PA3FAKE0001", "status": "ACTIVE",
        "crypto_status": "ACTIVE", "currency": "USD", "cash": cash_s, "buying_power": cash_s,
        "regt_buying_power": cash_s, "daytrading_buying_power": "0",
        "non_marginable_buying_power": num(free_cash), "options_buying_power": cash_s,
        "accrued_fees": "0", "pending_transfer_in": "0", "portfolio_value": equity,
        "equity": equity, "last_equity": num(start_cash), "long_market_value": num(value),
        "short_market_value": "0", "initial_margin": "0", "maintenance_margin": "0",
        "last_maintenance_margin": "0", "sma": "0", "daytrade_count": 0, "multiplier": "1",
        "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
        "account_blocked": False, "trade_suspended_by_user": False, "shorting_enabled": False,
        "created_at": "2024-01-02T15:04:05.123456Z",
    }  # fmt: skip


def position_json(symbol: str, qty: float, cost: float, price: float,
                  free_qty: float) -> dict[str, Any]:  # fmt: skip
    """A long crypto position; `symbol` is the pair, the wire symbol is compact (`BTCUSD`)."""
    value = qty * price
    pl, plpc = num(value - cost), num((value - cost) / cost if cost else 0.0)
    return {
        "asset_id": asset_id(symbol), "symbol": compact(symbol), "exchange": "CRYPTO",
        "asset_class": "crypto", "asset_marginable": False,
        "avg_entry_price": num(cost / qty if qty else 0.0), "qty": num(qty), "side": "long",
        "market_value": num(value), "cost_basis": num(cost), "unrealized_pl": pl,
        "unrealized_plpc": plpc, "unrealized_intraday_pl": pl, "unrealized_intraday_plpc": plpc,
        "current_price": num(price), "lastday_price": num(price), "change_today": "0",
        "qty_available": num(free_qty),
    }  # fmt: skip


def order_json(order: dict[str, Any]) -> dict[str, Any]:
    """An order record of the fake (floats, datetimes) in the wire shape (strings)."""
    filled = order["filled_qty"]
    return {
        "id": order["id"], "client_order_id": order["client_order_id"],
        "created_at": iso(order["created_at"]), "updated_at": iso(order["updated_at"]),
        "submitted_at": iso(order["created_at"]), "filled_at": _when(order["filled_at"]),
        "expired_at": None, "canceled_at": _when(order["canceled_at"]), "failed_at": None,
        "replaced_at": None, "replaced_by": None, "replaces": None,
        "asset_id": asset_id(order["symbol"]), "symbol": order["symbol"],
        "asset_class": "crypto", "notional": _opt(order["notional"]), "qty": _opt(order["qty"]),
        "filled_qty": num(filled),
        "filled_avg_price": num(order["filled_usd"] / filled) if filled else None,
        "order_class": "", "order_type": order["type"], "type": order["type"],
        "side": order["side"], "position_intent": None,
        "time_in_force": order["time_in_force"], "limit_price": _opt(order["limit_price"]),
        "stop_price": _opt(order["stop_price"]), "status": order["status"],
        "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None,
        "hwm": None, "subtag": None, "source": None, "expires_at": None,
    }  # fmt: skip


def ceil_minute(moment: datetime) -> datetime:
    """The first minute boundary at or after `moment`: where a resting order starts matching."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def activity_id(at: datetime) -> str:
    """An activity id as Alpaca writes them: `<17-digit time>::<uuid>`."""
    return f"{at:%Y%m%d%H%M%S}{at.microsecond // 1000:03d}::{uuid.uuid4()}"


def activity_json(fee: dict[str, Any], account_id: str) -> dict[str, Any]:
    """One CFEE account activity (one per fill, in the received asset) in the wire shape.

    Real CFEE activities carry symbol, qty (negative, in the fee's asset), price, date,
    net_amount, description and status; `order_id` is the field the adapter matches a fee to
    its order by. A buy's coin fee moves no cash (net_amount 0, price the coin's); a sell's USD
    fee is qty in USD, with the cash it took as net_amount (price stays the pair's).
    """
    in_usd = fee["asset"] == "USD"
    return {
        "id": fee["id"], "account_id": account_id, "activity_type": "CFEE",
        "date": fee["at"].date().isoformat(), "net_amount": num(-fee["qty"]) if in_usd else "0",
        "description": f"Coin Pair Transaction Fee ({'USD' if in_usd else 'Non USD'})",
        "status": "executed", "symbol": compact(fee["symbol"]), "qty": num(-fee["qty"]),
        "price": num(fee["price"]), "order_id": fee["order_id"], "created_at": iso(fee["at"]),
    }  # fmt: skip


def activities_page(fees: list[dict[str, Any]], account_id: str, query: dict[str, str],
                    kind: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """`GET /v2/account/activities[/CFEE]`: the fees, filtered and paged like Alpaca's.

    Only CFEE activities exist here. `after` / `until` bound the time (dates or timestamps),
    `direction` sorts (desc by default), `page_size` caps a page (100), `page_token` is the id
    of the last activity of the previous page.
    """
    types = kind or query.get("activity_types") or query.get("activity_type") or "CFEE"
    if "CFEE" not in types.upper().split(","):
        return []
    after = parse_time(query["after"]) if query.get("after") else None
    until = parse_time(query["until"]) if query.get("until") else None
    found = [f for f in sorted(fees, key=lambda f: (f["at"], f["seq"]))
             if (after is None or f["at"] > after)
             and (until is None or f["at"] < until)]  # fmt: skip
    if query.get("direction", "desc").lower() == "desc":
        found.reverse()
    token = query.get("page_token")
    if token:
        ids = [f["id"] for f in found]
        found = found[ids.index(token) + 1 :] if token in ids else []
    size = max(1, min(int(query.get("page_size") or 100), 100))
    return [activity_json(f, account_id) for f in found[:size]]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def validate_order(body: Any) -> dict[str, Any]:
    """Apply the stateless crypto order rules (422s); return the order's normalised fields."""
    body = body if isinstance(body, dict) else {}
    raw = str(body.get("symbol", ""))
    kind = body.get("type") or body.get("order_type")
    fields = {
        "symbol": pair(raw), "side": body.get("side"), "type": kind,
        "time_in_force": body.get("time_in_force"),
        "client_order_id": str(body.get("client_order_id") or uuid.uuid4()),
        "qty": _float(body.get("qty")), "notional": _float(body.get("notional")),
        "limit_price": _float(body.get("limit_price")),
        "stop_price": _float(body.get("stop_price")),
    }  # fmt: skip
    size = fields["qty"] if fields["notional"] is None else fields["notional"]
    checks = [
        (fields["symbol"] is None, f'asset "{raw}" not found'),
        (fields["side"] not in ("buy", "sell"), "invalid side"),
        (kind not in ("market", "limit", "stop_limit"), "invalid order type for crypto order"),
        (body.get("order_class") not in (None, "", "simple"),
         "crypto orders not allowed for advanced order_class"),
        (fields["time_in_force"] not in ("gtc", "ioc"), "invalid crypto time_in_force"),
        (None not in (fields["qty"], fields["notional"]),
         "qty and notional are mutually exclusive"),
        (size is None, "qty or notional is required"),
        (size is not None and size <= 0, "qty or notional must be > 0"),
        (kind in ("limit", "stop_limit") and fields["limit_price"] is None,
         "limit_price is required"),
        (kind == "stop_limit" and fields["stop_price"] is None, "stop_price is required"),
        (len(fields["client_order_id"]) > 128,
         "client_order_id must be no more than 128 characters"),
    ]  # fmt: skip
    for failed, message in checks:
        if failed:
            raise error(422, message)
    return fields


Gap = datetime | tuple[datetime, datetime]


def bars_page(bars: BarGenerator, query: dict[str, str], now: datetime, gaps: list[Gap],
              duplicates: set[datetime], frozen_at: datetime | None, page_size: int
              ) -> dict[str, Any]:  # fmt: skip
    """One page of `GET /v1beta3/crypto/us/bars`: bars starting in [start, end] and before `now`.

    `gaps` (exact starts or [a, b) windows) are left out, `duplicates` are sent twice, nothing
    after `frozen_at` exists (a stale feed); the page token is an offset into the full answer.
    """
    symbols = [s for s in query.get("symbols", "").split(",") if s]
    for sym in symbols:
        if "/" not in sym:
            raise error(400, f"invalid symbol: {sym}", 40010001)
    if not symbols or not query.get("timeframe"):
        raise error(400, "symbols and timeframe are required", 40010001)
    minutes = parse_timeframe(query["timeframe"])
    live = min(now, frozen_at or now)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    begin = parse_time(query["start"]) if query.get("start") else day
    end = parse_time(query["end"]) if query.get("end") else live
    stop = min(end + timedelta(microseconds=1), live)

    def kept(start: datetime) -> bool:
        return not any(
            start == gap if isinstance(gap, datetime) else gap[0] <= start < gap[1] for gap in gaps
        )

    rows: list[tuple[str, datetime]] = []
    for sym in sorted(set(symbols) & set(ASSETS)):
        starts = [t for t in bars.starts(begin, stop, minutes) if kept(t)]
        starts = [u for t in starts for u in ([t, t] if t in duplicates else [t])]
        rows += [(sym, t) for t in (starts[::-1] if query.get("sort") == "desc" else starts)]
    token = query.get("page_token")
    offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    size = max(1, min(int(query.get("limit") or 1000), 10_000, page_size))
    page: dict[str, list[dict[str, Any]]] = {}
    for sym, start in rows[offset : offset + size]:
        page.setdefault(sym, []).append(bars.bar(sym, start, minutes, live))
    more = offset + size < len(rows)
    next_token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
    return {"bars": page, "next_page_token": next_token}
