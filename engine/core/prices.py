"""Exact prices and the US equity tick grid.

Prices and quantities are ``Decimal`` everywhere in the engine: money is never a
binary float. Reg NMS Rule 612 sets the minimum price increment for US equities
at $0.01 for prices at or above $1.00 and $0.0001 below.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


def tick_size(price: Decimal) -> Decimal:
    """The minimum increment allowed at ``price``."""
    return CENT if price >= ONE else SUB_PENNY


def on_tick_grid(price: Decimal) -> bool:
    """True when ``price`` is a whole number of ticks."""
    return price % tick_size(price) == ZERO


def round_to_tick(price: Decimal, mode: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``price`` onto the tick grid (``ROUND_FLOOR`` for bids, ``ROUND_CEILING`` for asks)."""
    rounded = price.quantize(tick_size(price), rounding=mode)
    # Rounding a sub-dollar price up can cross $1, where the grid is coarser.
    return rounded.quantize(tick_size(rounded), rounding=mode)


def floor_to_tick(price: Decimal) -> Decimal:
    return round_to_tick(price, ROUND_FLOOR)


def ceil_to_tick(price: Decimal) -> Decimal:
    return round_to_tick(price, ROUND_CEILING)


def ticks_between(a: Decimal, b: Decimal) -> Decimal:
    """How many ticks ``b`` is above ``a`` (negative when below), measured on ``a``'s grid."""
    return (b - a) / tick_size(min(a, b))


def to_decimal(value: object) -> Decimal:
    """Parse a user or wire value into a Decimal; ``ValueError`` with a clear message if it is not a number."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        # repr() is the shortest string that round-trips: 187.5 -> "187.5", not 187.5000000000000002...
        result = Decimal(repr(value))
    else:
        try:
            result = Decimal(str(value).strip().replace(",", "").lstrip("$"))
        except InvalidOperation:
            raise ValueError(f"'{value}' is not a number") from None
    if not result.is_finite():
        raise ValueError(f"'{value}' is not a finite number")
    return result


def cents(amount: Decimal) -> Decimal:
    """Money rounded to the cent, for display and account ledgers."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
