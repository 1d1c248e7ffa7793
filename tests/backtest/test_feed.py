"""How bars become a market: the order and prices of the events a backtest replays."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

from engine.backtest.feed import BarFeed
from engine.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from engine.core.events import SessionEvent
from engine.core.models import Bar, Quote, Trade


def day_bar(day: int, o: str, h: str, low: str, c: str) -> Bar:
    midnight = datetime_to_ns(datetime(2020, 3, day, tzinfo=NEW_YORK))
    return Bar("AAPL", midnight, D(o), D(h), D(low), D(c), 1_000_000, "1Day")


def describe(event) -> str:
    at = ns_to_datetime(event.ts_ns, NEW_YORK).strftime("%d %H:%M:%S")
    match event:
        case SessionEvent(phase=phase):
            return f"{at} {phase.value}"
        case Quote(bid=bid, ask=ask):
            return f"{at} quote {bid}/{ask}"
        case Trade(price=price):
            return f"{at} trade {price}"
        case Bar(close=close, ts_ns=ts_ns):  # stamped with its start; delivered where it stands
            return f"bar of the {ns_to_datetime(ts_ns, NEW_YORK):%d} closing {close}"
    raise AssertionError(event)


def test_a_daily_bar_is_quoted_through_its_range_and_delivered_at_the_next_open():
    up = day_bar(2, "100", "104", "99", "103")
    down = day_bar(3, "103", "105", "98", "99")
    events = [describe(e) for e in BarFeed({"AAPL": [up, down]}, spread_bps=D(0))]
    assert events == [
        "02 09:30:00 open",
        "02 09:30:00 quote 100/100",
        "02 11:00:00 quote 99/99",  # an up bar visits its low first
        "02 13:30:00 quote 104/104",
        "02 15:59:58 trade 103",
        "02 15:59:58 quote 103/103",
        "02 16:00:00 close",
        "03 09:30:00 open",
        "03 09:30:00 quote 103/103",
        "bar of the 02 closing 103",  # after the open quote its orders will trade against
        "03 11:00:00 quote 105/105",  # a down bar visits its high first
        "03 13:30:00 quote 98/98",
        "03 15:59:58 trade 99",
        "03 15:59:58 quote 99/99",
        "bar of the 03 closing 99",  # the last bar: at its own end, before the close
        "03 16:00:00 close",
    ]


def test_the_spread_is_rounded_outwards_to_the_tick_grid():
    (quote,) = [e for e in BarFeed({"AAPL": [day_bar(2, "100", "100", "100", "100")]})][1:2]
    assert (quote.bid, quote.ask) == (D("99.99"), D("100.01"))  # 2 bps of $100 is 2 cents wide
