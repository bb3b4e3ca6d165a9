"""Resting orders and fees on Alpaca: our adapter, through the real alpaca-py SDK, on the fake.

A protective stop_limit rests at the venue, reserves its coins and fills where the one matching
rule (`botlib.venues.resting.match_bar`) says on the fake's minute bars; a limit entry rests
and fills later; fees come from the account's CFEE activities and make the books match cash.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from botlib.errors import BrokerError, OrderRejectedError
from botlib.models import Order, OrderRequest
from botlib.venues.alpaca.broker import AlpacaBroker
from botlib.venues.alpaca.http import trading_client
from botlib.venues.resting import match_bar
from tests.conftest import T0
from tests.fakes.alpaca_server import FakeAlpaca, status

BTC, ETH = "BTC/USD", "ETH/USD"  # ticks: 1 USD and 0.1 USD at the fake


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as server:
        server.now = T0
        yield server


@pytest.fixture
def broker(fake: FakeAlpaca) -> Iterator[AlpacaBroker]:
    client = trading_client(fake.key_id, fake.secret_key, paper=True, url=fake.url, timeout_s=2.0)
    yield AlpacaBroker(client, "paper", fill_wait_s=0.0)
    client._session.close()


def stop_sell(cid: str, qty: float, stop: float, limit: float) -> OrderRequest:
    return OrderRequest(BTC, "sell", cid, qty=qty, type="stop_limit", stop_price=stop,
                        limit_price=limit)  # fmt: skip


def minute_bars(fake: FakeAlpaca, symbol: str, start: datetime, end: datetime) -> list[Any]:
    """The fake's generated minute bars in [start, end), as (open time, bar)."""
    return [(t, fake.bars.bar(symbol, t, 1, end)) for t in fake.bars.starts(start, end, 1)]


def expected_fill(
    fake: FakeAlpaca, symbol: str, order: Order, end: datetime, triggered: bool = False
) -> tuple[float | None, datetime | None, bool]:
    """Walk `match_bar` over the minute bars after `order` was placed: (price, at, triggered)."""
    for start, bar in minute_bars(fake, symbol, order.created_at, end):
        found = match_bar(order.type, order.side, limit=order.limit_price or 0.0,
                          stop=order.stop_price, triggered=triggered,
                          open_=bar["o"], high=bar["h"], low=bar["l"])  # fmt: skip
        triggered = found.triggered
        if found.price is not None:
            return found.price, start + timedelta(minutes=1), triggered
    return None, None, triggered


def walk_clock(fake: FakeAlpaca, until: datetime, step: timedelta) -> None:
    """Move the fake's clock forward in steps, as cycles pass while an order rests."""
    while fake.now < until:
        fake.now = min(fake.now + step, until)


def activity_usd(activity: dict[str, Any], side: str) -> float:
    """A CFEE activity in USD, from its wire form (a buy's fee is in coins)."""
    qty = abs(float(activity["qty"]))
    return qty * float(activity["price"]) if side == "buy" else abs(float(activity["net_amount"]))


def fee_of(fake: FakeAlpaca, order: Order) -> float:
    mine = [a for a in fake.fee_activities() if a["order_id"] == order.id]
    return sum(activity_usd(a, order.side) for a in mine)


