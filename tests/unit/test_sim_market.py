"""The synthetic sim market: a seeded, time-ordered, calibrated event stream."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from engine.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from engine.core.errors import InputError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Quote, Trade
from engine.core.prices import on_tick_grid
from engine.data.calibration import SymbolProfile, load_profiles
from engine.data.sim import MAX_EVENT_RATE, MIN_EVENT_RATE, NS_PER_MINUTE, SimMarket

THURSDAY_OPEN = datetime_to_ns(datetime(2021, 4, 22, 9, 30, tzinfo=NEW_YORK))


def profile(
    symbol: str = "TEST",
    price: str = "100.00",
    daily_vol: float = 0.02,
    avg_daily_volume: int = 1_000_000,
    spread_bps: float = 1.0,
    typical_quote_size: int = 500,
) -> SymbolProfile:
    """A hand-made profile; at $100 and 1M shares a day its event rate is the 2/s minimum."""
    return SymbolProfile(
        symbol=symbol,
        start_price=Decimal(price),
        prev_close=Decimal(price),
        daily_vol=daily_vol,
        avg_daily_volume=avg_daily_volume,
        spread_bps=spread_bps,
        typical_quote_size=typical_quote_size,
    )


def three_symbols() -> dict[str, SymbolProfile]:
    return {
        "TEST": profile(),
        "BIG": profile("BIG", price="3000.00", avg_daily_volume=3_000_000, typical_quote_size=100),
        # Straddles $1, where the tick changes from $0.0001 to $0.01.
        "PENNY": profile("PENNY", price="0.9995", daily_vol=0.05, spread_bps=20.0),
    }


def market(
    profiles: dict[str, SymbolProfile] | None = None,
    *,
    seed: int = 7,
    start_ns: int = THURSDAY_OPEN,
    session_seconds: int | None = None,
    rate_scale: float = 1.0,
) -> SimMarket:
    return SimMarket(
        three_symbols() if profiles is None else profiles,
        seed=seed,
        start_ns=start_ns,
        session_seconds=session_seconds,
        rate_scale=rate_scale,
    )


def until_session_events(stream: Iterator[object], count: int) -> list[object]:
    """Every event up to and including the ``count``-th SessionEvent."""
    events: list[object] = []
    seen = 0
    for event in stream:
        events.append(event)
        if isinstance(event, SessionEvent):
            seen += 1
            if seen == count:
                return events
    raise AssertionError("the stream ended")


def et(ts_ns: int) -> str:
    return ns_to_datetime(ts_ns, NEW_YORK).isoformat()


@pytest.fixture(scope="module")
def one_full_session() -> list[object]:
    """One regular 09:30-16:00 session of TEST (about 47,000 events at 2 events/s)."""
    return until_session_events(market({"TEST": profile()}), 2)


@pytest.fixture(scope="module")
def two_short_sessions() -> list[object]:
    return until_session_events(market(session_seconds=900), 4)


def test_the_same_seed_and_start_give_an_identical_stream() -> None:
    first = list(itertools.islice(market(seed=42), 5000))
    second = list(itertools.islice(market(seed=42), 5000))
    assert first == second


def test_a_different_seed_gives_a_different_stream() -> None:
    first = list(itertools.islice(market(seed=42), 5000))
    second = list(itertools.islice(market(seed=43), 5000))
    assert first != second


def test_a_symbol_path_does_not_depend_on_the_other_symbols() -> None:
    alone = market({"TEST": profile()})
    together = market()
    solo = [e for e in itertools.islice(alone, 3000) if getattr(e, "symbol", "TEST") == "TEST"]
    mixed = [e for e in itertools.islice(together, 9000) if getattr(e, "symbol", "TEST") == "TEST"]
    assert solo[:1000] == mixed[:1000]


def test_events_are_emitted_in_time_order_with_bars_at_their_minute_end() -> None:
    sim = market(session_seconds=900)
    emitted = []
    for event in itertools.islice(sim, 40_000):
        emitted.append(sim.emitted_ns)
        if isinstance(event, Bar):
            assert sim.emitted_ns == event.ts_ns + NS_PER_MINUTE
        else:
            assert sim.emitted_ns == event.ts_ns
    assert emitted == sorted(emitted)


def test_bars_start_on_whole_minutes_and_trades_are_time_ordered(
    two_short_sessions: list[object],
) -> None:
    ticks = [e.ts_ns for e in two_short_sessions if isinstance(e, Quote | Trade | SessionEvent)]
    assert ticks == sorted(ticks)
    bars = [e for e in two_short_sessions if isinstance(e, Bar)]
    assert bars and all(bar.ts_ns % NS_PER_MINUTE == 0 and bar.timeframe == "1Min" for bar in bars)


def test_every_price_is_on_the_tick_grid(two_short_sessions: list[object]) -> None:
    prices: list[Decimal] = []
    for event in two_short_sessions:
        if isinstance(event, Quote):
            prices += [event.bid, event.ask]
        elif isinstance(event, Trade):
            prices.append(event.price)
        elif isinstance(event, Bar):
            prices += [event.open, event.high, event.low, event.close]
    penny = [e for e in two_short_sessions if isinstance(e, Quote) and e.symbol == "PENNY"]
    assert any(q.bid < 1 for q in penny) and any(q.ask > 1 for q in penny)
    assert all(on_tick_grid(price) for price in prices)


def test_the_bid_is_always_positive_and_below_the_ask(two_short_sessions: list[object]) -> None:
    quotes = [e for e in two_short_sessions if isinstance(e, Quote)]
    assert len(quotes) > 5000
    assert all(Decimal(0) < q.bid < q.ask for q in quotes)


def test_quote_sizes_are_round_lots_up_to_about_twice_the_typical_size(
    two_short_sessions: list[object],
) -> None:
    sizes = [
        size
        for e in two_short_sessions
        if isinstance(e, Quote) and e.symbol == "TEST"
        for size in (e.bid_size, e.ask_size)
    ]
    assert all(size % 100 == 0 and 100 <= size <= 900 for size in sizes)
    assert statistics.mean(sizes) == pytest.approx(500, rel=0.05)


def test_trades_print_at_or_inside_the_prevailing_quote(two_short_sessions: list[object]) -> None:
    quotes: dict[str, Quote] = {}
    inside = 0
    for event in two_short_sessions:
        if isinstance(event, Quote):
            quotes[event.symbol] = event
        elif isinstance(event, Trade):
            quote = quotes[event.symbol]
            assert quote.bid <= event.price <= quote.ask
            assert event.size >= 1
            inside += quote.bid < event.price < quote.ask
    assert inside > 0


def test_bars_aggregate_exactly_the_trades_of_their_minute(
    two_short_sessions: list[object],
) -> None:
    trades: dict[tuple[str, int], list[Trade]] = defaultdict(list)
    bars: dict[tuple[str, int], Bar] = {}
    for event in two_short_sessions:
        if isinstance(event, Trade):
            trades[event.symbol, event.ts_ns - event.ts_ns % NS_PER_MINUTE].append(event)
        elif isinstance(event, Bar):
            bars[event.symbol, event.ts_ns] = event
    assert bars.keys() == trades.keys()
    for key, bar in bars.items():
        prices = [trade.price for trade in trades[key]]
        assert (bar.open, bar.high, bar.low, bar.close) == (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
        )
        assert bar.volume == sum(trade.size for trade in trades[key])


def test_every_session_opens_with_a_quote_per_symbol_around_its_price() -> None:
    profiles = three_symbols()
    opening = list(itertools.islice(market(profiles), 1 + len(profiles)))
    assert isinstance(opening[0], SessionEvent) and opening[0].phase is SessionPhase.OPEN
    for quote in opening[1:]:
        assert isinstance(quote, Quote) and quote.ts_ns == THURSDAY_OPEN
        assert quote.bid <= profiles[quote.symbol].start_price <= quote.ask


def test_activity_is_u_shaped_over_the_day(one_full_session: list[object]) -> None:
    def trades_between(start: str, end: str) -> int:
        low = datetime_to_ns(datetime.fromisoformat(f"2021-04-22T{start}").replace(tzinfo=NEW_YORK))
        high = datetime_to_ns(datetime.fromisoformat(f"2021-04-22T{end}").replace(tzinfo=NEW_YORK))
        return sum(1 for e in one_full_session if isinstance(e, Trade) and low <= e.ts_ns < high)

    midday = trades_between("12:30", "13:00")
    assert trades_between("09:30", "10:00") > 2 * midday
    assert trades_between("15:30", "16:00") > 2 * midday


def test_a_session_trades_about_the_average_daily_volume(one_full_session: list[object]) -> None:
    volume = sum(e.size for e in one_full_session if isinstance(e, Trade))
    assert volume == pytest.approx(1_000_000, rel=0.05)


def test_a_session_runs_at_the_calibrated_event_rate(one_full_session: list[object]) -> None:
    ticks = sum(1 for e in one_full_session if isinstance(e, Quote | Trade))
    assert ticks == pytest.approx(MIN_EVENT_RATE * 23_400, rel=0.05)


def test_close_to_close_volatility_matches_daily_vol() -> None:
    # 250 two-minute sessions; each still carries a full day's variance. The standard
    # error of a volatility estimated from 250 returns is about 1/sqrt(500), 4.5%.
    sim = market({"TEST": profile(daily_vol=0.02)}, session_seconds=120)
    closes = [100.0]
    last_mid = 100.0
    for event in until_session_events(sim, 500):
        if isinstance(event, Quote):
            last_mid = float(event.mid)
        elif isinstance(event, SessionEvent) and event.phase is SessionPhase.CLOSE:
            closes.append(last_mid)
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    assert len(returns) == 250
    assert statistics.stdev(returns) == pytest.approx(0.02, rel=0.12)


def test_sessions_open_and_close_at_new_york_times_across_a_weekend_and_dst() -> None:
    # Friday 2021-03-12 is still EST; clocks went forward on Sunday the 14th.
    friday = datetime_to_ns(datetime(2021, 3, 12, 9, 30, tzinfo=NEW_YORK))
    events = until_session_events(market({"TEST": profile()}, start_ns=friday, rate_scale=0.01), 4)
    sessions = [
        (e.phase, et(e.ts_ns), e.session_date) for e in events if isinstance(e, SessionEvent)
    ]
    assert sessions == [
        (SessionPhase.OPEN, "2021-03-12T09:30:00-05:00", "2021-03-12"),
        (SessionPhase.CLOSE, "2021-03-12T16:00:00-05:00", "2021-03-12"),
        (SessionPhase.OPEN, "2021-03-15T09:30:00-04:00", "2021-03-15"),
        (SessionPhase.CLOSE, "2021-03-15T16:00:00-04:00", "2021-03-15"),
    ]


def test_quotes_and_trades_happen_only_inside_sessions() -> None:
    friday = datetime_to_ns(datetime(2021, 3, 12, 9, 30, tzinfo=NEW_YORK))
    events = until_session_events(market({"TEST": profile()}, start_ns=friday, rate_scale=0.01), 4)
    open_ns = None
    for event in events:
        if isinstance(event, SessionEvent):
            open_ns = event.ts_ns if event.phase is SessionPhase.OPEN else None
        elif isinstance(event, Quote | Trade):
            assert open_ns is not None and event.ts_ns >= open_ns


def test_a_weekend_start_waits_for_monday_open() -> None:
    saturday = datetime_to_ns(datetime(2021, 4, 24, 10, 0, tzinfo=NEW_YORK))
    first = next(market(start_ns=saturday))
    assert isinstance(first, SessionEvent)
    assert et(first.ts_ns) == "2021-04-26T09:30:00-04:00"


def test_a_start_inside_a_session_opens_there() -> None:
    noon = datetime_to_ns(datetime(2021, 4, 22, 12, 0, 15, tzinfo=NEW_YORK))
    first, quote = itertools.islice(market(start_ns=noon), 2)
    assert isinstance(first, SessionEvent) and first.ts_ns == noon
    assert isinstance(quote, Quote) and quote.ts_ns == noon


def test_a_start_after_the_close_waits_for_the_next_weekday() -> None:
    evening = datetime_to_ns(datetime(2021, 4, 23, 16, 0, tzinfo=NEW_YORK))
    first = next(market(start_ns=evening))
    assert isinstance(first, SessionEvent)
    assert et(first.ts_ns) == "2021-04-26T09:30:00-04:00"


def test_references_are_the_start_price_then_each_session_last_trade() -> None:
    sim = market({"TEST": profile()}, session_seconds=300)
    assert sim.references() == {"TEST": Decimal("100.00")}
    events = until_session_events(sim, 2)
    last_trade = [e for e in events if isinstance(e, Trade)][-1]
    assert sim.references() == {"TEST": last_trade.price}


def test_instruments_are_tradable_shortable_and_fractionable() -> None:
    instruments = market().instruments()
    assert list(instruments) == ["TEST", "BIG", "PENNY"]
    for instrument in instruments.values():
        assert instrument.tradable and instrument.shortable
        assert instrument.easy_to_borrow and instrument.fractionable


def test_the_bundled_watchlist_runs_between_2_and_20_events_per_second_per_symbol() -> None:
    sim = SimMarket(load_profiles(), seed=1, start_ns=THURSDAY_OPEN)
    rates = sim.event_rates()
    assert len(rates) == 20
    assert all(MIN_EVENT_RATE <= rate <= MAX_EVENT_RATE for rate in rates.values())


def test_rate_scale_multiplies_every_event_rate() -> None:
    assert market(rate_scale=3.0).event_rates() == {
        symbol: 3 * rate for symbol, rate in market().event_rates().items()
    }


@pytest.mark.parametrize(
    ("rate_scale", "session_seconds"),
    [(0.0, None), (math.inf, None), (1.0, 0), (1.0, 30_000)],
)
def test_invalid_settings_raise_input_error(rate_scale: float, session_seconds: int | None) -> None:
    with pytest.raises(InputError):
        market(rate_scale=rate_scale, session_seconds=session_seconds)


def test_an_empty_watchlist_raises_input_error() -> None:
    with pytest.raises(InputError, match="at least one symbol"):
        market({})
