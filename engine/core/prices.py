"""Exact prices, the US equity and option tick grids, and contract multipliers.

Prices and quantities are ``Decimal`` everywhere in the engine: money is never a
binary float. Reg NMS Rule 612 sets the minimum price increment for US equities
at $0.01 for prices at or above $1.00 and $0.0001 below. Listed equity options
trade on the penny-pilot grid: $0.01 below $3.00 and $0.05 from $3.00.

An option's price is per share and one contract delivers 100 shares, so every
dollar amount (notional, cash, P&L, market value) is qty x price x the symbol's
``contract_multiplier``: 100 for an OCC option symbol, 1 for anything else.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")
NICKEL = Decimal("0.05")
OPTION_NICKEL_FROM = Decimal(3)
OPTION_MULTIPLIER = Decimal(100)
# The compact OCC shape (root, YYMMDD, C/P, strike x1000): cheap enough to ask on every fill.
# engine.options.occ parses and validates the symbol in full.
_OCC_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9.]{0,5}\d{6}[CP]\d{8}")


def is_option_symbol(symbol: str) -> bool:
    """True when ``symbol`` has the shape of a compact OCC option symbol (AAPL240119C00190000)."""
    return len(symbol) > 15 and _OCC_SHAPE.fullmatch(symbol) is not None


def contract_multiplier(symbol: str) -> Decimal:
    """Shares per unit of ``symbol``: 100 per standard equity option contract, 1 per share."""
    multiplier = _MULTIPLIERS.get(symbol)
    if multiplier is None:  # asked on every fill and mark: remember the answer per symbol
        multiplier = OPTION_MULTIPLIER if is_option_symbol(symbol) else ONE
        if len(_MULTIPLIERS) < 100_000:
            _MULTIPLIERS[symbol] = multiplier
    return multiplier


_MULTIPLIERS: dict[str, Decimal] = {}


def tick_size(price: Decimal) -> Decimal:
    """The minimum increment allowed at ``price``."""
    return CENT if price >= ONE else SUB_PENNY


def option_tick_size(price: Decimal) -> Decimal:
    """The minimum increment of an option premium at ``price`` (penny pilot)."""
    return CENT if price < OPTION_NICKEL_FROM else NICKEL


def symbol_tick_size(symbol: str, price: Decimal) -> Decimal:
    """The tick at ``price`` on ``symbol``'s grid: the option grid for an OCC symbol."""
    return option_tick_size(price) if is_option_symbol(symbol) else tick_size(price)


def on_tick_grid(price: Decimal, symbol: str = "") -> bool:
    """True when ``price`` is a whole number of ticks (of ``symbol``'s grid, when given)."""
    return price % symbol_tick_size(symbol, price) == ZERO


def round_to_tick(price: Decimal, mode: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``price`` onto the tick grid (``ROUND_FLOOR`` for bids, ``ROUND_CEILING`` for asks)."""
    rounded = price.quantize(tick_size(price), rounding=mode)
    # Rounding a sub-dollar price up can cross $1, where the grid is coarser.
    return rounded.quantize(tick_size(rounded), rounding=mode)


def passive_tick(symbol: str, price: Decimal, buying: bool) -> Decimal:
    """``price`` on ``symbol``'s tick grid, rounded away from the market: down for a buy,
    up for a sell, so a limit is never more aggressive than the price asked for."""
    tick = symbol_tick_size(symbol, price)
    steps = (price / tick).to_integral_value(ROUND_FLOOR if buying else ROUND_CEILING)
    rounded = steps * tick
    # Crossing a grid boundary ($1 for stocks, $3 for options) changes the step: settle again.
    tick = symbol_tick_size(symbol, rounded)
    return (rounded / tick).to_integral_value(ROUND_FLOOR if buying else ROUND_CEILING) * tick


def floor_to_tick(price: Decimal) -> Decimal:
    return round_to_tick(price, ROUND_FLOOR)


def ceil_to_tick(price: Decimal) -> Decimal:
    return round_to_tick(price, ROUND_CEILING)


def ticks_between(a: Decimal, b: Decimal, symbol: str = "") -> Decimal:
    """How many ticks ``b`` is above ``a`` (negative when below), on the grid of the lower
    price (of ``symbol``'s grid, when given)."""
    return (b - a) / symbol_tick_size(symbol, min(a, b))


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
