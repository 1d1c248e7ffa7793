"""Prices, clocks, bus and the conflated market view."""

from decimal import Decimal

import pytest

from engine.core import MarketView, MessageBus, Quote, SimClock, Topic, Trade
from engine.core.bus import BoundedQueue
from engine.core.clock import datetime_to_ns, ns_to_datetime
from engine.core.models import Bar, OrderStatus, Side
from engine.core.prices import on_tick_grid, round_to_tick, tick_size, to_decimal

D = Decimal


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (D("1.00"), D("0.01")),
        (D("187.5"), D("0.01")),
        (D("0.9999"), D("0.0001")),
        (D("0.5"), D("0.0001")),
    ],
)
def test_tick_size_follows_rule_612(price, tick):
    assert tick_size(price) == tick


@pytest.mark.parametrize(
    ("price", "ok"),
    [
        (D("187.50"), True),
        (D("187.505"), False),
        (D("0.1234"), True),
        (D("0.12345"), False),
        (D("1.0001"), False),
    ],
)
def test_on_tick_grid(price, ok):
    assert on_tick_grid(price) is ok


def test_round_to_tick_crossing_one_dollar_uses_the_coarser_grid():
    assert round_to_tick(D("0.99996")) == D("1.00")
    assert round_to_tick(D("187.505")) == D("187.50")  # half-even


def test_to_decimal_parses_money_text_and_refuses_garbage():
    assert to_decimal("$1,250.50") == D("1250.50")
    assert to_decimal(187.5) == D("187.5")
    with pytest.raises(ValueError, match="'abc' is not a number"):
        to_decimal("abc")
    with pytest.raises(ValueError, match="not a finite number"):
        to_decimal("nan")


def test_terminal_statuses_are_not_open():
    assert not OrderStatus.FILLED.is_open
    assert OrderStatus.PARTIALLY_FILLED.is_open
    assert Side.BUY.sign == 1 and Side.SELL.opposite is Side.BUY


def test_sim_clock_fires_timers_in_time_order_with_now_at_the_deadline():
    clock = SimClock(start_ns=1_000)
    seen = []
    clock.call_later(50, lambda: seen.append(("b", clock.now_ns())))
    clock.call_at(1_020, lambda: seen.append(("a", clock.now_ns())))
    clock.call_at(1_020, lambda: seen.append(("a2", clock.now_ns())))
    cancelled = clock.call_at(1_030, lambda: seen.append(("x", clock.now_ns())))
    cancelled.cancel()
    clock.advance_to(1_100)
    assert seen == [("a", 1_020), ("a2", 1_020), ("b", 1_050)]
    assert clock.now_ns() == 1_100


def test_sim_clock_never_moves_backwards():
    clock = SimClock(start_ns=500)
    clock.advance_to(100)
    assert clock.now_ns() == 500


def test_datetime_round_trip_is_exact_to_the_microsecond():
    ts = 1_381_152_600_123_456_000
    assert datetime_to_ns(ns_to_datetime(ts)) == ts


def test_bus_delivers_to_topic_then_symbol_subscribers_and_survives_a_failing_handler():
    bus = MessageBus()
    got = []
    bus.subscribe(Topic.TRADE, lambda m: got.append(("all", m.symbol)))
    bus.subscribe(Topic.TRADE, lambda m: 1 / 0)
    bus.subscribe(Topic.TRADE, lambda m: got.append(("ibm", m.symbol)), symbol="IBM")
    bus.publish(Topic.TRADE, Trade("IBM", 1, D("1"), 1))
    bus.publish(Topic.TRADE, Trade("SPY", 2, D("1"), 1))
    assert got == [("all", "IBM"), ("ibm", "IBM"), ("all", "SPY")]
    assert bus.handler_errors == 2


def test_bounded_queue_drops_the_oldest_when_full():
    queue = BoundedQueue(2)
    for item in (1, 2, 3):
        queue.put_nowait(item)
    assert queue.dropped == 1
    assert [queue.get_nowait(), queue.get_nowait()] == [2, 3]


def test_market_view_conflates_a_flood_into_one_snapshot_per_symbol():
    bus = MessageBus()
    view = MarketView(bus)
    for i in range(10_000):
        bus.publish(
            Topic.QUOTE, Quote("AAPL", i, D("100.00"), 100, D("100.01") + i % 3 * D("0.01"), 200)
        )
    bus.publish(Topic.TRADE, Trade("AAPL", 10_001, D("100.02"), 300))
    version, changed = view.changed_since(0)
    assert [s.symbol for s in changed] == ["AAPL"]
    snap = changed[0]
    assert (snap.bid, snap.ask, snap.last, snap.volume) == (
        D("100.00"),
        D("100.01"),
        D("100.02"),
        300,
    )
    assert view.changed_since(version) == (version, [])


def test_market_view_change_pct_and_sparkline_from_bars():
    view = MarketView()
    view.set_reference("SPY", D("100"))
    view.on_bar(Bar("SPY", 0, D("100"), D("103"), D("99"), D("102"), 1_000))
    view.on_bar(Bar("SPY", 60, D("102"), D("104"), D("101"), D("104"), 500))
    snap = view.snapshot("SPY")
    assert snap.closes == (D("102"), D("104"))
    assert snap.change_pct == D("4")
    assert snap.volume == 1_500
