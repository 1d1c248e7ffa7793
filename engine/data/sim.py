"""The synthetic sim market: tickdeck's default feed, no credentials needed.

``SimMarket`` is an endless, seeded iterator of ``Quote``, ``Trade``, ``Bar``
and ``SessionEvent`` for a set of calibrated symbols (see
``engine.data.calibration``). The same profiles, seed and start give the same
stream, event for event.

The model, per symbol:

- **Activity.** Events arrive as a Poisson process whose rate follows a U-shaped
  intraday profile (``activity_profile``: about twice the day's mean in the first
  and last minutes, half of it at midday). The mean rate is ``event_rate``: 2 to
  20 events/s depending on dollar volume (the 20 bundled large caps give about 160
  events/s together at ``rate_scale=1``); ``rate_scale`` multiplies it.
- **Price.** ``TRADE_SHARE`` of events are trades, the rest are quote updates.
  Each quote update moves the mid by a multiplicative step of zero mean whose
  variance is ``daily_vol**2`` divided by the expected number of quote updates
  in a session, so close-to-close returns have the calibrated daily volatility
  (and intraday volatility is U-shaped like activity). Steps are uniform; summed
  over thousands a day they are Gaussian. There is no overnight gap: a session
  opens where the previous one closed.
- **Quotes.** The spread is ``spread_bps`` of the mid rounded to whole ticks
  (at least one), one tick wider ``WIDER_SPREAD_SHARE`` of the time; the bid is
  the tick nearest to ``mid - spread/2``, so bid <= mid <= ask and the quote is
  never locked or crossed. Sizes are round lots, uniform between 1 lot and about
  twice ``typical_quote_size``.
- **Trades.** Buys print at the ask, sells at the bid, and
  ``INSIDE_TRADE_SHARE`` of trades print strictly inside a spread of two ticks
  or more. Sizes are exponential with a mean set so that a session's volume is
  about ``avg_daily_volume`` (at least one share a trade).
- **Bars.** One-minute bars (timeframe "1Min") aggregate the market's own trades,
  are emitted when their minute ends and carry the minute's start as ``ts_ns``,
  as Alpaca's bar stream does. Minutes without trades have no bar.
- **Sessions.** 09:30 to 16:00 America/New_York on weekdays (no holiday
  calendar); ``session_seconds`` shortens each session from 09:30. After a CLOSE
  the stream jumps to the next weekday's OPEN.

Every event is emitted in time order of when it becomes known: ``ts_ns`` for
quotes, trades and session events, the end of its minute for a bar. Hence a bar's
``ts_ns`` is up to a minute earlier than the trades emitted just before it;
``emitted_ns`` gives the availability time of the latest event for drivers that
pace the stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from heapq import heapify, heapreplace
from random import Random

from loguru import logger

from engine.core.clock import NEW_YORK, NS_PER_SECOND, datetime_to_ns, ns_to_datetime
from engine.core.errors import InputError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Instrument, Quote, Trade
from engine.data.calibration import SymbolProfile

MarketEvent = Quote | Trade | Bar | SessionEvent

SESSION_OPEN = time(9, 30)
REGULAR_SESSION_SECONDS = 23_400  # 09:30 to 16:00
NS_PER_MINUTE = 60 * NS_PER_SECOND

MIN_EVENT_RATE = 2.0  # events/s at average activity, before rate_scale
MAX_EVENT_RATE = 20.0
EVENT_RATE_AT_1B = 4.0  # events/s at $1bn traded a day; grows as the square root of dollar volume
TRADE_SHARE = 0.3
INSIDE_TRADE_SHARE = 0.1
WIDER_SPREAD_SHARE = 0.2
U_SHAPE_DEPTH = 3.0  # activity at the open and close is (1 + depth) times the midday level
ROUND_LOT = 100

_PIPS_PER_DOLLAR = 10_000  # prices are held as integer 1/10,000ths of a dollar
_CENT = 100
_SQRT_12 = math.sqrt(12.0)  # a uniform step of width w has standard deviation w / sqrt(12)
_DECIMAL_CACHE_LIMIT = 100_000


def event_rate(profile: SymbolProfile) -> float:
    """Mean events per second for ``profile`` at ``rate_scale=1``: busier for more dollar volume."""
    dollar_volume = float(profile.start_price) * profile.avg_daily_volume
    rate = EVENT_RATE_AT_1B * math.sqrt(dollar_volume / 1e9)
    return min(max(rate, MIN_EVENT_RATE), MAX_EVENT_RATE)


def activity_profile(minutes: int) -> tuple[float, ...]:
    """Relative activity for each minute of a session of ``minutes`` minutes, averaging 1.

    A parabola in the time of day: ``1 + U_SHAPE_DEPTH * (2x - 1)**2`` at the
    middle ``x`` of each minute (x from 0 at the open to 1 at the close), scaled to
    a mean of 1.
    """
    raw = [1.0 + U_SHAPE_DEPTH * (2.0 * (m + 0.5) / minutes - 1.0) ** 2 for m in range(minutes)]
    mean = sum(raw) / minutes
    return tuple(level / mean for level in raw)


def _pips_to_decimal(pips: int) -> Decimal:
    if pips >= _PIPS_PER_DOLLAR and pips % _CENT == 0:
        return Decimal(pips // _CENT).scaleb(-2)
    return Decimal(pips).scaleb(-4)


class _Book:
    """One symbol's mutable state: its RNG, mid, current quote and the open minute bar."""

    __slots__ = (
        "ask",
        "ask_decimal",
        "bar_close",
        "bar_high",
        "bar_low",
        "bar_open",
        "bar_volume",
        "bid",
        "bid_decimal",
        "gap_ns",
        "last",
        "lot_span",
        "mid",
        "random",
        "spread_fraction",
        "step",
        "symbol",
        "tick",
        "ticks",
        "trade_size",
    )

    def __init__(self, profile: SymbolProfile, rng: Random, rate: float, session_s: int) -> None:
        self.symbol = profile.symbol
        self.random = rng.random
        self.mid = float(profile.start_price)
        self.gap_ns = NS_PER_SECOND / rate
        quotes_per_session = rate * session_s * (1.0 - TRADE_SHARE)
        self.step = profile.daily_vol / math.sqrt(quotes_per_session) * _SQRT_12
        trades_per_session = rate * session_s * TRADE_SHARE
        self.trade_size = max(profile.avg_daily_volume / trades_per_session, 1.0)
        self.spread_fraction = profile.spread_bps / 10_000
        lots = max(profile.typical_quote_size // ROUND_LOT, 1)
        self.lot_span = 2 * lots - 1
        self.bid = self.ask = self.tick = self.ticks = 0
        self.bid_decimal = self.ask_decimal = Decimal(0)
        self.last = 0
        self.bar_open = self.bar_high = self.bar_low = self.bar_close = self.bar_volume = 0


class SimMarket:
    """A seeded, endless stream of synthetic market events for calibrated symbols.

    ``start_ns`` is where the simulation starts, normally 09:30 America/New_York
    of some weekday; a start inside a session opens there, any other start waits
    for the next weekday's 09:30. ``session_seconds`` (default 23,400: 09:30 to
    16:00) shortens every session, for demos and tests; a session still carries
    a full day's volatility and volume. ``rate_scale`` multiplies every symbol's
    event rate. The stream is infinite; take what you need.
    """

    def __init__(
        self,
        profiles: Mapping[str, SymbolProfile],
        *,
        seed: int,
        start_ns: int,
        session_seconds: int | None = None,
        rate_scale: float = 1.0,
    ) -> None:
        if not profiles:
            raise InputError("the sim market needs at least one symbol")
        if not (math.isfinite(rate_scale) and rate_scale > 0):
            raise InputError(f"the sim rate scale must be a positive number, not {rate_scale}")
        session_s = REGULAR_SESSION_SECONDS if session_seconds is None else session_seconds
        if not 0 < session_s <= REGULAR_SESSION_SECONDS:
            raise InputError(
                f"a sim session lasts 1 to {REGULAR_SESSION_SECONDS} seconds, not {session_s}"
            )
        self.seed = seed
        self.start_ns = start_ns
        self.session_seconds = session_s
        self.rate_scale = rate_scale
        calibrated = list(profiles.values())
        self.symbols: list[str] = [p.symbol for p in calibrated]
        self._rates = {p.symbol: event_rate(p) * rate_scale for p in calibrated}
        # One RNG per symbol, seeded by name, so a symbol's path does not depend on the others.
        self._books = [
            _Book(p, Random(f"{seed}:{p.symbol}"), self._rates[p.symbol], session_s)
            for p in calibrated
        ]
        minutes = -(-session_s // 60)
        self._inverse_activity = tuple(1.0 / level for level in activity_profile(minutes))
        self._references = {p.symbol: p.start_price for p in calibrated}
        self._decimals: dict[int, Decimal] = {}
        self._emitted_ns = start_ns
        self._stream = self._run()
        logger.info(
            "sim market: {} symbols, about {:.0f} events/s, seed {}",
            len(self.symbols),
            sum(self._rates.values()),
            seed,
        )

    def __iter__(self) -> Iterator[MarketEvent]:
        # The underlying generator itself: a for loop then skips a Python-level __next__ per event.
        return self._stream

    def __next__(self) -> MarketEvent:
        return next(self._stream)

    @property
    def emitted_ns(self) -> int:
        """When the latest event became known: its ``ts_ns``, or for a bar the end of its minute."""
        return self._emitted_ns

    def event_rates(self) -> dict[str, float]:
        """Mean events per second per symbol, ``rate_scale`` included."""
        return dict(self._rates)

    def instruments(self) -> dict[str, Instrument]:
        """Every sim symbol is tradable, shortable, easy to borrow and fractionable."""
        return {
            symbol: Instrument(
                symbol=symbol,
                tradable=True,
                shortable=True,
                easy_to_borrow=True,
                fractionable=True,
            )
            for symbol in self.symbols
        }

    def references(self) -> dict[str, Decimal]:
        """The previous session's close per symbol, which change % is measured from.

        Before the first session it is each profile's ``start_price`` (the sim
        opens at yesterday's close); after a CLOSE event it is that session's last
        trade, so read it at each OPEN.
        """
        return dict(self._references)

    def _sessions(self) -> Iterator[tuple[int, int, int, date]]:
        """(open_ns, close_ns, nominal 09:30 ns, trading day) for every session from the start."""
        length_ns = self.session_seconds * NS_PER_SECOND
        day = ns_to_datetime(self.start_ns, NEW_YORK).date()
        while True:
            if day.weekday() < 5:
                nominal_open = datetime_to_ns(datetime.combine(day, SESSION_OPEN, tzinfo=NEW_YORK))
                close_ns = nominal_open + length_ns
                if close_ns > self.start_ns:
                    yield max(nominal_open, self.start_ns), close_ns, nominal_open, day
            day += timedelta(days=1)

    def _run(self) -> Iterator[MarketEvent]:
        for open_ns, close_ns, nominal_open, day in self._sessions():
            session_date = day.isoformat()
            self._emitted_ns = open_ns
            yield SessionEvent(ts_ns=open_ns, phase=SessionPhase.OPEN, session_date=session_date)
            yield from self._session(open_ns, close_ns, nominal_open)
            for book in self._books:
                # The close is the last print; a symbol that never traded closes at its mid.
                last = book.last or self._on_grid_mid(book)
                self._references[book.symbol] = self._decimal(last)
            self._emitted_ns = close_ns
            yield SessionEvent(ts_ns=close_ns, phase=SessionPhase.CLOSE, session_date=session_date)

    @staticmethod
    def _on_grid_mid(book: _Book) -> int:
        mid_pips = book.mid * _PIPS_PER_DOLLAR
        tick = _CENT if mid_pips >= _PIPS_PER_DOLLAR else 1
        return max(int(mid_pips / tick + 0.5) * tick, 1)

    def _decimal(self, pips: int) -> Decimal:
        value = self._decimals.get(pips)
        if value is None:
            if len(self._decimals) >= _DECIMAL_CACHE_LIMIT:
                self._decimals.clear()
            value = self._decimals[pips] = _pips_to_decimal(pips)
        return value

    def _requote(self, book: _Book, ts_ns: int, move: bool) -> Quote:
        """Move the mid one step (unless ``move`` is false) and quote around it."""
        random = book.random
        mid = book.mid
        if move:
            mid *= 1.0 + book.step * (random() - 0.5)
            book.mid = mid
        mid_pips = mid * _PIPS_PER_DOLLAR
        tick = _CENT if mid_pips >= _PIPS_PER_DOLLAR else 1
        ticks = int(mid_pips * book.spread_fraction / tick + 0.5) or 1
        if random() < WIDER_SPREAD_SHARE:
            ticks += 1
        bid = int((mid_pips - ticks * tick * 0.5) / tick + 0.5) * tick
        if bid < tick:
            bid = tick
        ask = bid + ticks * tick
        if ask >= _PIPS_PER_DOLLAR and ask % _CENT:
            # A sub-dollar quote whose ask reaches $1 must use the cent grid there.
            ask += _CENT - ask % _CENT
        book.bid, book.ask, book.tick, book.ticks = bid, ask, tick, ticks
        decimals = self._decimals
        bid_decimal = decimals.get(bid) or self._decimal(bid)
        ask_decimal = decimals.get(ask) or self._decimal(ask)
        book.bid_decimal, book.ask_decimal = bid_decimal, ask_decimal
        lot_span = book.lot_span
        return Quote(
            book.symbol,
            ts_ns,
            bid_decimal,
            ROUND_LOT * (1 + int(random() * lot_span)),
            ask_decimal,
            ROUND_LOT * (1 + int(random() * lot_span)),
        )

    def _session(self, open_ns: int, close_ns: int, nominal_open: int) -> Iterator[MarketEvent]:
        books = self._books
        log = math.log
        inverse_activity = self._inverse_activity
        requote = self._requote
        decimals = self._decimals
        buy_cut = (1.0 + INSIDE_TRADE_SHARE) / 2

        bar_start = open_ns - open_ns % NS_PER_MINUTE
        minute_end = min(bar_start + NS_PER_MINUTE, close_ns)
        gap_scale = inverse_activity[(bar_start - nominal_open) // NS_PER_MINUTE]

        heap: list[tuple[int, int]] = []
        for index, book in enumerate(books):
            book.last = 0
            book.bar_volume = 0
            yield requote(book, open_ns, False)
            gap = int(book.gap_ns * gap_scale * -log(1.0 - book.random()))
            heap.append((open_ns + gap, index))
        heapify(heap)

        traded: list[int] = []
        while True:
            ts_ns, index = heap[0]
            if ts_ns >= minute_end:
                self._emitted_ns = minute_end
                for bar_index in sorted(traded):
                    book = books[bar_index]
                    yield Bar(
                        book.symbol,
                        bar_start,
                        self._decimal(book.bar_open),
                        self._decimal(book.bar_high),
                        self._decimal(book.bar_low),
                        self._decimal(book.bar_close),
                        book.bar_volume,
                    )
                    book.bar_volume = 0
                traded.clear()
                if minute_end >= close_ns:
                    return
                bar_start = minute_end
                minute_end = min(bar_start + NS_PER_MINUTE, close_ns)
                gap_scale = inverse_activity[(bar_start - nominal_open) // NS_PER_MINUTE]
                continue

            book = books[index]
            random = book.random
            event: MarketEvent
            if random() < TRADE_SHARE:
                pick = random()
                if pick < INSIDE_TRADE_SHARE and book.ticks > 1:
                    price = book.bid + book.tick * (1 + int(random() * (book.ticks - 1)))
                    if price >= _PIPS_PER_DOLLAR and price % _CENT:
                        price = book.bid
                    price_decimal = decimals.get(price) or self._decimal(price)
                elif pick < buy_cut:
                    price, price_decimal = book.ask, book.ask_decimal
                else:
                    price, price_decimal = book.bid, book.bid_decimal
                size = int(-log(1.0 - random()) * book.trade_size + 0.5) or 1
                if book.bar_volume:
                    if price > book.bar_high:
                        book.bar_high = price
                    elif price < book.bar_low:
                        book.bar_low = price
                else:
                    book.bar_open = book.bar_high = book.bar_low = price
                    traded.append(index)
                book.bar_close = price
                book.bar_volume += size
                book.last = price
                event = Trade(book.symbol, ts_ns, price_decimal, size)
            else:
                event = requote(book, ts_ns, True)
            heapreplace(heap, (ts_ns + int(book.gap_ns * gap_scale * -log(1.0 - random())), index))
            self._emitted_ns = ts_ns
            yield event
