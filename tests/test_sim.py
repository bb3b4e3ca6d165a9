from datetime import UTC, datetime, timedelta

import pytest

from botlib.clock import ManualClock
from botlib.errors import DataError, OrderRejectedError
from botlib.models import OrderRequest
from botlib.storage.store import Store
from botlib.venues.sim import SimBroker, SimMarket

END = datetime(2026, 11, 20, 12, 37, 30, tzinfo=UTC)


def test_same_symbol_same_bars_across_instances() -> None:
    a = SimMarket().bars("BTC/USD", "1Hour", END, 100)
    b = SimMarket().bars("BTC/USD", "1Hour", END, 100)
    assert a.equals(b)
    assert not a.equals(SimMarket().bars("SOL/USD", "1Hour", END, 100))


@pytest.mark.parametrize("timeframe", ["1Min", "5Min", "15Min", "30Min", "1Hour"])
def test_only_completed_bars_are_returned(timeframe: str) -> None:
    bars = SimMarket().bars("BTC/USD", timeframe, END, 50)
    width = bars.index[1] - bars.index[0]
    assert len(bars) == 50
    assert bars.index[-1] + width <= END < bars.index[-1] + 2 * width
    assert bars.index.is_monotonic_increasing


def test_a_closed_bar_never_changes_later() -> None:
    early = SimMarket().bars("SOL/USD", "15Min", END, 80)
    late = SimMarket().bars("SOL/USD", "15Min", END + timedelta(days=2), 400)
    common = early.index.intersection(late.index)
    assert len(common) == 80
    assert early.loc[common].equals(late.loc[common])


def test_hour_bar_aggregates_its_minutes() -> None:
    m = SimMarket()
    hour = m.bars("BTC/USD", "1Hour", END, 3).iloc[-1]
    minutes = m.bars("BTC/USD", "1Min", END, 200)
    inside = minutes[
        (minutes.index >= hour.name) & (minutes.index < hour.name + timedelta(hours=1))
    ]
    assert len(inside) == 60
    assert hour.open == inside.open.iloc[0] and hour.close == inside.close.iloc[-1]
    assert hour.high == inside.high.max() and hour.low == inside.low.min()
    assert hour.volume == pytest.approx(inside.volume.sum())


@pytest.mark.parametrize(("symbol", "low", "high"), [("BTC/USD", 1e4, 5e5), ("SOL/USD", 10, 3e3)])
def test_price_levels_are_plausible_over_years(symbol: str, low: float, high: float) -> None:
    m = SimMarket()
    for year in (2021, 2024, 2026, 2030):
        close = m.bars(symbol, "1Hour", datetime(year, 6, 1, tzinfo=UTC), 24 * 30).close
        assert low < close.min() and close.max() < high
        assert (m.bars(symbol, "1Hour", datetime(year, 6, 1, tzinfo=UTC), 3).high > 0).all()


def test_market_is_not_a_flat_line() -> None:
    close = SimMarket().bars("BTC/USD", "1Hour", END, 24 * 60).close
    returns = close.pct_change().dropna()
    assert 0.001 < returns.std() < 0.05
    assert returns.abs().max() > 4 * returns.std()  # fat tails: occasional jumps


def test_latest_price_is_the_last_minute_close() -> None:
    m = SimMarket()
    assert m.latest_price("BTC/USD", END) == m.bars("BTC/USD", "1Min", END, 1).close.iloc[-1]


def test_unknown_timeframe_is_a_data_error() -> None:
    with pytest.raises(DataError, match="timeframe"):
        SimMarket().bars("BTC/USD", "2Hour", END, 10)


@pytest.fixture
def broker(store: Store) -> SimBroker:
    return SimBroker(store, SimMarket(), ManualClock(END), cash=10_000.0)


def test_buy_takes_fee_in_the_received_asset(broker: SimBroker) -> None:
    order = broker.submit_order(OrderRequest("BTC/USD", "buy", "b1", notional=1000.0))
    price = broker.market.latest_price("BTC/USD", END)
    assert order.filled_avg_price == pytest.approx(price * 1.0005)
    held = broker.position("BTC/USD")
    assert held is not None
    assert held.qty == pytest.approx(1000.0 / order.filled_avg_price * 0.9975)
    assert held.avg_entry_price * held.qty == pytest.approx(1000.0)
    assert broker.account().cash == pytest.approx(9000.0)
    assert order.fee == pytest.approx(2.5)


def test_sell_all_returns_cash_minus_fee(broker: SimBroker) -> None:
    broker.submit_order(OrderRequest("BTC/USD", "buy", "b1", notional=1000.0))
    held = broker.position("BTC/USD")
    assert held is not None
    sold = broker.submit_order(OrderRequest("BTC/USD", "sell", "s1", qty=held.qty))
    assert broker.position("BTC/USD") is None
    proceeds = held.qty * sold.filled_avg_price * 0.9975
    assert broker.account().cash == pytest.approx(9000.0 + proceeds)


def test_duplicate_client_order_id_is_422(broker: SimBroker) -> None:
    broker.submit_order(OrderRequest("BTC/USD", "buy", "dup", notional=10.0))
    with pytest.raises(OrderRejectedError) as err:
        broker.submit_order(OrderRequest("BTC/USD", "buy", "dup", notional=10.0))
    assert err.value.is_duplicate and err.value.status == 422
    assert broker.store.db["sim_orders"].count == 1


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (OrderRequest("BTC/USD", "sell", "s", qty=0.1), "insufficient balance for BTC"),
        (OrderRequest("BTC/USD", "buy", "b", notional=0.5), "minimal amount of order 1"),
        (OrderRequest("BTC/USD", "buy", "b", notional=20_000.0), "insufficient balance for USD"),
    ],
)
def test_rejections_mirror_alpaca(broker: SimBroker, request_: OrderRequest, message: str) -> None:
    with pytest.raises(OrderRejectedError, match=message) as err:
        broker.submit_order(request_)
    assert err.value.status == 403
    assert broker.account().cash == 10_000.0 and broker.store.db["sim_orders"].count == 0
