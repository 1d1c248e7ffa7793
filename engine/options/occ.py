"""OCC option symbols (OSI, 2010): ``AAPL240119C00190000``.

A symbol is the root (1 to 6 characters), the expiry as ``YYMMDD``, ``C`` or
``P``, and the strike times 1000 as 8 digits. The padded 21-character form
puts the root in a 6-character field filled with spaces (``AAPL  240119C00190000``);
Alpaca uses the compact form, which is what ``format_occ`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from engine.core.errors import InputError

STRIKE_SCALE = Decimal(1000)
MAX_STRIKE = Decimal("99999.999")
_ROOT = re.compile(r"[A-Z0-9][A-Z0-9.]{0,5}")
_TAIL = re.compile(r"(\d{2})(\d{2})(\d{2})([CP])(\d{8})")
_TAIL_LENGTH = 15
_PADDED_LENGTH = 21


class Right(StrEnum):
    CALL = "C"
    PUT = "P"

    @property
    def is_call(self) -> bool:
        return self is Right.CALL


@dataclass(slots=True, frozen=True)
class OptionSymbol:
    """One listed option contract, as its OCC symbol names it."""

    root: str
    expiry: date
    right: Right
    strike: Decimal

    def __post_init__(self) -> None:
        if not _ROOT.fullmatch(self.root):
            raise InputError(f"'{self.root}' is not an option root (1 to 6 letters or digits).")
        if not 2000 <= self.expiry.year <= 2099:
            raise InputError(f"an OCC symbol cannot hold the expiry year {self.expiry.year}.")
        if self.strike <= 0 or self.strike > MAX_STRIKE:
            raise InputError(f"the strike {self.strike} is outside 0.001 to {MAX_STRIKE}.")
        if (self.strike * STRIKE_SCALE) % 1 != 0:
            raise InputError(f"the strike {self.strike} has more than three decimals.")

    @property
    def occ(self) -> str:
        return format_occ(self)

    def __str__(self) -> str:
        return format_occ(self)


def format_occ(symbol: OptionSymbol, *, padded: bool = False) -> str:
    """The compact OCC symbol (``padded=True``: the 21-character form with a 6-wide root)."""
    root = symbol.root.ljust(6) if padded else symbol.root
    strike = int(symbol.strike * STRIKE_SCALE)
    return f"{root}{symbol.expiry:%y%m%d}{symbol.right.value}{strike:08d}"


def parse_occ(text: str) -> OptionSymbol:
    """Parse a compact or padded OCC symbol; ``InputError`` in one sentence if it is not one."""
    if not isinstance(text, str):
        raise InputError(f"{text!r} is not an option symbol.")
    raw = text.strip().upper()
    root, tail = raw[:-_TAIL_LENGTH], raw[-_TAIL_LENGTH:]
    if len(raw) == _PADDED_LENGTH:
        root = root.rstrip()
    match = _TAIL.fullmatch(tail)
    if len(raw) <= _TAIL_LENGTH or match is None or not _ROOT.fullmatch(root):
        raise InputError(
            f"'{text}' is not an OCC option symbol (like AAPL240119C00190000: root, YYMMDD, C/P, "
            "strike x1000 in 8 digits)."
        )
    year, month, day, right, strike = match.groups()
    try:
        expiry = date(2000 + int(year), int(month), int(day))
    except ValueError:
        raise InputError(f"'{text}' has no valid expiry date ({year}{month}{day}).") from None
    if int(strike) == 0:
        raise InputError(f"'{text}' has a zero strike.")
    return OptionSymbol(
        root=root, expiry=expiry, right=Right(right), strike=Decimal(int(strike)) / STRIKE_SCALE
    )


def is_occ(text: str) -> bool:
    """True when ``text`` parses as an OCC option symbol (for telling options from stocks)."""
    try:
        parse_occ(text)
    except InputError:
        return False
    return True
