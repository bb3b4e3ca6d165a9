"""Drive the real, unmodified alpaca-py SDK against the loopback Alpaca fake.

Each test proves a shape parses into the SDK's models or that a venue rule / fault surfaces the
way the real API does, so adapter tests written against the fake can be trusted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import CryptoHistoricalDataClient
from alpaca.data.requests import CryptoBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import ClosePositionResponse, NonTradeActivity, Order, Position
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetAssetsRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
)
from pydantic import ValidationError

from botlib.venues.resting import match_bar
from tests.fakes.alpaca_server import FakeAlpaca, drop, html, lost_response, status, timeout
from tests.fakes.alpaca_state import BarGenerator

NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
BARS_PATH = "/v1beta3/crypto/us/bars"


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as server:
        server.set_price("BTC/USD", 60_000.0)
        yield server


@pytest.fixture
def trading(fake: FakeAlpaca) -> Iterator[TradingClient]:
    client = TradingClient(fake.key_id, fake.secret_key, paper=True, url_override=fake.url)
    client._retry_wait = 0  # the constructor does not expose the 3 s retry wait
    yield client
    client._session.close()


@pytest.fixture
def data(fake: FakeAlpaca) -> Iterator[CryptoHistoricalDataClient]:
    client = CryptoHistoricalDataClient(url_override=fake.url)
    yield client
    client._session.close()


def market(side: str = "buy", cid: str | None = None, **size: float) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="BTC/USD", side=side, time_in_force=TimeInForce.GTC, client_order_id=cid, **size
    )


def limit(side: str, qty: float, price: float, tif: str = "gtc", **extra: Any) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="BTC/USD", qty=qty, side=side, time_in_force=tif, limit_price=price, **extra
    )


def keys(fake: FakeAlpaca) -> dict[str, str]:
    return {"APCA-API-KEY-ID": fake.key_id, "APCA-API-SECRET-KEY": fake.secret_key}


def api_error(call: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as caught:
        call(*args)
    return caught.value


# ------------------------------------------------------------------ account, assets, auth
def test_account_assets_and_auth(fake: FakeAlpaca, trading: TradingClient) -> None:
    account = trading.get_account()
    assert (account.cash, account.equity, account.buying_power) == ("100000", "100000", "100000")
    assets = trading.get_all_assets(GetAssetsRequest(asset_class="crypto", status="active"))
    btc = next(a for a in assets if a.symbol == "BTC/USD")
    assert btc.fractionable and btc.tradable and not btc.shortable
    assert btc.min_order_size == pytest.approx(0.000011) and btc.price_increment == 1.0
    assert trading.get_asset("BTC/USD").id == trading.get_asset("BTCUSD").id == btc.id
    assert api_error(trading.get_asset, "NOPE/USD").status_code == 404
    encoded = requests.get(fake.url + "/v2/assets/BTC%2FUSD", headers=keys(fake), timeout=5)
    assert encoded.json()["symbol"] == "BTC/USD"
    assert fake.requests[0]["headers"]["apca-api-key-id"] == fake.key_id

    stranger = TradingClient("wrong", "keys", paper=True, url_override=fake.url)
    err = api_error(stranger.get_account)
    stranger._session.close()
    assert (err.status_code, err.code, err.message) == (401, 40110000, "request is not authorized")


# ------------------------------------------------------------------ orders and positions
def test_market_buy_fills_charges_fee_in_coin_and_opens_position(
    fake: FakeAlpaca, trading: TradingClient
) -> None:
    order = trading.submit_order(market(notional=1000, cid="buy-1"))
    assert isinstance(order, Order) and order.status == OrderStatus.FILLED
    assert float(order.filled_qty) == pytest.approx(1000 / 60_000, abs=1e-9)
    assert float(order.filled_avg_price) == 60_000
    assert fake.requests[-1]["json"] == {
        "symbol": "BTC/USD", "notional": 1000.0, "side": "buy", "type": "market",
        "time_in_force": "gtc", "client_order_id": "buy-1",
    }  # fmt: skip
    position = trading.get_open_position("BTCUSD")
    assert isinstance(position, Position) and position.symbol == "BTCUSD"
    assert float(position.qty) == pytest.approx(1000 / 60_000 * 0.9975, abs=1e-9)
    assert float(position.cost_basis) == 1000
    assert [f["asset"] for f in fake.fees] == ["BTC"] and fake.fees[0]["usd"] == pytest.approx(2.5)
    fake.set_price("BTC/USD", 66_000.0)
    account = trading.get_account()
    assert float(account.cash) == 99_000
    assert float(account.equity) == pytest.approx(99_000 + float(position.qty) * 66_000, abs=1e-6)
    assert [p.symbol for p in trading.get_all_positions()] == ["BTCUSD"]
    assert fake.positions["BTCUSD"]["qty"] == position.qty

    sell = trading.submit_order(market("sell", qty=float(position.qty)))
    assert sell.status == OrderStatus.FILLED and fake.positions == {}
    assert fake.fees[-1]["asset"] == "USD"
    assert float(trading.get_account().cash) == pytest.approx(99_000 + 997.5 * 1.1 * 0.9975)


def test_open_position_404_and_slash_path(trading: TradingClient) -> None:
    err = api_error(trading.get_open_position, "BTCUSD")
    assert (err.status_code, err.code, err.message) == (404, 40410000, "position does not exist")
    trading.submit_order(market(notional=100))
    assert api_error(trading.get_open_position, "BTC/USD").status_code == 404


def test_orders_lookup_list_cancel_and_duplicate_client_id(
    fake: FakeAlpaca, trading: TradingClient
) -> None:
    request = limit("buy", 0.01, 55_000, client_order_id="lim-1")
    resting = trading.submit_order(request)
    assert resting.status == OrderStatus.NEW and resting.limit_price == "55000"
    assert trading.get_order_by_client_id("lim-1").id == resting.id
    assert trading.get_order_by_id(resting.id).client_order_id == "lim-1"
    open_ids = [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))]
    assert open_ids == [resting.id]
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED)) == []
    assert trading.cancel_order_by_id(resting.id) is None
    assert trading.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    assert api_error(trading.cancel_order_by_id, resting.id).status_code == 422
    assert api_error(trading.get_order_by_client_id, "unknown").status_code == 404

    duplicate = api_error(trading.submit_order, request)  # even after the cancel
    assert (duplicate.status_code, duplicate.code) == (422, 40010001)
    assert duplicate.message == "client_order_id must be unique"

    trading.submit_order(market(notional=10, cid="m-1"))
    trading.submit_order(market(notional=20, cid="m-2"))
    after = datetime(2000, 1, 1, tzinfo=UTC)
    query = GetOrdersRequest(
        status="all", symbols=["BTC/USD"], limit=2, direction="asc", after=after
    )
    assert [o.client_order_id for o in trading.get_orders(query)] == ["lim-1", "m-1"]
    newest = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))
    assert [o.client_order_id for o in newest] == ["m-2"]
    assert fake.requests_to("/v2/orders")[-1]["query"]["status"] == "all"


def test_limit_and_stop_limit_fill_when_price_crosses(
    fake: FakeAlpaca, trading: TradingClient
) -> None:
    trading.submit_order(market(notional=6000))
    buy = trading.submit_order(limit("buy", 0.01, 59_000))
    stop_loss = StopLimitOrderRequest(
        symbol="BTC/USD", qty=0.05, side="sell", time_in_force="gtc", stop_price=57_000,
        limit_price=56_500,
    )  # fmt: skip
    stop = trading.submit_order(stop_loss)
    assert (buy.status, stop.status) == (OrderStatus.NEW, OrderStatus.NEW)
    held = float(trading.get_open_position("BTCUSD").qty_available)
    assert held == pytest.approx(0.1 * 0.9975 - 0.05)  # the resting sell holds its qty
    fake.set_price("BTC/USD", 58_500)
    assert trading.get_order_by_id(buy.id).status == OrderStatus.FILLED
    assert trading.get_order_by_id(stop.id).status == OrderStatus.NEW
    fake.set_price("BTC/USD", 56_800)
    done = trading.get_order_by_id(stop.id)
    assert done.status == OrderStatus.FILLED and float(done.filled_avg_price) == 56_800
    ioc = trading.submit_order(limit("buy", 0.01, 50_000, "ioc"))
    assert ioc.status == OrderStatus.CANCELED and ioc.filled_qty == "0"


def test_cancel_frees_a_reserved_sell_and_a_filled_order_cannot_be_cancelled(
    fake: FakeAlpaca, trading: TradingClient
) -> None:
    trading.submit_order(market(notional=6000))
    held = float(trading.get_open_position("BTCUSD").qty)
    stop = trading.submit_order(StopLimitOrderRequest(
        symbol="BTC/USD", qty=held, side="sell", time_in_force="gtc", stop_price=57_000,
        limit_price=56_500,
    ))  # fmt: skip
    assert trading.get_open_position("BTCUSD").qty_available == "0"
    refused = api_error(trading.submit_order, market("sell", qty=held))
    assert refused.status_code == 403 and refused.message.startswith("insufficient balance")
    trading.cancel_order_by_id(stop.id)  # replace = cancel, then place: freed at once
    assert float(trading.get_open_position("BTCUSD").qty_available) == held
    sold = trading.submit_order(market("sell", qty=held))
    filled = api_error(trading.cancel_order_by_id, sold.id)
    assert (filled.status_code, filled.message) == (422, 'order is already in "filled" state')


def test_resting_orders_meet_the_generated_minute_bars(
    fake: FakeAlpaca, trading: TradingClient
) -> None:
    fake.now = NOW  # ETH has no set price: its path is the generated bars
    end = NOW + timedelta(hours=4)
    bars = [(t, fake.bars.bar("ETH/USD", t, 1, end)) for t in fake.bars.starts(NOW, end, 1)]
    price = fake.price("ETH/USD")
    target = round((price + min(b["l"] for _, b in bars)) / 2, 1)
    order = trading.submit_order(LimitOrderRequest(
        symbol="ETH/USD", qty=1, side="buy", time_in_force="gtc", limit_price=target,
    ))  # fmt: skip
    assert order.status == OrderStatus.NEW
    hit = next((t, match_bar("limit", "buy", limit=target, stop=None, triggered=True,
                             open_=b["o"], high=b["h"], low=b["l"]).price)
               for t, b in bars if b["l"] <= target)  # fmt: skip
    fake.now = hit[0]  # the bar that reaches the limit has not closed yet
    assert trading.get_order_by_id(order.id).status == OrderStatus.NEW
    fake.now = end
    done = trading.get_order_by_id(order.id)
    assert done.status == OrderStatus.FILLED and done.filled_at == hit[0] + timedelta(minutes=1)
    assert float(done.filled_avg_price) == pytest.approx(hit[1], abs=1e-6)


def test_a_gap_shows_in_the_bars_and_in_the_price(
    fake: FakeAlpaca, data: CryptoHistoricalDataClient
) -> None:
    fake.now = NOW
    at = NOW - timedelta(minutes=30)
    before = fake.bars.bar("ETH/USD", at, 1, NOW)
    fake.gap("ETH/USD", at, 0.9)
    minutes = data.get_crypto_bars(CryptoBarsRequest(
        symbol_or_symbols="ETH/USD", timeframe=TimeFrame.Minute, start=at - timedelta(minutes=1),
        end=at,
    ))["ETH/USD"]  # fmt: skip
    assert minutes[0].close == pytest.approx(before["o"], abs=1e-5)  # the minute before: as was
    assert minutes[1].open == pytest.approx(before["o"] * 0.9, abs=1e-5)  # then 10 % lower
    assert minutes[1].high == pytest.approx(before["h"] * 0.9, abs=1e-5)
    unscaled = BarGenerator(fake.bars.seed)  # the same path without the gap
    assert fake.price("ETH/USD") == pytest.approx(0.9 * unscaled.price_at("ETH/USD", NOW))


def test_fees_are_cfee_activities_one_per_fill(fake: FakeAlpaca, trading: TradingClient) -> None:
    fake.now = NOW
    fake.fill_mode = "partial"
    buy = trading.submit_order(market(notional=1000, cid="buy-1"))
    fake.fill_open_orders()
    fake.fill_mode = "immediate"
    fake.now = NOW + timedelta(days=1)
    sell = trading.submit_order(market("sell", qty=0.01))
    raw = trading.get("/account/activities/CFEE", {"direction": "asc"})
    assert raw == trading.get("/account/activities", {"activity_types": "CFEE",
                                                      "direction": "asc"})  # fmt: skip
    activities = [NonTradeActivity(**a) for a in raw]  # the SDK's model takes the shape
    assert [str(a["order_id"]) for a in raw] == [str(buy.id), str(buy.id), str(sell.id)]
    assert [a.activity_type for a in activities] == ["CFEE"] * 3
    first, _, last = activities
    assert first.symbol == "BTCUSD" and first.net_amount == 0 and first.qty < 0
    assert -first.qty * first.price == pytest.approx(fake.fees[0]["usd"], abs=1e-4)
    assert first.date == NOW.date() and last.date == (NOW + timedelta(days=1)).date()
    assert last.net_amount == pytest.approx(-0.01 * 60_000 * 0.0025) == last.qty
    assert raw[0]["id"].split("::")[0] == NOW.strftime("%Y%m%d%H%M%S000")

    newest = trading.get("/account/activities/CFEE", {"page_size": 2})
    assert [a["id"] for a in newest] == [raw[2]["id"], raw[1]["id"]]  # desc by default
    rest = trading.get("/account/activities/CFEE", {"page_size": 2,
                                                    "page_token": newest[-1]["id"]})  # fmt: skip
    assert [a["id"] for a in rest] == [raw[0]["id"]]
    day_two = {"after": (NOW + timedelta(hours=1)).isoformat()}
    assert [a["id"] for a in trading.get("/account/activities/CFEE", day_two)] == [raw[2]["id"]]
    day_one = {"until": (NOW + timedelta(hours=1)).isoformat(), "direction": "asc"}
    assert trading.get("/account/activities/CFEE", day_one) == raw[:2]
    assert trading.get("/account/activities", {"activity_types": "FILL"}) == []
    assert fake.fee_activities() == raw


def test_venue_rules(fake: FakeAlpaca, trading: TradingClient) -> None:
    tiny = api_error(trading.submit_order, market(notional=0.5))
    assert (tiny.status_code, tiny.code) == (403, 40310000)
    assert tiny.message == "cost basis must be >= minimal amount of order 1"
    assert api_error(trading.submit_order, market(qty=0.00001)).status_code == 403  # $0.60

    trading.submit_order(market(qty=1))
    short = api_error(trading.submit_order, market("sell", qty=2))
    assert (short.status_code, short.code) == (403, 40310000)
    assert short.message == "insufficient balance for BTC (requested: 2, available: 0.9975)"
    broke = api_error(trading.submit_order, market(notional=50_000))
    assert broke.status_code == 403 and broke.message.startswith("insufficient balance for USD")

    day_order = MarketOrderRequest(symbol="BTC/USD", notional=10, side="buy", time_in_force="day")
    day = api_error(trading.submit_order, day_order)
    assert (day.status_code, day.code, day.message) == (
        422,
        42210000,
        "invalid crypto time_in_force",
    )
    unknown = MarketOrderRequest(symbol="XYZ/USD", notional=10, side="buy", time_in_force="gtc")
    assert api_error(trading.submit_order, unknown).status_code == 422

    with pytest.raises(ValidationError):  # the SDK refuses qty + notional before sending
        market(qty=0.1, notional=10)
    both = {"symbol": "BTC/USD", "qty": "0.1", "notional": "10", "side": "buy", "type": "market",
            "time_in_force": "gtc"}  # fmt: skip
    raw = requests.post(fake.url + "/v2/orders", json=both, headers=keys(fake), timeout=5)
    assert raw.status_code == 422


def test_close_position_and_close_all(fake: FakeAlpaca, trading: TradingClient) -> None:
    trading.submit_order(market(qty=1))
    half = trading.close_position("BTCUSD", ClosePositionRequest(percentage="50"))
    assert half.side == OrderSide.SELL and float(half.qty) == pytest.approx(0.49875)
    assert fake.requests[-1]["query"] == {"percentage": "50"}
    part = trading.close_position("BTCUSD", ClosePositionRequest(qty="0.1"))
    assert part.status == OrderStatus.FILLED and part.qty == "0.1"
    fake.set_price("ETH/USD", 3000)
    eth = MarketOrderRequest(symbol="ETH/USD", qty=1, side="buy", time_in_force="gtc")
    trading.submit_order(eth)
    closed = trading.close_all_positions(cancel_orders=True)
    assert all(isinstance(c, ClosePositionResponse) and c.status == 200 for c in closed)
    assert sorted(c.symbol for c in closed) == ["BTCUSD", "ETHUSD"]
    assert all(isinstance(c.body, Order) for c in closed)
    assert trading.get_all_positions() == [] and fake.positions == {}
    assert api_error(trading.close_position, "BTCUSD").status_code == 404


def test_cancel_all_orders_multi_status(trading: TradingClient) -> None:
    for price in (50_000, 51_000):
        trading.submit_order(limit("buy", 0.01, price))
    answers = trading.cancel_orders()
    assert [a.status for a in answers] == [200, 200]
    assert trading.get_orders() == []


def test_fill_modes_and_manual_trade(fake: FakeAlpaca, trading: TradingClient) -> None:
    fake.fill_mode = "partial"
    order = trading.submit_order(market(qty=0.2, cid="p-1"))
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled_qty == "0.1"
    fake.fill_mode = "accepted"
    waiting = trading.submit_order(market(qty=0.1, cid="a-1"))
    assert waiting.status == OrderStatus.NEW and waiting.filled_qty == "0"
    assert len(trading.get_orders()) == 2
    fake.fill_open_orders()
    assert {o.status for o in trading.get_orders(GetOrdersRequest(status="all"))} == {
        OrderStatus.FILLED
    }
    assert float(trading.get_open_position("BTCUSD").qty) == pytest.approx(0.3 * 0.9975)

    manual = fake.place_manual_trade("ETH/USD", "buy", qty=2, price=3000)
    assert manual["client_order_id"].startswith("web-") and manual["status"] == "filled"
    assert {p.symbol for p in trading.get_all_positions()} == {"BTCUSD", "ETHUSD"}
    fake.set_position("SOLUSD", 10, 150)
    assert trading.get_open_position("SOLUSD").avg_entry_price == "150"


# -------------------------------------------------------------------------------- bars
def bars_request(timeframe: TimeFrame, hours: float, **extra: Any) -> CryptoBarsRequest:
    symbols = extra.pop("symbols", "BTC/USD")
    start = NOW - timedelta(hours=hours)
    return CryptoBarsRequest(symbol_or_symbols=symbols, timeframe=timeframe, start=start, **extra)


def test_bars_paginate_and_last_bar_is_forming(
    fake: FakeAlpaca, data: CryptoHistoricalDataClient
) -> None:
    fake.now, fake.page_size = NOW, 7
    bars = data.get_crypto_bars(bars_request(TimeFrame.Hour, 48))["BTC/USD"]
    assert len(bars) == 48 and len(fake.requests_to(BARS_PATH)) == math.ceil(48 / 7)
    tokens = [r["query"].get("page_token") for r in fake.requests_to(BARS_PATH)]
    assert tokens[0] is None and all(tokens[1:])  # the SDK followed next_page_token
    assert "apca-api-key-id" not in fake.requests_to(BARS_PATH)[0]["headers"]
    assert fake.requests_to(BARS_PATH)[0]["query"]["timeframe"] == "1Hour"
    steps = {b.timestamp - a.timestamp for a, b in zip(bars, bars[1:], strict=False)}
    assert steps == {timedelta(hours=1)}
    assert (
        bars[-1].timestamp == NOW.replace(minute=0)
        and bars[-1].timestamp + timedelta(hours=1) > NOW
    )
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert all(b.volume > 0 and b.trade_count and b.vwap for b in bars)

    limited = data.get_crypto_bars(bars_request(TimeFrame.Hour, 48, limit=10))["BTC/USD"]
    assert [b.timestamp for b in limited] == [b.timestamp for b in bars[:10]]
    again = data.get_crypto_bars(bars_request(TimeFrame.Hour, 48))["BTC/USD"]
    assert [b.close for b in again] == [b.close for b in bars]  # deterministic


@pytest.mark.parametrize("minutes", [1, 5, 15, 30])
def test_minute_timeframes_aggregate_consistently(
    fake: FakeAlpaca, data: CryptoHistoricalDataClient, minutes: int
) -> None:
    fake.now = NOW
    frame = TimeFrame(minutes, TimeFrameUnit.Minute)
    bars = data.get_crypto_bars(bars_request(frame, 2, end=NOW - timedelta(hours=1)))["BTC/USD"]
    assert fake.requests_to(BARS_PATH)[0]["query"]["timeframe"] == f"{minutes}Min"
    assert len(bars) == 60 // minutes + 1  # start and end are both inclusive
    ones = data.get_crypto_bars(bars_request(TimeFrame.Minute, 2, end=NOW - timedelta(hours=1)))
    first = ones["BTC/USD"][:minutes]
    assert bars[0].open == first[0].open and bars[0].close == first[-1].close
    assert bars[0].high == max(b.high for b in first) and bars[0].low == min(b.low for b in first)


def test_bar_faults_gaps_duplicates_frozen_and_bad_symbol(
    fake: FakeAlpaca, data: CryptoHistoricalDataClient
) -> None:
    fake.now = NOW
    gap = NOW.replace(minute=0) - timedelta(hours=5)
    fake.bar_gaps = [gap, (gap - timedelta(hours=10), gap - timedelta(hours=8))]
    fake.duplicate_bars = {gap - timedelta(hours=1)}
    stamps = [
        b.timestamp for b in data.get_crypto_bars(bars_request(TimeFrame.Hour, 24))["BTC/USD"]
    ]
    assert gap not in stamps and gap - timedelta(hours=9) not in stamps
    assert stamps.count(gap - timedelta(hours=1)) == 2 and len(stamps) == 24 - 3 + 1

    fake.bar_gaps, fake.duplicate_bars = [], set()
    fake.frozen_at = NOW - timedelta(hours=3)
    last = data.get_crypto_bars(bars_request(TimeFrame.Hour, 24))["BTC/USD"][-1]
    assert last.timestamp == NOW.replace(minute=0) - timedelta(hours=3)

    both = data.get_crypto_bars(bars_request(TimeFrame.Hour, 4, symbols=["BTC/USD", "ETH/USD"]))
    assert set(both.data) == {"BTC/USD", "ETH/USD"} and both["ETH/USD"][0].close < 10_000
    err = api_error(data.get_crypto_bars, bars_request(TimeFrame.Hour, 4, symbols="BTCUSD"))
    assert err.status_code == 400


# ------------------------------------------------------------------------------ faults
def test_status_and_html_faults(fake: FakeAlpaca, trading: TradingClient) -> None:
    fake.inject("GET", "/v2/account", status(500, {"code": 50010000, "message": "boom"}))
    err = api_error(trading.get_account)
    assert (err.status_code, err.code, err.message) == (500, 50010000, "boom")
    fake.inject("GET", "/v2/account", html(502))
    page = api_error(trading.get_account)
    assert page.status_code == 502 and page.response.headers["Content-Type"] == "text/html"
    with pytest.raises(json.JSONDecodeError):
        _ = page.code
    with pytest.raises(json.JSONDecodeError):
        _ = page.message
    assert trading.get_account().cash == "100000"


def test_sdk_retries_429_and_504_itself(fake: FakeAlpaca, trading: TradingClient) -> None:
    fake.inject("GET", "/v2/account", status(429))
    assert trading.get_account().status.value == "ACTIVE"
    assert len(fake.requests_to("/v2/account")) == 2
    fake.inject("*", "/v2/positions", status(504), times=4)  # one try + 3 retries
    assert api_error(trading.get_all_positions).status_code == 504
    assert len(fake.requests_to("/v2/positions")) == 4


def test_timeout_fault_hangs_past_client_timeout(fake: FakeAlpaca, trading: TradingClient) -> None:
    class Bounded(requests.adapters.HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = kwargs.get("timeout") or 0.5
            return super().send(request, **kwargs)

    trading._session.mount("http://", Bounded())
    fake.inject("GET", "/v2/account", timeout(10))
    began = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        trading.get_account()
    assert 0.4 < time.monotonic() - began < 3
    assert trading.get_account().cash == "100000"


def test_lost_response_executes_the_order(fake: FakeAlpaca, trading: TradingClient) -> None:
    fake.inject("POST", "/v2/orders", lost_response())  # 504: the SDK retries the same cid
    err = api_error(trading.submit_order, market(notional=100, cid="lost-1"))
    assert (err.status_code, err.code) == (422, 40010001)
    assert trading.get_order_by_client_id("lost-1").status == OrderStatus.FILLED
    assert [o["client_order_id"] for o in fake.orders] == ["lost-1"]

    fake.inject("POST", "/v2/orders", lost_response("drop"))
    with pytest.raises(requests.exceptions.ConnectionError):
        trading.submit_order(market(notional=100, cid="lost-2"))
    assert trading.get_order_by_client_id("lost-2").status == OrderStatus.FILLED
    assert len(fake.orders) == 2

    fake.inject("POST", "/v2/orders", lost_response())  # without a cid the retry doubles it
    trading.submit_order(market(notional=100))
    assert len(fake.orders) == 4

    fake.inject("POST", "/v2/orders", drop())
    with pytest.raises(requests.exceptions.ConnectionError):
        trading.submit_order(market(notional=100, cid="never"))
    assert api_error(trading.get_order_by_client_id, "never").status_code == 404
