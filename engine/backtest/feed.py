"""Bars as a market a backtest can trade in: quotes, a last trade and the bar, in time order.

The sim venue fills against quotes, and the bots act on bars. Each bar becomes, per symbol:

    at the bar's start        a quote around the open
    during the bar            quotes at its low and its high (the low first on an up bar, the
                              high first on a down bar), so resting limits fill when the
                              bar's range reaches them
    just before its end       a trade at the close and a quote around the close
    at the next bar's open    the bar itself, right after that open quote (the last bar: at its
                              own end)

A bot therefore learns a bar only once it is over, and a market order it sends then fills at
the next bar's open (plus half the spread and any walk), as backtrader's default does; a limit
rests and fills if a later bar trades through it. The book is marked at the close (the last
trade). The spread is ``spread_bps`` of the price (each side rounded outwards to the tick
grid; ``0`` quotes bid = ask = the price, for comparisons with bar-only backtesters); each side shows
``depth_fraction`` of the bar's volume, so bigger orders walk the venue's levels or fill partly.

Intraday bars outside the regular session are left out. Daily bars are placed in the regular session (09:30 to 16:00 New York): the open at 09:30,
the range at 11:00 and 13:30, the close at 15:59:58. Every trading day gets session OPEN and
CLOSE events, so DAY orders expire and the day's P&L restarts as in the live engine.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engine.core.clock import NEW_YORK, NS_PER_SECOND, datetime_to_ns, ns_to_datetime
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Instrument, Quote, Trade
from engine.core.prices import ZERO, round_to_tick

OPEN = time(9, 30)
CLOSE = time(16, 0)
NS_PER_US = 1_000
TIMEFRAME_NS = {
    "1Min": 60 * NS_PER_SECOND,
    "5Min": 300 * NS_PER_SECOND,
    "15Min": 900 * NS_PER_SECOND,
    "1Hour": 3_600 * NS_PER_SECOND,
}
MarketEvent = Quote | Trade | Bar | SessionEvent

# Within one timestamp: session opens first, then quotes and trades, then bars, then closes.
_OPEN_RANK, _DATA_RANK, _BAR_RANK, _CLOSE_RANK = 0, 1, 2, 3


class BarFeed:
    """An iterator of market events made from ``bars`` (per symbol, in time order)."""

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]],
        *,
        spread_bps: Decimal = Decimal(2),
        depth_fraction: Decimal = Decimal("0.05"),
    ) -> None:
        # Regular session only, as the replay feed: pre- and post-market bars are thin.
        kept = {symbol: [b for b in series if _in_session(b)] for symbol, series in bars.items()}
        self.bars = {symbol: series for symbol, series in kept.items() if series}
        self.symbols = sorted(self.bars)
        self._spread = spread_bps / Decimal(10_000)
        self._depth = depth_fraction
        self._events = self._merged()
        self.bar_count = sum(len(series) for series in self.bars.values())

    @property
    def start_ns(self) -> int:
        """The first session's open."""
        first = min((series[0] for series in self.bars.values()), key=lambda bar: bar.ts_ns)
        return _session(first)[0]

    def instruments(self) -> dict[str, Instrument]:
        return {s: Instrument(s, tradable=True, shortable=True) for s in self.symbols}

    def references(self) -> dict[str, Decimal]:
        """Each symbol's first open: what change % is measured from."""
        return {symbol: series[0].open for symbol, series in self.bars.items()}

    def __iter__(self) -> Iterator[MarketEvent]:
        return self

    def __next__(self) -> MarketEvent:
        return next(self._events)[-1]

    def _merged(self) -> Iterator[tuple[int, int, int, int, MarketEvent]]:
        streams = [self._symbol_events(i, s) for i, s in enumerate(self.symbols)]
        return heapq.merge(self._sessions(), *streams)

    def _sessions(self) -> Iterator[tuple[int, int, int, int, MarketEvent]]:
        days = sorted({_session(bar) for series in self.bars.values() for bar in series})
        for n, (open_ns, close_ns, day) in enumerate(days):
            yield open_ns, _OPEN_RANK, -1, n, SessionEvent(open_ns, SessionPhase.OPEN, day)
            yield close_ns, _CLOSE_RANK, -1, n, SessionEvent(close_ns, SessionPhase.CLOSE, day)

    def _symbol_events(
        self, index: int, symbol: str
    ) -> Iterator[tuple[int, int, int, int, MarketEvent]]:
        n = 0
        pending: Bar | None = None  # the bar just over, delivered after the next open quote
        for bar in self.bars[symbol]:
            start, end = _span(bar)
            size = max(1, int(bar.volume * self._depth))
            for ts_ns, rank, event in self._bar_path(symbol, bar, start, end, size):
                n += 1
                yield ts_ns, rank, index, n, event
                if pending is not None:  # the open quote is out: now the previous bar
                    n += 1
                    yield ts_ns, _BAR_RANK, index, n, pending
                    pending = None
            pending = bar
        if pending is not None:
            _, end = _span(pending)
            yield end, _BAR_RANK, index, n + 1, pending

    def _bar_path(
        self, symbol: str, bar: Bar, start: int, end: int, size: int
    ) -> Iterator[tuple[int, int, MarketEvent]]:
        daily = bar.timeframe == "1Day"
        first_at = start + (90 * 60 * NS_PER_SECOND if daily else (end - start) // 4)
        second_at = start + (240 * 60 * NS_PER_SECOND if daily else (end - start) // 2)
        close_at = end - (2 * NS_PER_SECOND if daily else 2 * NS_PER_US)
        first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
        yield start, _DATA_RANK, self._quote(symbol, start, bar.open, size)
        yield first_at, _DATA_RANK, self._quote(symbol, first_at, first, size)
        yield second_at, _DATA_RANK, self._quote(symbol, second_at, second, size)
        yield close_at, _DATA_RANK, Trade(symbol, close_at, bar.close, size)
        yield close_at, _DATA_RANK, self._quote(symbol, close_at, bar.close, size)

    def _quote(self, symbol: str, ts_ns: int, price: Decimal, size: int) -> Quote:
        half = price * self._spread / 2  # rounded outwards: at least a tick, unless zero
        if not half:
            return Quote(symbol, ts_ns, price, size, price, size)
        bid = round_to_tick(price - half, ROUND_FLOOR)
        ask = round_to_tick(price + half, ROUND_CEILING)
        return Quote(symbol, ts_ns, bid if bid > ZERO else ZERO, size, ask, size)


def _session(bar: Bar) -> tuple[int, int, str]:
    """(open ns, close ns, ISO date) of the New York session ``bar`` trades in."""
    return _session_at(bar.ts_ns)


@functools.lru_cache(maxsize=65_536)  # every symbol's bar at one time shares the answer
def _session_at(ts_ns: int) -> tuple[int, int, str]:
    return _session_of(ns_to_datetime(ts_ns, NEW_YORK).date())


@functools.lru_cache(maxsize=4096)
def _session_of(day: date) -> tuple[int, int, str]:
    open_ns = datetime_to_ns(datetime.combine(day, OPEN, tzinfo=NEW_YORK))
    close_ns = datetime_to_ns(datetime.combine(day, CLOSE, tzinfo=NEW_YORK))
    return open_ns, close_ns, day.isoformat()


def _span(bar: Bar) -> tuple[int, int]:
    """When ``bar`` trades: a daily bar spans the regular session; others their timeframe."""
    if bar.timeframe == "1Day":
        open_ns, close_ns, _ = _session(bar)
        return open_ns, close_ns
    return bar.ts_ns, bar.ts_ns + TIMEFRAME_NS.get(bar.timeframe, TIMEFRAME_NS["1Min"])


def bar_end(bar: Bar) -> int:
    """When ``bar`` is over: its session's close for a daily bar."""
    return _span(bar)[1]


def _in_session(bar: Bar) -> bool:
    if bar.timeframe == "1Day":
        return True
    open_ns, close_ns, _ = _session(bar)
    return open_ns <= bar.ts_ns < close_ns
