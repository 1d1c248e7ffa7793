"""The NBBO, built from each venue's best bid and ask.

For feeds that report each venue's own top of book: the national best bid is
the highest bid across venues, its size the sum of the sizes of every venue
bidding that price, and the best offer likewise the lowest ask. (Lean's tick
quote files are not such a feed: they already are the NBBO, one bid row and one
ask row per update; ``engine.data.replay`` reads them as that.)

Locked (bid == ask) and crossed (bid > ask) NBBOs are published as they are and
counted, never suppressed: they happen in real data (a venue's stale quote, a
fast market, venues updating one after the other) and hiding them would hide
the market's real state. A consumer that needs a tradable market checks
``quote.bid < quote.ask``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine.core.models import Quote
from engine.core.prices import ZERO


class BookSide(StrEnum):
    BID = "bid"
    ASK = "ask"


@dataclass(slots=True)
class VenueQuote:
    """One venue's new best price and size on one side; price 0 or size 0 means it has none.

    Not frozen: a tick file makes one per row, and a frozen dataclass costs about
    six times as much to construct. Treat it as read-only all the same.
    """

    symbol: str
    ts_ns: int
    venue: str
    side: BookSide
    price: Decimal
    size: int


class _Side:
    """The venues quoting one side of one symbol, with the best level kept up to date.

    Prices are stored as keys where larger is better: the bid itself, the ask negated.
    """

    __slots__ = ("best", "best_size", "levels")

    def __init__(self) -> None:
        self.levels: dict[str, tuple[Decimal, int]] = {}
        self.best: Decimal | None = None
        self.best_size = 0

    def set(self, venue: str, key: Decimal | None, size: int) -> None:
        """Make ``venue`` quote ``key`` x ``size`` (``key`` None: it quotes nothing)."""
        old = self.levels.pop(venue, None)
        if key is not None:
            self.levels[venue] = (key, size)
        best = self.best
        old_at_best = old is not None and old[0] == best
        if key is not None and (best is None or key > best):
            # Everyone else is at or below the old best, so this venue alone is the new best.
            self.best, self.best_size = key, size
        elif key is not None and key == best:
            self.best_size += size - (old[1] if old_at_best else 0)
        elif old_at_best:
            self._rescan()

    def _rescan(self) -> None:
        if not self.levels:
            self.best, self.best_size = None, 0
            return
        best = max(key for key, _ in self.levels.values())
        self.best = best
        self.best_size = sum(size for key, size in self.levels.values() if key == best)


class _SymbolBook:
    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = _Side()
        self.asks = _Side()

    def quote(self, symbol: str, ts_ns: int) -> Quote:
        bid, ask = self.bids.best, self.asks.best
        return Quote(
            symbol,
            ts_ns,
            ZERO if bid is None else bid,
            self.bids.best_size,
            ZERO if ask is None else -ask,
            self.asks.best_size,
        )


class NbboBuilder:
    """Per-symbol venue books in, NBBO quotes out (only when the NBBO changed).

    Counters: ``updates`` (venue updates applied), ``changes`` (NBBO quotes
    returned), ``locked`` and ``crossed`` (how many of those quotes were).
    A side that no venue quotes is 0 x 0 in the Quote, as ``Quote.is_two_sided`` expects.
    """

    def __init__(self) -> None:
        self._books: dict[str, _SymbolBook] = {}
        self.updates = 0
        self.changes = 0
        self.locked = 0
        self.crossed = 0

    def update(
        self, symbol: str, ts_ns: int, venue: str, side: BookSide, price: Decimal, size: int
    ) -> Quote | None:
        """Apply one venue's new best ``price`` x ``size`` on ``side``.

        Price 0 or size 0 clears that venue's side. Returns the NBBO, stamped
        ``ts_ns``, if its price or size changed on either side; else None.
        """
        self.updates += 1
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = _SymbolBook()
        quoted = price > ZERO and size > 0
        if side is BookSide.BID:
            book_side = book.bids
            key = price if quoted else None
        else:
            book_side = book.asks
            key = -price if quoted else None
        before, before_size = book_side.best, book_side.best_size
        book_side.set(venue, key, size)
        if book_side.best == before and book_side.best_size == before_size:
            return None
        self.changes += 1
        bid, ask = book.bids.best, book.asks.best
        if bid is not None and ask is not None:
            if bid == -ask:
                self.locked += 1
            elif bid > -ask:
                self.crossed += 1
        return book.quote(symbol, ts_ns)

    def apply(self, update: VenueQuote) -> Quote | None:
        """``update`` for one ``VenueQuote`` record."""
        return self.update(
            update.symbol, update.ts_ns, update.venue, update.side, update.price, update.size
        )

    def nbbo(self, symbol: str, ts_ns: int) -> Quote | None:
        """The current NBBO of ``symbol`` stamped ``ts_ns``; None before any venue quoted it."""
        book = self._books.get(symbol)
        return None if book is None else book.quote(symbol, ts_ns)