# ------------------------------------------------------------------ resting and cancelling
def test_a_stop_limit_rests_rounded_to_the_tick_and_reserves_its_coins(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_position(BTC, 0.1, 60_000.0)
    price = fake.price(BTC)
    stop, limit = price * 0.98 + 0.37, price * 0.975 + 0.61
    order = broker.submit_order(stop_sell("stop-1", 0.1, stop, limit))
    assert (order.status, order.type, order.filled_qty, order.fee) == ("new", "stop_limit", 0, 0)
    assert (order.stop_price, order.limit_price) == (round(stop), math.floor(limit))
    posted = fake.requests_to("/v2/orders", "POST")[-1]["json"]
    assert (posted["type"], posted["time_in_force"]) == ("stop_limit", "gtc")
    assert (posted["stop_price"], posted["limit_price"]) == (round(stop), math.floor(limit))
    (listed,) = broker.open_orders(BTC)
    assert (listed.id, listed.type, listed.stop_price, listed.limit_price) == (
        order.id, "stop_limit", order.stop_price, order.limit_price,
    )  # fmt: skip
    eth = fake.price(ETH)
    entry = broker.submit_order(OrderRequest(ETH, "buy", "eth-1", qty=0.5, type="limit",
                                             limit_price=eth * 0.97 + 0.0537))  # fmt: skip
    assert entry.limit_price == pytest.approx(math.floor((eth * 0.97 + 0.0537) * 10) / 10)
    assert {o.client_order_id for o in broker.open_orders()} == {"stop-1", "eth-1"}
    assert [o.client_order_id for o in broker.open_orders(ETH)] == ["eth-1"]

    with pytest.raises(OrderRejectedError, match="insufficient balance") as refused:
        broker.submit_order(stop_sell("stop-2", 0.1, stop, limit))
    assert refused.value.status == 403
    with pytest.raises(OrderRejectedError, match="insufficient balance"):
        broker.submit_order(OrderRequest(BTC, "sell", "sell-1", qty=0.1))


def test_cancel_frees_the_coins_and_a_closed_order_cannot_be_cancelled(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_position(BTC, 0.1, 60_000.0)
    price = fake.price(BTC)
    stop = broker.submit_order(stop_sell("stop-1", 0.1, price * 0.95, price * 0.94))
    broker.cancel_order(stop.id)  # a replace is cancel-then-place: the coins are free at once
    assert broker.open_orders() == []
    replaced = broker.submit_order(stop_sell("stop-2", 0.1, price * 0.96, price * 0.95))
    assert replaced.status == "new"
    broker.cancel_order(replaced.id)
    sold = broker.submit_order(OrderRequest(BTC, "sell", "sell-1", qty=0.1))
    assert sold.status == "filled"
    for closed, state in ((sold, "filled"), (stop, "canceled")):
        with pytest.raises(OrderRejectedError, match=f'already in "{state}" state') as caught:
            broker.cancel_order(closed.id)
        assert caught.value.status == 422
    for unknown in ("8d5e0b44-0000-4000-8000-000000000000", "not-a-uuid"):
        with pytest.raises(BrokerError) as missing:
            broker.cancel_order(unknown)
        assert missing.value.status == 404 and not isinstance(missing.value, OrderRejectedError)


# ------------------------------------------------------------------ fills along the path
def test_a_stop_fills_where_the_path_crosses_it_at_the_matched_price(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_position(BTC, 0.1, 60_000.0)
    end = T0 + timedelta(hours=6)
    low = min(bar["l"] for _, bar in minute_bars(fake, BTC, T0, end))
    price = fake.price(BTC)
    stop = round((price + low) / 2)  # between now and the window's low: crossed in it
    order = broker.submit_order(stop_sell("stop-1", 0.1, stop, stop - 50))
    expected, at, _ = expected_fill(fake, BTC, order, end)
    assert expected is not None and at is not None
    walk_clock(fake, at - timedelta(minutes=1), timedelta(minutes=15))
    assert broker.get_order_by_client_id("stop-1").status == "new"  # not yet: one bar to go
    walk_clock(fake, end, timedelta(minutes=15))
    filled = broker.get_order_by_client_id("stop-1")
    assert filled is not None and filled.status == "filled" and filled.filled_at == at
    assert filled.filled_avg_price == pytest.approx(expected, abs=1e-6)
    assert filled.fee == pytest.approx(fee_of(fake, filled), abs=0.005) and filled.fee > 0
    assert broker.position(BTC) is None and broker.open_orders() == []


def test_a_gap_through_the_stop_fills_at_the_open_and_below_the_limit_stays_open(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.set_position(BTC, 0.2, 60_000.0)
    gap_at = T0 + timedelta(minutes=45)
    low = min(bar["l"] for _, bar in minute_bars(fake, BTC, T0, gap_at))
    stop = math.floor(low) - 20  # not reached before the gap
    last_close = fake.bars.bar(BTC, gap_at - timedelta(minutes=1), 1, gap_at)["c"]
    fake.gap(BTC, gap_at, (stop - 1_500) / last_close)  # opens 1,500 under the stop
    through = broker.submit_order(stop_sell("through", 0.1, stop, stop - 3_000))
    below = broker.submit_order(stop_sell("below", 0.1, stop, stop - 10))
    end = gap_at + timedelta(minutes=30)
    walk_clock(fake, end, timedelta(minutes=15))

    price, at, _ = expected_fill(fake, BTC, through, end)
    filled = broker.get_order_by_client_id("through")
    assert filled is not None and filled.status == "filled" and at == gap_at + timedelta(minutes=1)
    assert filled.filled_avg_price == pytest.approx(price, abs=1e-6) and price < stop - 1_400
    assert expected_fill(fake, BTC, below, end)[0] is None  # the bars never reached its limit
    gapped = broker.get_order_by_client_id("below")
    assert gapped is not None and gapped.status == "new" and fake.triggered(below.id)
    assert broker.open_orders(BTC)[0].client_order_id == "below"

    recover_at = end + timedelta(minutes=10)  # the price gaps back over the limit
    fake.gap(BTC, recover_at, last_close / (stop - 1_500))
    later = recover_at + timedelta(minutes=20)
    walk_clock(fake, later, timedelta(minutes=15))
    price, at, _ = expected_fill(fake, BTC, below, later)
    assert at == recover_at + timedelta(minutes=1)  # as a triggered limit, in the first bar up
    done = broker.get_order_by_client_id("below")
    assert done is not None and done.status == "filled"
    assert done.filled_avg_price == pytest.approx(price, abs=1e-6)


def test_a_limit_buy_rests_then_fills_when_the_path_reaches_it(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    end = T0 + timedelta(hours=6)
    low = min(bar["l"] for _, bar in minute_bars(fake, ETH, T0, end))
    limit = (fake.price(ETH) + low) / 2
    order = broker.submit_order(OrderRequest(ETH, "buy", "eth-1", qty=0.5, type="limit",
                                             limit_price=limit))  # fmt: skip
    assert (order.status, order.type, order.filled_qty) == ("new", "limit", 0.0)
    assert broker.position(ETH) is None
    price, at, _ = expected_fill(fake, ETH, order, end)
    assert price is not None and price <= order.limit_price  # never pays more than asked
    walk_clock(fake, end, timedelta(minutes=30))
    filled = broker.get_order_by_client_id("eth-1")
    assert filled is not None and (filled.status, filled.filled_at) == ("filled", at)
    assert filled.filled_avg_price == pytest.approx(price, abs=1e-6)
    fee = fee_of(fake, filled)
    assert filled.fee == pytest.approx(fee, abs=0.005)
    assert fee == pytest.approx(0.5 * price * fake.fee_rate, abs=0.01)
    held = broker.position(ETH)  # the fee came off the coins
    assert held is not None and held.qty == pytest.approx(0.5 * (1 - fake.fee_rate), abs=2e-9)


# -------------------------------------------------------------------------------- fees
def test_fees_match_the_activities_and_pnl_matches_the_cash(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    cash_before = broker.account().cash
    buy = broker.submit_order(OrderRequest(BTC, "buy", "buy-1", notional=5_000.0))
    assert buy.status == "filled" and buy.fee > 0
    assert buy.fee == pytest.approx(fee_of(fake, buy), abs=0.005)
    assert buy.fee == pytest.approx(fake.fees[0]["usd"], abs=0.005)
    assert broker.get_order_by_client_id("buy-1") == buy
    held = broker.position(BTC)
    assert held is not None and held.qty < buy.filled_qty  # the fee was taken in coins
    fake.now = T0 + timedelta(hours=3)
    sell = broker.submit_order(OrderRequest(BTC, "sell", "sell-1", qty=held.qty))
    assert sell.fee == pytest.approx(fee_of(fake, sell), abs=0.005)
    assert sell.fee == pytest.approx(sell.filled_qty * (sell.filled_avg_price or 0) * 0.0025)
    pnl = sell.filled_qty * ((sell.filled_avg_price or 0.0) - held.avg_entry_price) - sell.fee
    assert pnl == pytest.approx(broker.account().cash - cash_before, abs=0.01)


def test_each_partial_fill_posts_its_own_fee_and_the_order_carries_their_sum(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.fill_mode = "partial"
    first = broker.submit_order(OrderRequest(BTC, "buy", "buy-1", notional=2_000.0))
    assert first.status == "partially_filled"
    assert first.fee == pytest.approx(fee_of(fake, first), abs=0.005) and first.fee > 0
    fake.fill_open_orders()
    done = broker.get_order_by_client_id("buy-1")
    assert done is not None and done.status == "filled"
    assert len([a for a in fake.fee_activities() if a["order_id"] == done.id]) == 2
    assert done.fee == pytest.approx(fee_of(fake, done), abs=0.005)
    assert done.fee == pytest.approx(2_000.0 * fake.fee_rate, abs=0.01)


def test_an_unread_fee_fails_the_booking_and_an_unposted_one_counts_zero(
    fake: FakeAlpaca, broker: AlpacaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.submit_order(OrderRequest(BTC, "buy", "buy-1", notional=1_000.0))
    fake.inject("GET", "/v2/account/activities", status(500), times=3)
    with pytest.raises(BrokerError, match="read fee activities"):
        broker.get_order_by_client_id("buy-1")  # the pending intent is booked next pass
    fake.inject("GET", "/v2/account/activities", status(200, [{"id": "x", "qty": "-1"}]))
    with pytest.raises(BrokerError, match="unknown shape"):
        broker.get_order_by_client_id("buy-1")
    fake.fees_posted = False
    with caplog.at_level(logging.WARNING, logger="botlib"):
        order = broker.get_order_by_client_id("buy-1")
    assert order is not None and order.filled_qty > 0 and order.fee == 0.0
    assert "no CFEE activity posted yet" in caplog.text
    fake.fees_posted = True
    assert broker.get_order_by_client_id("buy-1").fee == pytest.approx(2.5, abs=0.01)


def test_fee_activities_are_read_page_by_page(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    for _ in range(120):  # more fills than one page of activities holds
        fake.place_manual_trade(ETH, "buy", qty=0.01)
        fake.now = fake.now + timedelta(seconds=1)
    order = broker.submit_order(OrderRequest(BTC, "buy", "buy-1", notional=1_000.0))
    fake.now = fake.now + timedelta(minutes=1)
    for _ in range(110):
        fake.place_manual_trade(ETH, "buy", qty=0.01)
    assert broker.get_order_by_client_id("buy-1").fee == pytest.approx(fee_of(fake, order))
    pages = fake.requests_to("/v2/account/activities/CFEE")
    assert len(pages) >= 2 + 3 and "page_token" in pages[-1]["query"]
