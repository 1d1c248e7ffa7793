"""Replay of recorded Lean data as one time-ordered stream of engine events.

``ReplaySource`` merges every symbol's files lazily (``heapq.merge``, one trading
day at a time, so only that day's files are open) into one stream of ``Quote``,
``Trade``, ``Bar`` and ``SessionEvent`` (OPEN at 09:30, CLOSE at 16:00 New York).

Causality. Events come in non-decreasing *release* time: the instant the event
became knowable. That is ``ts_ns`` for quotes, trades and session events. A
minute ``Bar`` keeps ``ts_ns`` = its start (the model's contract) but is
released at its end, ``ts_ns + 60 s``, because its OHLCV are known only then;
the quote taken from the same minute's quote bar is stamped ``end - 1 ns`` and
so comes just before it. A driver should advance its ``SimClock`` to the release
time, which ``timed()`` yields beside each event (or ``release_ns(event)``).
At one instant, OPEN comes first and CLOSE last; data between them in a fixed
order (day, then symbol, then quotes before trades/bars).

Minute mode: per symbol and minute, the quote then the bar, from
``<day>_quote.zip`` and ``<day>_trade.zip`` (either may be absent; minutes
without trades have no bar, as in Lean).

Tick mode: trades, and NBBO quotes from the tick quote file. That file is the
consolidated NBBO, not venue books (see ``_ConsolidatedBook``): each update is
a bid row and an ask row with the same time, so rows sharing a millisecond are
coalesced and the NBBO as of the end of that millisecond is published, only
when it changed; the half-applied state between the two rows is not a market
anyone saw. Locked and crossed NBBOs are published as they are.

``session_only`` keeps events released from 09:30 to 16:00 inclusive (390 bars
a full day). In tick mode the pre-market quotes are still read, and the NBBO in
force at the open is published at 09:30:00.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from loguru import logger

from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import InputError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Instrument, Quote, Trade
from engine.core.prices import SUB_PENNY, ZERO
from engine.data.lean import (
    MINUTE_NS,
    DataKind,
    ReadReport,
    Resolution,
    available_days,
    daily_path,
    equity_dir,
    factor_path,
    file_date,
    lean_path,
    parse_resolution,
    read_daily_bars,
    read_factor_file,
    read_minute_quotes,
    read_minute_trades,
    read_tick_quotes,
    read_tick_trades,
    session_bounds_ns,
    split_factor_on,
)
from engine.data.nbbo import BookSide

ReplayEvent = Quote | Trade | Bar | SessionEvent

_OPEN_RANK, _DATA_RANK, _CLOSE_RANK = 0, 1, 2
_ALL_DAY = (-(1 << 63), 1 << 63)

# (release_ns, rank, stream index, event): the index breaks ties, so events are never compared.
_Item = tuple[int, int, int, ReplayEvent]


def release_ns(event: ReplayEvent) -> int:
    """When a replayed ``event`` became knowable: its ``ts_ns``, or the end of its minute bar."""
    return event.ts_ns + MINUTE_NS if isinstance(event, Bar) else event.ts_ns


@dataclass(slots=True)
class ReplayReport(ReadReport):
    """The readers' counts plus what the replay derived and what it could not find.

    In tick mode ``quote_updates`` one-sided quote updates were applied and
    ``nbbo_quotes`` NBBO quotes came out (one per millisecond at most).
    ``missing`` holds a sentence per requested (symbol, day) without data.
    """

    quote_updates: int = 0
    nbbo_quotes: int = 0
    missing: list[str] = field(default_factory=list)


class ReplaySource:
    """An iterator of recorded events across symbols and days, merged lazily in time order.

    One pass only: it is its own iterator. ``report`` fills in as it is consumed.
    """

    def __init__(
        self,
        root: Path,
        symbols: Sequence[str] | None = None,
        dates: Sequence[date] | None = None,
        resolution: str = "minute",
        session_only: bool = True,
    ) -> None:
        self.root = Path(root)
        self.resolution = parse_resolution(resolution)
        self.session_only = session_only
        self.report = ReplayReport()
        if not equity_dir(self.root).is_dir():
            raise InputError(f"{self.root} is not a Lean data folder: it has no equity/usa inside.")
        self._days = self._select(symbols, dates)
        self.symbols: list[str] = sorted({s for names in self._days.values() for s in names})
        self.dates: list[date] = sorted(self._days)
        self._stream: Iterator[_Item] | None = None
        self._head: _Item | None = None
        self._start_ns = 0
        self._references: dict[date | None, dict[str, Decimal]] = {}

    def _select(
        self, symbols: Sequence[str] | None, dates: Sequence[date] | None
    ) -> dict[date, list[str]]:
        found = available_days(self.root, self.resolution)
        if not found:
            raise InputError(f"there is no {self.resolution} equity data under {self.root}.")
        known = {symbol for symbol, _ in found}
        wanted = sorted({s.upper() for s in symbols}) if symbols else sorted(known)
        for symbol in wanted:
            if symbol not in known:
                raise InputError(
                    f"there is no {self.resolution} data for {symbol} under {self.root}."
                )
        wanted_set = set(wanted)
        chosen = [(s, d) for s, d in found if s in wanted_set and (dates is None or d in dates)]
        for symbol in wanted:
            if not any(s == symbol for s, _ in chosen):
                raise InputError(
                    f"there is no {self.resolution} data for {symbol} on the requested dates."
                )
        if dates is not None:
            have = set(chosen)
            for day in sorted(set(dates)):
                for symbol in wanted:
                    if (symbol, day) not in have:
                        sentence = f"there is no {self.resolution} data for {symbol} on {day}."
                        self.report.missing.append(sentence)
                        logger.warning(sentence)
        days: dict[date, list[str]] = {}
        for symbol, day in chosen:
            days.setdefault(day, []).append(symbol)
        return days

    # -- the stream -------------------------------------------------------------------------

    def __iter__(self) -> ReplaySource:
        return self

    def __next__(self) -> ReplayEvent:
        stream = self._stream
        if stream is None:
            stream = self._start()
        head = self._head
        if head is not None:
            self._head = None
            return head[3]
        return next(stream)[3]

    def timed(self) -> Iterator[tuple[int, ReplayEvent]]:
        """The rest of the stream as (release_ns, event) pairs: advance the clock to the first."""
        stream = self._start()
        head = self._head
        if head is not None:
            self._head = None
            stream = itertools.chain((head,), stream)
        for item in stream:
            yield item[0], item[3]

    @property
    def start_ns(self) -> int:
        """Release time of the first event (the first OPEN when ``session_only``)."""
        self._start()
        return self._start_ns

    def _start(self) -> Iterator[_Item]:
        """The merged stream, begun: its first item waits in ``_head`` (for ``start_ns``)."""
        if self._stream is None:
            self._stream = self._merged()
            self._head = next(self._stream, None)
            if self._head is not None:
                self._start_ns = self._head[0]
        return self._stream

    def _merged(self) -> Iterator[_Item]:
        for day in self.dates:
            yield from heapq.merge(*self._day_streams(day))

    def _day_streams(self, day: date) -> list[Iterator[_Item]]:
        open_ns, close_ns = session_bounds_ns(day)
        window = (open_ns, close_ns) if self.session_only else _ALL_DAY
        streams: list[Iterator[_Item]] = [_session_stream(day, open_ns, close_ns)]
        for symbol in self._days[day]:
            quotes = lean_path(self.root, self.resolution, symbol, day, DataKind.QUOTE)
            trades = lean_path(self.root, self.resolution, symbol, day, DataKind.TRADE)
            index = len(streams)
            if self.resolution is Resolution.MINUTE:
                if quotes.is_file():
                    streams.append(
                        self._stamped_stream(read_minute_quotes, quotes, symbol, index, window)
                    )
                if trades.is_file():
                    streams.append(self._bar_stream(trades, symbol, index + 1, window))
            else:
                if quotes.is_file():
                    streams.append(self._nbbo_stream(quotes, symbol, index, window))
                if trades.is_file():
                    streams.append(
                        self._stamped_stream(read_tick_trades, trades, symbol, index + 1, window)
                    )
        return streams

    def _stamped_stream(
        self,
        read: Callable[[Path, str, ReadReport], Iterator[Quote | Trade]],
        path: Path,
        symbol: str,
        index: int,
        window: tuple[int, int],
    ) -> Iterator[_Item]:
        """The events ``read`` gets from ``path``, released at their own time, within ``window``."""
        low, high = window
        with closing(read(path, symbol, self.report)) as events:
            for event in events:
                ts_ns = event.ts_ns
                if ts_ns > high:
                    return
                if ts_ns >= low:
                    yield ts_ns, _DATA_RANK, index, event

    def _bar_stream(
        self, path: Path, symbol: str, index: int, window: tuple[int, int]
    ) -> Iterator[_Item]:
        low, high = window
        with closing(read_minute_trades(path, symbol, self.report)) as bars:
            for bar in bars:
                # A bar belongs to the window its minute starts in: 09:30..15:59 is 390 bars.
                start = bar.ts_ns
                if start >= high:
                    return
                if start >= low:
                    yield start + MINUTE_NS, _DATA_RANK, index, bar

    def _nbbo_stream(
        self, path: Path, symbol: str, index: int, window: tuple[int, int]
    ) -> Iterator[_Item]:
        low, high = window
        book = _ConsolidatedBook(symbol)
        changed_ns: int | None = None  # time of the latest change not yet published
        last: Quote | None = None  # the last NBBO published
        opened = False
        rows = published = 0
        try:
            with closing(read_tick_quotes(path, symbol, self.report)) as updates:
                for update in updates:
                    ts_ns = update.ts_ns
                    if changed_ns is not None and ts_ns != changed_ns:
                        quote = book.quote(changed_ns)
                        changed_ns = None
                        if last is None or _changed(quote, last):
                            last = quote
                            published += 1
                            yield quote.ts_ns, _DATA_RANK, index, quote
                    if ts_ns > high:
                        return
                    if not opened and ts_ns >= low:
                        opened = True
                        if book.seen:
                            last = book.quote(low)
                            published += 1
                            yield low, _DATA_RANK, index, last
                    rows += 1
                    if book.apply(update.side, update.price, update.size) and opened:
                        changed_ns = ts_ns
                if changed_ns is not None:
                    quote = book.quote(changed_ns)
                    if last is None or _changed(quote, last):
                        published += 1
                        yield quote.ts_ns, _DATA_RANK, index, quote
        finally:
            self.report.quote_updates += rows
            self.report.nbbo_quotes += published

    # -- what a console needs before the first event ----------------------------------------

    def instruments(self) -> dict[str, Instrument]:
        """A replayed symbol is tradable and shortable, in whole shares only."""
        return {
            symbol: Instrument(symbol, tradable=True, shortable=True, fractionable=False)
            for symbol in self.symbols
        }

    def references(self, day: date | None = None) -> dict[str, Decimal]:
        """The price each symbol's change % is measured from on ``day`` (default: its first day).

        The previous trading day's close (the daily file's, else the last
        regular-session minute close of an earlier minute file), adjusted for any
        split in between by Lean's factor file; without one, the day's first
        regular-session bar open (or first trade). Symbols with neither are left out.
        """
        cached = self._references.get(day)
        if cached is not None:
            return dict(cached)
        result: dict[str, Decimal] = {}
        for symbol in self.symbols:
            first = day or min(d for d, names in self._days.items() if symbol in names)
            price = self._previous_close(symbol, first)
            if price is None:
                price = self._first_price(symbol, first)
            if price is not None:
                result[symbol] = price
        self._references[day] = result
        return dict(result)

    def _previous_close(self, symbol: str, day: date) -> Decimal | None:
        scratch = ReadReport()  # reference look-ups must not count as replayed rows
        best: tuple[date, Decimal] | None = None
        earlier = [d for s, d in available_days(self.root, Resolution.MINUTE) if s == symbol]
        earlier = [d for d in earlier if d < day]
        if earlier:
            previous = max(earlier)
            path = lean_path(self.root, Resolution.MINUTE, symbol, previous, DataKind.TRADE)
            if path.is_file():
                _, close_ns = session_bounds_ns(previous)
                closes = [
                    bar.close
                    for bar in read_minute_trades(path, symbol, scratch)
                    if bar.ts_ns + MINUTE_NS <= close_ns
                ]
                if closes:
                    best = (previous, closes[-1])
        daily = daily_path(self.root, symbol)
        if daily.is_file():
            with closing(read_daily_bars(daily, symbol, scratch)) as bars:
                for bar in bars:
                    bar_day = ns_to_datetime(bar.ts_ns, NEW_YORK).date()
                    if bar_day >= day:
                        break
                    if best is None or bar_day >= best[0]:
                        best = (bar_day, bar.close)
        if best is None:
            return None
        previous, close = best
        factors_file = factor_path(self.root, symbol)
        if not factors_file.is_file():
            return close
        factors = read_factor_file(factors_file, scratch)
        ratio = split_factor_on(factors, previous) / split_factor_on(factors, day)
        return close if ratio == 1 else (close * ratio).quantize(SUB_PENNY)

    def _first_price(self, symbol: str, day: date) -> Decimal | None:
        scratch = ReadReport()
        open_ns, close_ns = session_bounds_ns(day)
        bars = lean_path(self.root, Resolution.MINUTE, symbol, day, DataKind.TRADE)
        if bars.is_file():
            with closing(read_minute_trades(bars, symbol, scratch)) as reader:
                for bar in reader:
                    if open_ns <= bar.ts_ns < close_ns:
                        return bar.open
        ticks = lean_path(self.root, Resolution.TICK, symbol, day, DataKind.TRADE)
        if ticks.is_file():
            with closing(read_tick_trades(ticks, symbol, scratch)) as reader:
                for trade in reader:
                    if open_ns <= trade.ts_ns <= close_ns:
                        return trade.price
        return None


class _ConsolidatedBook:
    """The NBBO of a consolidated quote stream: each update replaces its side outright.

    Lean's tick quote files are the SIP's NBBO, not venue books: after the first
    row every update is a bid row and an ask row with the same time, and three
    times in four they name different exchanges, so a pair is the national best
    bid and offer (each from the exchange named), not one venue's quote.
    """

    __slots__ = ("ask", "ask_size", "bid", "bid_size", "seen", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bid, self.bid_size, self.ask, self.ask_size = ZERO, 0, ZERO, 0
        self.seen = False

    def apply(self, side: BookSide, price: Decimal, size: int) -> bool:
        """Set one side (price 0 or size 0 empties it); True if the NBBO changed."""
        self.seen = True
        if not (price and size):
            price, size = ZERO, 0
        if side is BookSide.BID:
            if price == self.bid and size == self.bid_size:
                return False
            self.bid, self.bid_size = price, size
        else:
            if price == self.ask and size == self.ask_size:
                return False
            self.ask, self.ask_size = price, size
        return True

    def quote(self, ts_ns: int) -> Quote:
        return Quote(self.symbol, ts_ns, self.bid, self.bid_size, self.ask, self.ask_size)


def _changed(quote: Quote, before: Quote) -> bool:
    return (
        quote.bid != before.bid
        or quote.ask != before.ask
        or quote.bid_size != before.bid_size
        or quote.ask_size != before.ask_size
    )


def _session_stream(day: date, open_ns: int, close_ns: int) -> Iterator[_Item]:
    session_date = day.isoformat()
    yield open_ns, _OPEN_RANK, 0, SessionEvent(open_ns, SessionPhase.OPEN, session_date)
    yield close_ns, _CLOSE_RANK, 0, SessionEvent(close_ns, SessionPhase.CLOSE, session_date)


def open_replay(
    path: Path,
    symbols: Sequence[str] | None = None,
    resolution: str | None = None,
    session_only: bool = True,
) -> ReplaySource:
    """A ReplaySource for what ``--data PATH`` names.

    ``path`` is a Lean data root (the folder holding ``equity/usa``, or its parent
    holding ``Data``), replayed at ``resolution`` (default minute) for ``symbols``
    (default all); or one Lean day zip,
    ``<root>/equity/usa/<minute|tick>/<symbol>/<YYYYMMDD>_<trade|quote>.zip``,
    which replays that symbol's whole day at that resolution (its trades and
    quotes both, where both files exist).
    """
    path = Path(path)
    if path.is_dir():
        for root in (path, path / "Data"):
            if equity_dir(root).is_dir():
                return ReplaySource(root, symbols, None, resolution or "minute", session_only)
        raise InputError(f"{path} is not a Lean data folder: it has no equity/usa inside.")
    if not path.is_file():
        raise InputError(f"--data {path} does not exist.")
    if path.suffix != ".zip":
        raise InputError(f"{path} is neither a Lean data folder nor a Lean .zip file.")
    symbol_dir = path.parent
    resolution_dir = symbol_dir.parent
    usa_dir = resolution_dir.parent
    layout_ok = (
        usa_dir.name == "usa"
        and usa_dir.parent.name == "equity"
        and resolution_dir.name in set(Resolution)
        and path.stem[9:] in set(DataKind)
    )
    if not layout_ok:
        raise InputError(
            f"{path} is not a Lean day file: expected "
            ".../equity/usa/<minute|tick>/<symbol>/<YYYYMMDD>_<trade|quote>.zip."
        )
    day = file_date(path)
    file_resolution = Resolution(resolution_dir.name)
    if resolution is not None and parse_resolution(resolution) is not file_resolution:
        raise InputError(f"{path} holds {file_resolution} data, not {resolution} data.")
    symbol = symbol_dir.name.upper()
    if symbols and symbol not in {s.upper() for s in symbols}:
        raise InputError(f"{path} holds {symbol}, which is not among the symbols asked for.")
    return ReplaySource(usa_dir.parent.parent, [symbol], [day], file_resolution, session_only)
