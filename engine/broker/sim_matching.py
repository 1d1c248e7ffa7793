"""The sim venue's displayed liquidity and stop triggers (rules: ``engine.broker.sim``).

A quote shows one price and size per side. ``DisplayedBook`` turns it into a
ladder: the touch with its displayed size, then synthetic levels each
``walk_ticks`` ticks worse with the touch's size again. Shares the venue hands
out at a quote are remembered until the next quote replaces it, so two orders
matched against the same quote do not both get the touch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from engine.core.models import Quote, Side
from engine.core.prices import (
    CENT,
    ZERO,
    ceil_to_tick,
    floor_to_tick,
    is_option_symbol,
    option_tick_size,
    tick_size,
)

HUNDRED = Decimal(100)


@dataclass(slots=True, frozen=True)
class Slice:
    """Shares taken at one price level of the displayed book."""

    price: Decimal
    qty: Decimal


class DisplayedBook:
    """The liquidity one quote offers the venue, consumed as the venue matches against it."""

    __slots__ = ("_bought", "_sold", "quote", "walk_ticks")

    def __init__(self, quote: Quote, walk_ticks: int) -> None:
        self.quote = quote
        self.walk_ticks = walk_ticks
        self._bought = ZERO  # taken from the ask side
        self._sold = ZERO  # taken from the bid side

    def available(self, side: Side, limit: Decimal | None, max_level: int) -> Decimal:
        """Shares ``side`` could take now, no worse than ``limit``, within ``max_level`` levels."""
        return sum((room for _, room in self._levels(side, limit, max_level)), ZERO)

    def take(self, side: Side, qty: Decimal, limit: Decimal | None, max_level: int) -> list[Slice]:
        """Take up to ``qty`` shares, best level first; one slice per level touched."""
        slices: list[Slice] = []
        remaining = qty
        for price, room in self._levels(side, limit, max_level):
            if remaining <= ZERO:
                break
            taken = min(room, remaining)
            slices.append(Slice(price, taken))
            remaining -= taken
        filled = qty - remaining
        if side is Side.BUY:
            self._bought += filled
        else:
            self._sold += filled
        return slices

    def _levels(
        self, side: Side, limit: Decimal | None, max_level: int
    ) -> Iterator[tuple[Decimal, Decimal]]:
        """(price, shares still there) for each level from the touch outwards."""
        quote = self.quote
        if side is Side.BUY:
            price, size, taken = quote.ask, quote.ask_size, self._bought
        else:
            price, size, taken = quote.bid, quote.bid_size, self._sold
        if price <= ZERO or size <= 0:
            return
        depth = Decimal(size)  # order quantities are Decimal; market-data sizes are int
        for level in range(max_level + 1):
            if limit is not None and (price > limit if side is Side.BUY else price < limit):
                return
            # Level k holds the shares between depth k*size and (k+1)*size.
            room = min(depth, (level + 1) * depth - taken)
            if room > ZERO:
                yield price, room
            price = _worse(side, price, self.walk_ticks, is_option_symbol(quote.symbol))
            if price <= ZERO:
                return


def _worse(side: Side, price: Decimal, ticks: int, option: bool = False) -> Decimal:
    """The price ``ticks`` ticks worse for the taker, back on the grid where it crosses $1.

    An option walks its own grid ($0.01 under $3, $0.05 from $3); from a price on that grid
    a whole step lands on it again.
    """
    if option:
        for _ in range(ticks):  # one tick at a time: the step changes at $3
            if side is Side.BUY:
                price += option_tick_size(price)
            else:
                price -= option_tick_size(price - CENT)
        return price if price > ZERO else ZERO
    step = ticks * tick_size(price)
    if side is Side.BUY:
        return ceil_to_tick(price + step)
    lower = price - step
    return floor_to_tick(lower) if lower > ZERO else ZERO


def stop_triggered(side: Side, stop: Decimal, quote: Quote) -> bool:
    """A buy stop triggers when the ask reaches it; a sell stop when the bid falls to it."""
    if side is Side.BUY:
        return quote.ask >= stop  # stops are positive, so an empty ask (0) never triggers
    return ZERO < quote.bid <= stop


def trailing_reference(side: Side, quote: Quote) -> Decimal | None:
    """The quote side a trailing stop follows: the bid for a sell, the ask for a buy."""
    price = quote.bid if side is Side.SELL else quote.ask
    return price if price > ZERO else None


def next_watermark(side: Side, watermark: Decimal | None, quote: Quote) -> Decimal | None:
    """The high-water mark of the bid (sell) or low-water mark of the ask (buy) after ``quote``."""
    reference = trailing_reference(side, quote)
    if reference is None:
        return watermark
    if watermark is None:
        return reference
    return max(watermark, reference) if side is Side.SELL else min(watermark, reference)


def trailing_stop_price(
    side: Side, watermark: Decimal, trail_price: Decimal | None, trail_percent: Decimal | None
) -> Decimal:
    """Where a trailing stop stands: the water mark less (sell) or plus (buy) the trail."""
    if trail_price is not None:
        return watermark - trail_price if side is Side.SELL else watermark + trail_price
    fraction = (trail_percent or ZERO) / HUNDRED
    return watermark * (1 - fraction) if side is Side.SELL else watermark * (1 + fraction)
