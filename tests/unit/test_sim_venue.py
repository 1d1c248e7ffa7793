"""The sim venue: matching against the NBBO, order lifecycle events, fees and the paper account.

Every expectation is worked out by hand from the rules in ``engine.broker.sim``'s
docstring. Quotes are driven through a real bus into a real MarketView; time moves
only when a test advances the SimClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_MS, NS_PER_SECOND, SimClock
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import (
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
    TimeInForce,
    TradeEvent,
)

D = Decimal
SYMBOL = "XYZ"
T0 = 1_700_000_000 * NS_PER_SECOND
LATENCY_NS = 5 * NS_PER_MS  # SimVenueConfig's default 5 ms
INSTRUMENTS = {
    "XYZ": Instrument("XYZ"),
    "NOSHORT": Instrument("NOSHORT", shortable=False),
    "HALT": Instrument("HALT", tradable=False),
}
_ids = itertools.count(1)

NEW, PARTIAL, FILL = TradeEvent.NEW, TradeEvent.PARTIAL_FILL, TradeEvent.FILL
CANCELED, REJECTED = TradeEvent.CANCELED, TradeEvent.REJECTED
MARKET, LIMIT, STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP
STOP_LIMIT, TRAILING = OrderType.STOP_LIMIT, OrderType.TRAILING_STOP


def make_order(
    side: str,
    qty: str,
    type: OrderType = MARKET,
    tif: TimeInForce = TimeInForce.DAY,
    *,
    limit: str | None = None,
    stop: str | None = None,
    trail_price: str | None = None,
    trail_percent: str | None = None,
    symbol: str = SYMBOL,
    order_id: str | None = None,
) -> Order:
    request = OrderRequest(
        symbol=symbol,
        side=Side(side),
        qty=D(qty),
        type=type,
        tif=tif,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
        trail_price=None if trail_price is None else D(trail_price),
        trail_percent=None if trail_percent is None else D(trail_percent),
    )
    return Order.from_request(request, order_id or f"c{next(_ids)}", T0)


@dataclass
class Venue:
    """A sim venue on a real bus, clock and market view, recording every update it publishes."""

    bus: MessageBus
    clock: SimClock
    market: MarketView
    broker: SimBroker
    updates: list[OrderUpdate] = field(default_factory=list)

    def quote(self, bid: str, bid_size: int, ask: str, ask_size: int, symbol: str = SYMBOL) -> None:
        self.bus.publish(
            Topic.QUOTE, Quote(symbol, self.clock.now_ns(), D(bid), bid_size, D(ask), ask_size)
        )

    def session(self, phase: SessionPhase) -> None:
        self.bus.publish(Topic.SESSION, SessionEvent(self.clock.now_ns(), phase, "2023-11-14"))

    def step(self) -> None:
        """Let the latency pass: commands arrive and every pending report is delivered."""
        self.clock.advance_by(LATENCY_NS)

    def submit(self, order: Order) -> Order:
        self.broker.submit(order)
        self.step()
        return order

    def events(self, order_id: str | None = None) -> list[TradeEvent]:
        return [u.event for u in self.updates if order_id is None or u.order_id == order_id]

    def fills(self) -> list[tuple[Decimal, Decimal]]:
        return [(u.fill.qty, u.fill.price) for u in self.updates if u.fill is not None]

    def last(self) -> OrderUpdate:
        return self.updates[-1]

    def account(self):
        return asyncio.run(self.broker.account())

    def open_orders(self) -> list[Order]:
        return asyncio.run(self.broker.open_orders())

    def positions(self):
        return asyncio.run(self.broker.positions())

    def get_order(self, order_id: str) -> Order | None:
        return asyncio.run(self.broker.get_order(order_id))


@pytest.fixture
def venues():
    """Builds venues; after the test, no bus handler may have raised (the bus would hide it)."""
    built: list[Venue] = []

    def build(state_path: Path | None = None, *, reset: bool = False, **config) -> Venue:
        bus = MessageBus()
        market = MarketView(bus)
        clock = SimClock(T0)
        broker = SimBroker(
            bus,
            clock,
            market,
            SimVenueConfig(**config),
            state_path=state_path,
            instruments=INSTRUMENTS,
            reset=reset,
        )
        venue = Venue(bus, clock, market, broker)
        bus.subscribe(Topic.ORDER_UPDATE, venue.updates.append)
        built.append(venue)
        return venue

    yield build
    assert [v.bus.handler_errors for v in built] == [0] * len(built)


@pytest.fixture
def venue(venues) -> Venue:
    return venues()


# -- market orders ----------------------------------------------------------------------------


def test_market_buy_walks_the_book_one_execution_per_level(venue):
    venue.quote("99.99", 300, "100.00", 200)
    order = venue.submit(make_order("buy", "500"))
    assert venue.events() == [NEW, PARTIAL, PARTIAL, FILL]
    assert venue.fills() == [(200, D("100.00")), (200, D("100.01")), (100, D("100.02"))]
    # (200*100.00 + 200*100.01 + 100*100.02) / 500 = 50004 / 500
    final = venue.last()
    assert (final.order_id, final.status, final.filled_qty) == (order.id, OrderStatus.FILLED, 500)
    assert final.filled_avg_price == D("100.008")
    assert final.position_qty == 500


def test_fill_quantities_and_prices_are_decimals(venue):
    venue.quote("99.99", 300, "100.00", 200)
    venue.submit(make_order("buy", "500"))
    fills = [u.fill for u in venue.updates if u.fill is not None]
    assert {type(f.qty) for f in fills} == {type(f.price) for f in fills} == {Decimal}


def test_new_update_carries_a_venue_order_id(venue):
    venue.quote("99.99", 300, "100.00", 200)
    venue.submit(make_order("buy", "10"))
    new = venue.updates[0]
    assert new.status is OrderStatus.NEW and new.broker_order_id


def test_partial_fill_reports_cumulative_qty_and_vwap(venue):
    venue.quote("99.99", 300, "100.00", 200)
    venue.submit(make_order("buy", "500"))
    second = venue.updates[2]
    assert (second.event, second.status) == (PARTIAL, OrderStatus.PARTIALLY_FILLED)
    assert (second.filled_qty, second.filled_avg_price) == (400, D("100.005"))
    assert second.position_qty == 400


def test_market_sell_walks_down_from_the_bid(venue):
    venue.quote("50.00", 100, "50.02", 100)
    venue.submit(make_order("sell", "250"))
    assert venue.fills() == [(100, D("50.00")), (100, D("49.99")), (50, D("49.98"))]
    assert venue.last().position_qty == -250


def test_walk_ticks_sets_how_much_worse_each_level_is(venues):
    venue = venues(walk_ticks=5)
    venue.quote("19.99", 100, "20.00", 100)
    venue.submit(make_order("buy", "250"))
    assert venue.fills() == [(100, D("20.00")), (100, D("20.05")), (50, D("20.10"))]


def test_market_remainder_beyond_max_walk_levels_is_canceled_with_reason(venues):
    venue = venues(max_walk_levels=1)
    venue.quote("9.99", 100, "10.00", 100)
    venue.submit(make_order("buy", "250"))
    assert venue.events() == [NEW, PARTIAL, PARTIAL, CANCELED]
    assert venue.fills() == [(100, D("10.00")), (100, D("10.01"))]
    final = venue.last()
    assert (final.status, final.filled_qty) == (OrderStatus.CANCELED, 200)
    assert "unfilled 50 shares were canceled" in final.reason


def test_two_orders_at_one_quote_share_its_displayed_size(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.broker.submit(make_order("buy", "100"))
    venue.broker.submit(make_order("buy", "100"))
    venue.step()
    assert venue.fills() == [(100, D("100.00")), (100, D("100.01"))]


def test_a_new_quote_refreshes_the_displayed_size(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "100"))
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "100"))
    assert venue.fills() == [(100, D("100.00")), (100, D("100.00"))]


def test_order_matches_the_quote_at_arrival_not_at_sending(venue):
    venue.quote("99.99", 500, "100.00", 500)
    venue.broker.submit(make_order("buy", "100"))
    venue.quote("100.09", 500, "100.10", 500)
    venue.step()
    assert venue.fills() == [(100, D("100.10"))]


# -- limit orders -----------------------------------------------------------------------------


def test_limit_order_that_is_not_marketable_rests(venue):
    venue.quote("99.90", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "100", LIMIT, limit="99.95"))
    assert venue.events() == [NEW]
    assert [o.id for o in venue.open_orders()] == [order.id]


def test_resting_buy_limit_fills_at_the_ask_when_a_quote_crosses_it(venue):
    venue.quote("99.90", 100, "100.00", 100)
    venue.submit(make_order("buy", "300", LIMIT, limit="99.95"))
    venue.quote("99.80", 500, "99.90", 500)
    venue.step()
    assert venue.events() == [NEW, FILL]
    assert venue.fills() == [(300, D("99.90"))]


def test_resting_sell_limit_fills_at_the_bid_when_a_quote_crosses_it(venue):
    venue.quote("49.90", 100, "50.00", 100)
    venue.submit(make_order("sell", "100", LIMIT, limit="50.05"))
    venue.quote("50.10", 500, "50.12", 500)
    venue.step()
    assert venue.fills() == [(100, D("50.10"))]


def test_marketable_limit_never_fills_through_its_price(venue):
    venue.quote("99.99", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "300", LIMIT, limit="100.01"))
    assert venue.events() == [NEW, PARTIAL, PARTIAL]
    assert venue.fills() == [(100, D("100.00")), (100, D("100.01"))]
    [resting] = venue.open_orders()
    assert (resting.id, resting.status, resting.leaves_qty) == (
        order.id,
        OrderStatus.PARTIALLY_FILLED,
        100,
    )


def test_resting_limit_fills_partially_across_quotes_taking_only_the_touch(venue):
    venue.quote("100.09", 100, "100.10", 100)
    venue.submit(make_order("buy", "250", LIMIT, limit="100.05"))
    for ask, size in (("100.00", 100), ("100.02", 100), ("100.05", 500)):
        venue.quote("99.90", 100, ask, size)
        venue.step()
    assert venue.events() == [NEW, PARTIAL, PARTIAL, FILL]
    assert venue.fills() == [(100, D("100.00")), (100, D("100.02")), (50, D("100.05"))]
    # (10000.00 + 10002.00 + 5002.50) / 250
    assert venue.last().filled_avg_price == D("100.018")


def test_ioc_limit_remainder_is_canceled(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "300", LIMIT, TimeInForce.IOC, limit="100.01"))
    assert venue.events() == [NEW, PARTIAL, PARTIAL, CANCELED]
    final = venue.last()
    assert (final.status, final.filled_qty) == (OrderStatus.CANCELED, 200)
    assert final.reason == "IOC: the unfilled 100 shares were canceled"


def test_fok_is_rejected_when_it_cannot_fill_completely(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "300", LIMIT, TimeInForce.FOK, limit="100.01"))
    assert venue.events() == [REJECTED]
    assert venue.last().reason == "FOK: 300 XYZ cannot be filled completely now (200 available)"
    assert venue.fills() == []


def test_fok_fills_completely_when_the_book_allows(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "200", LIMIT, TimeInForce.FOK, limit="100.01"))
    assert venue.events() == [NEW, PARTIAL, FILL]
    assert venue.fills() == [(100, D("100.00")), (100, D("100.01"))]


# -- stops ------------------------------------------------------------------------------------


def test_buy_stop_waits_until_the_ask_reaches_the_stop_then_walks_as_a_market_order(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "100", STOP, stop="100.50"))
    venue.quote("100.48", 100, "100.49", 100)
    venue.step()
    assert venue.events() == [NEW]
    venue.quote("100.49", 100, "100.50", 60)
    venue.step()
    assert venue.events() == [NEW, PARTIAL, FILL]
    assert venue.fills() == [(60, D("100.50")), (40, D("100.51"))]


def test_sell_stop_triggers_when_the_bid_falls_to_the_stop(venue):
    venue.quote("50.00", 100, "50.01", 100)
    venue.submit(make_order("sell", "100", STOP, stop="49.50"))
    venue.quote("49.51", 100, "49.52", 100)
    venue.step()
    assert venue.fills() == []
    venue.quote("49.40", 100, "49.45", 100)
    venue.step()
    assert venue.fills() == [(100, D("49.40"))]


def test_stop_already_through_on_arrival_triggers_at_once(venue):
    venue.quote("100.59", 100, "100.60", 100)
    venue.submit(make_order("buy", "100", STOP, stop="100.50"))
    assert venue.fills() == [(100, D("100.60"))]


def test_stop_limit_becomes_a_limit_when_triggered(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "400", STOP_LIMIT, limit="100.52", stop="100.50"))
    venue.quote("100.49", 100, "100.50", 100)
    venue.step()
    # Triggered: matches as an arriving limit, walking up to 100.52; the rest rests.
    assert venue.fills() == [(100, D("100.50")), (100, D("100.51")), (100, D("100.52"))]
    assert venue.last().status is OrderStatus.PARTIALLY_FILLED
    venue.quote("100.59", 100, "100.60", 100)
    venue.step()
    venue.quote("100.51", 100, "100.52", 300)
    venue.step()
    assert venue.fills()[3:] == [(100, D("100.52"))]
    assert venue.last().status is OrderStatus.FILLED


def test_sell_trailing_stop_by_amount_follows_the_bids_high_water_mark(venue):
    venue.quote("100.00", 100, "100.02", 100)  # hwm 100.00, stop 99.50
    venue.submit(make_order("sell", "100", TRAILING, trail_price="0.50"))
    # 100.60: hwm 100.60, stop 100.10; 100.20 stays above; 101.00: stop 100.50; 100.51 above.
    for bid in ("100.60", "100.20", "101.00", "100.51"):
        venue.quote(bid, 100, "101.10", 100)
        venue.step()
    assert venue.fills() == []
    venue.quote("100.50", 100, "100.52", 100)
    venue.step()
    assert venue.fills() == [(100, D("100.50"))]


def test_sell_trailing_stop_by_percent_follows_the_bids_high_water_mark(venue):
    venue.quote("200.00", 100, "200.02", 100)  # hwm 200.00, stop 198.00
    venue.submit(make_order("sell", "100", TRAILING, trail_percent="1"))
    # 202.00: hwm 202.00, stop 202 * 0.99 = 199.98; 199.99 stays above it.
    for bid in ("202.00", "199.99"):
        venue.quote(bid, 100, "202.10", 100)
        venue.step()
    assert venue.fills() == []
    venue.quote("199.98", 100, "200.00", 100)
    venue.step()
    assert venue.fills() == [(100, D("199.98"))]


def test_buy_trailing_stop_follows_the_asks_low_water_mark(venue):
    venue.quote("49.98", 100, "50.00", 100)  # lwm 50.00, stop 50.25
    venue.submit(make_order("buy", "100", TRAILING, trail_price="0.25"))
    # 49.50: lwm 49.50, stop 49.75; 49.74 stays below it.
    for ask in ("49.50", "49.74"):
        venue.quote("49.40", 100, ask, 100)
        venue.step()
    assert venue.fills() == []
    venue.quote("49.70", 100, "49.75", 100)
    venue.step()
    assert venue.fills() == [(100, D("49.75"))]


# -- cancel and replace -----------------------------------------------------------------------


def test_cancel_of_an_open_order_gives_canceled(venue):
    venue.quote("99.90", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "100", LIMIT, limit="99.00"))
    venue.broker.cancel(order.id)
    venue.step()
    assert venue.events() == [NEW, CANCELED]
    assert venue.last().status is OrderStatus.CANCELED
    assert venue.open_orders() == []


def test_cancel_keeps_the_fills_so_far(venue):
    venue.quote("99.99", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "300", LIMIT, limit="100.00"))
    venue.broker.cancel(order.id)
    venue.step()
    final = venue.last()
    assert (final.event, final.filled_qty, final.filled_avg_price) == (CANCELED, 100, D("100.00"))


def test_cancel_of_a_filled_order_is_rejected_with_the_reason(venue):
    venue.quote("99.99", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "100", order_id="done-1"))
    venue.broker.cancel(order.id)
    venue.step()
    refusal = venue.last()
    assert refusal.event is TradeEvent.ORDER_CANCEL_REJECTED
    assert (refusal.status, refusal.reason) == (
        OrderStatus.FILLED,
        "order done-1 is already filled",
    )


def test_cancel_of_an_unknown_order_is_rejected_with_the_reason(venue):
    venue.broker.cancel("ghost")
    venue.step()
    refusal = venue.last()
    assert refusal.event is TradeEvent.ORDER_CANCEL_REJECTED
    assert refusal.reason == "order ghost is unknown at the sim venue"


def test_replace_gives_replaced_on_the_old_order_then_new_on_the_replacement(venue):
    venue.quote("99.90", 100, "100.00", 100)
    old = venue.submit(make_order("buy", "100", LIMIT, limit="99.00", order_id="old"))
    venue.broker.replace(old.id, make_order("buy", "200", LIMIT, limit="99.50", order_id="new"))
    venue.step()
    replaced, new = venue.updates[1:]
    assert (replaced.event, replaced.order_id, replaced.status, replaced.replaced_by) == (
        TradeEvent.REPLACED,
        "old",
        OrderStatus.REPLACED,
        "new",
    )
    assert (new.event, new.order_id, new.status) == (NEW, "new", OrderStatus.NEW)
    [working] = venue.open_orders()
    assert (working.id, working.qty, working.limit_price, working.replaces) == (
        "new",
        200,
        D("99.50"),
        "old",
    )


def test_replacement_is_a_fresh_order_for_the_requested_qty(venue):
    venue.quote("99.99", 100, "100.00", 100)
    old = venue.submit(make_order("buy", "300", LIMIT, limit="100.00", order_id="old"))
    venue.broker.replace(old.id, make_order("buy", "250", LIMIT, limit="99.00", order_id="new"))
    venue.step()
    old_record, new_record = venue.get_order("old"), venue.get_order("new")
    assert (old_record.status, old_record.filled_qty) == (OrderStatus.REPLACED, 100)
    assert (new_record.qty, new_record.filled_qty) == (250, 0)


def test_replace_of_a_closed_order_is_rejected_and_the_replacement_never_exists(venue):
    venue.quote("99.99", 100, "100.00", 100)
    old = venue.submit(make_order("buy", "100", order_id="old"))
    venue.broker.replace(old.id, make_order("buy", "50", LIMIT, limit="99.00", order_id="new"))
    venue.step()
    refusal = venue.last()
    assert (refusal.event, refusal.order_id) == (TradeEvent.ORDER_REPLACE_REJECTED, "old")
    assert refusal.reason == "order old is already filled"
    assert venue.get_order("new") is None


def test_replace_that_changes_the_side_is_rejected_and_the_old_order_keeps_working(venue):
    venue.quote("99.90", 100, "100.00", 100)
    old = venue.submit(make_order("buy", "100", LIMIT, limit="99.00", order_id="old"))
    venue.broker.replace(old.id, make_order("sell", "100", LIMIT, limit="101.00", order_id="new"))
    venue.step()
    assert venue.last().reason == "a replacement must keep the order's symbol and side"
    assert [o.id for o in venue.open_orders()] == ["old"]


# -- timing -----------------------------------------------------------------------------------


def test_no_update_arrives_before_the_latency_elapses(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.broker.submit(make_order("buy", "100"))
    venue.clock.advance_by(LATENCY_NS - 1)
    assert venue.updates == []


def test_updates_arrive_once_the_latency_elapses(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.broker.submit(make_order("buy", "100"))
    venue.clock.advance_by(LATENCY_NS)
    assert venue.events() == [NEW, FILL]
    assert [u.ts_ns for u in venue.updates] == [T0 + LATENCY_NS] * 2


def test_nothing_is_published_inside_submit_even_with_zero_latency(venues):
    venue = venues(latency_ms=0)
    venue.quote("99.99", 100, "100.00", 100)
    venue.broker.submit(make_order("buy", "100"))
    assert venue.updates == []
    venue.clock.advance_by(0)
    assert venue.events() == [NEW, FILL]


def test_nothing_is_published_inside_cancel_or_replace_even_with_zero_latency(venues):
    venue = venues(latency_ms=0)
    venue.quote("99.90", 100, "100.00", 100)
    venue.broker.submit(make_order("buy", "100", LIMIT, limit="99.00", order_id="a"))
    venue.clock.advance_by(0)
    venue.broker.replace("a", make_order("buy", "100", LIMIT, limit="98.00", order_id="b"))
    venue.broker.cancel("b")
    assert venue.events() == [NEW]
    venue.clock.advance_by(0)
    assert venue.events() == [NEW, TradeEvent.REPLACED, NEW, CANCELED]


def test_fills_caused_by_a_quote_are_published_from_a_timer_not_the_quote_handler(venue):
    venue.quote("99.90", 100, "100.00", 100)
    venue.submit(make_order("buy", "100", LIMIT, limit="99.95"))
    venue.quote("99.80", 100, "99.90", 100)
    assert venue.events() == [NEW]
    venue.clock.advance_by(0)
    assert venue.events() == [NEW, FILL]


# -- fees -------------------------------------------------------------------------------------


def test_fees_are_per_share_on_every_execution_plus_per_order_on_the_first(venues):
    venue = venues(fee_per_share=D("0.005"), fee_per_order=D("1.00"))
    venue.quote("99.99", 300, "100.00", 200)
    venue.submit(make_order("buy", "500"))
    # 200 * 0.005 + 1.00; 200 * 0.005; 100 * 0.005
    assert [u.fill.fee for u in venue.updates if u.fill] == [D("2.00"), D("1.00"), D("0.50")]
    # 100000 - (20000.00 + 20002.00 + 10002.00) - 3.50
    assert venue.account().cash == D("49992.50")


def test_fee_is_rounded_to_the_cent(venues):
    venue = venues(fee_per_share=D("0.0035"))
    venue.quote("9.99", 100, "10.00", 100)
    venue.submit(make_order("buy", "7"))
    assert venue.last().fill.fee == D("0.02")  # 7 * 0.0035 = 0.0245


# -- sessions ---------------------------------------------------------------------------------


def test_day_order_expires_at_the_close(venue):
    venue.quote("99.90", 100, "100.00", 100)
    venue.submit(make_order("buy", "100", LIMIT, limit="99.00"))
    venue.session(SessionPhase.CLOSE)
    venue.step()
    final = venue.last()
    assert (final.event, final.status) == (TradeEvent.EXPIRED, OrderStatus.EXPIRED)
    assert venue.open_orders() == []


def test_gtc_order_works_on_after_the_close(venue):
    venue.quote("99.90", 100, "100.00", 100)
    order = venue.submit(make_order("buy", "100", LIMIT, TimeInForce.GTC, limit="99.00"))
    venue.session(SessionPhase.CLOSE)
    venue.step()
    assert venue.events() == [NEW]
    assert [o.id for o in venue.open_orders()] == [order.id]


def test_opg_market_order_waits_for_the_open_then_fills(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "100", MARKET, TimeInForce.OPG))
    assert venue.events() == [NEW]
    venue.quote("100.19", 100, "100.20", 100)
    venue.session(SessionPhase.OPEN)
    venue.step()
    assert venue.fills() == [(100, D("100.20"))]


def test_cls_limit_order_fills_at_the_close_and_its_remainder_is_canceled(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "300", LIMIT, TimeInForce.CLS, limit="100.00"))
    venue.session(SessionPhase.CLOSE)
    venue.step()
    assert venue.events() == [NEW, PARTIAL, CANCELED]
    assert venue.last().reason == "CLS: the unfilled 200 shares were canceled"


# -- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (make_order("buy", "1", symbol="ZZZ"), "ZZZ is not traded at the sim venue"),
        (make_order("buy", "1", symbol="HALT"), "HALT is not tradable"),
        (make_order("buy", "0"), "the order quantity must be positive"),
        (make_order("buy", "1.5"), "XYZ is not fractionable, so the quantity must be whole shares"),
        (make_order("buy", "1", LIMIT), "a limit order needs a limit price"),
        (make_order("buy", "1", STOP), "a stop order needs a stop price"),
        (
            make_order("buy", "1", STOP_LIMIT, stop="101.00"),
            "a stop-limit order needs a limit price",
        ),
        (
            make_order("buy", "1", LIMIT, limit="100.005"),
            "the limit price 100.005 is not on the $0.01 tick grid",
        ),
        (
            make_order("sell", "1", TRAILING),
            "a trailing stop needs exactly one of trail_price and trail_percent",
        ),
        (
            make_order("sell", "1", TRAILING, trail_price="1", trail_percent="1"),
            "a trailing stop needs exactly one of trail_price and trail_percent",
        ),
        (
            make_order("buy", "1", STOP, TimeInForce.IOC, stop="101.00"),
            "IOC orders must be market or limit orders",
        ),
        (make_order("buy", "1", symbol="NOSHORT"), "no quote for NOSHORT yet"),
        (
            make_order("sell", "1", LIMIT, limit="99.00", symbol="NOSHORT"),
            "NOSHORT is not shortable",
        ),
        (
            make_order("buy", "3000"),
            "insufficient buying power: the order needs $300,000.00 and $200,000.00 is available",
        ),
    ],
    ids=[
        "unknown-symbol",
        "untradable",
        "zero-qty",
        "fractional",
        "limit-without-price",
        "stop-without-price",
        "stop-limit-without-limit",
        "off-grid",
        "trailing-without-trail",
        "trailing-with-both",
        "ioc-stop",
        "no-quote",
        "not-shortable",
        "buying-power",
    ],
)
def test_order_is_rejected_with_the_reason(venue, order, reason):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(order)
    [update] = venue.updates
    assert (update.event, update.status, update.reason) == (REJECTED, OrderStatus.REJECTED, reason)


def test_selling_a_long_position_needs_no_buying_power(venue):
    venue.quote("99.99", 5000, "100.00", 5000)
    venue.submit(make_order("buy", "1900"))
    venue.submit(make_order("sell", "1900"))
    assert venue.events() == [NEW, FILL, NEW, FILL]


def test_open_orders_reserve_buying_power(venue):
    venue.quote("99.99", 100, "100.00", 100)
    venue.submit(make_order("buy", "1000", LIMIT, limit="99.00"))  # reserves $99,000
    venue.submit(make_order("buy", "1100", LIMIT, limit="99.00"))  # needs $108,900 of $101,000
    assert venue.events() == [NEW, REJECTED]


def test_resending_a_known_order_is_ignored(venue):
    venue.quote("99.99", 500, "100.00", 500)
    order = make_order("buy", "100")
    venue.submit(order)
    venue.submit(order)
    assert venue.events() == [NEW, FILL]


# -- the paper account ------------------------------------------------------------------------


def test_account_marks_positions_at_the_quote_mid(venue):
    venue.quote("99.98", 100, "100.00", 100)
    venue.submit(make_order("buy", "100"))
    venue.quote("101.00", 100, "101.02", 100)
    account = venue.account()
    # cash 100000 - 10000; 100 shares at mid 101.01
    assert (account.cash, account.equity) == (D("90000.00"), D("100101.00"))
    # 100101 * 2 - 10101
    assert account.buying_power == D("190101.00")


def test_position_keeps_average_cost_and_realizes_pnl_on_the_part_that_closes(venue):
    venue.quote("99.99", 500, "100.00", 500)
    venue.submit(make_order("buy", "100"))
    venue.quote("101.99", 500, "102.00", 500)
    venue.submit(make_order("buy", "100"))
    venue.quote("103.00", 500, "103.02", 500)
    venue.submit(make_order("sell", "150"))
    [position] = venue.positions()
    # avg (100 + 102) / 2 = 101; sold 150 at 103: (103 - 101) * 150
    assert (position.qty, position.avg_cost, position.realized_pnl) == (50, D("101"), D("300"))


def test_fills_since_returns_executions_at_or_after_a_time(venue):
    venue.quote("99.99", 500, "100.00", 500)
    venue.submit(make_order("buy", "100"))
    since = venue.clock.now_ns() + 1  # just after the first fill
    venue.clock.advance_by(NS_PER_SECOND - LATENCY_NS)
    venue.submit(make_order("buy", "50"))
    fills = asyncio.run(venue.broker.fills_since(since))
    assert [(f.qty, f.ts_ns) for f in fills] == [(50, T0 + NS_PER_SECOND + LATENCY_NS)]


def test_get_order_returns_the_venue_record(venue):
    venue.quote("99.99", 500, "100.00", 500)
    venue.submit(make_order("buy", "100", order_id="x1"))
    record = venue.get_order("x1")
    assert (record.status, record.filled_qty, record.broker_order_id) == (
        OrderStatus.FILLED,
        100,
        venue.updates[0].broker_order_id,
    )


def test_restart_continues_the_same_account(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    first = venues(path)
    first.quote("99.99", 500, "100.00", 500)
    first.submit(make_order("buy", "100"))
    first.submit(make_order("buy", "50", LIMIT, limit="99.00", order_id="resting"))
    second = venues(path)
    assert second.account().cash == first.account().cash == D("90000.00")
    assert [(p.symbol, p.qty) for p in second.positions()] == [("XYZ", 100)]
    assert [o.id for o in second.open_orders()] == ["resting"]


def test_resting_order_from_before_a_restart_still_fills(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    first = venues(path)
    first.quote("99.99", 500, "100.00", 500)
    first.submit(make_order("buy", "50", LIMIT, limit="99.00", order_id="resting"))
    second = venues(path)
    second.quote("98.90", 500, "98.95", 500)
    second.step()
    assert second.fills() == [(50, D("98.95"))]


def test_reset_starts_a_fresh_account(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    first = venues(path)
    first.quote("99.99", 500, "100.00", 500)
    first.submit(make_order("buy", "100"))
    first.submit(make_order("buy", "50", LIMIT, limit="99.00"))
    venues(path, reset=True, starting_cash=D("5000"))
    reopened = venues(path)
    assert reopened.account().cash == D("5000")
    assert reopened.positions() == []
    assert reopened.open_orders() == []


def test_execution_ids_stay_unique_across_a_reset(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    first = venues(path)
    first.quote("99.99", 500, "100.00", 500)
    first.submit(make_order("buy", "100"))
    second = venues(path, reset=True)
    second.quote("99.99", 500, "100.00", 500)
    second.submit(make_order("buy", "100"))
    assert first.last().fill.id != second.last().fill.id


def test_corrupt_account_file_is_a_broker_error(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(BrokerError, match=r"is corrupt .*--reset-sim"):
        venues(path)


def test_account_file_with_a_damaged_row_is_a_broker_error(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    asyncio.run(venues(path).broker.stop())
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE account SET cash = 'lots'")
    with pytest.raises(BrokerError, match=r"is corrupt \(InvalidOperation.*--reset-sim"):
        venues(path)


def test_reset_replaces_a_corrupt_account_file(venues, tmp_path):
    path = tmp_path / "sim-account.sqlite"
    path.write_text("{not json", encoding="utf-8")
    venues(path, reset=True)
    assert venues(path).account().cash == D("100000")


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"latency_ms": -1.0}, "latency_ms must be"),
        ({"fee_per_share": D("-0.01")}, "fees must be 0 or more"),
        ({"fee_per_order": 0.5}, "fee_per_order must be a Decimal"),
        ({"walk_ticks": -1}, "walk_ticks must be 0 or more"),
        ({"max_walk_levels": -1}, "max_walk_levels must be 0 or more"),
        ({"starting_cash": D("0")}, "starting_cash must be positive"),
        ({"multiplier": D("0.5")}, "multiplier must be at least 1"),
    ],
)
def test_config_refuses_nonsense_with_a_sentence(setting, message):
    with pytest.raises(ValueError, match=message):
        SimVenueConfig(**setting)
