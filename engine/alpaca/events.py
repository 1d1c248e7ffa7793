"""Market-data records that Alpaca's stream carries and the core model has no place for.

``TradingStatus`` (wire ``T:"s"``) is published on ``Topic.STATUS``; ``Luld``
(wire ``T:"l"``) on ``Topic.LULD``. Codes keep Alpaca's (and the SIPs') letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# CTA "2" and UTP "H" are trading halts; UTP "P" is a volatility (LULD) pause.
HALT_CODES = frozenset({"2", "H", "P"})


@dataclass(slots=True, frozen=True)
class TradingStatus:
    """A security's trading status from its listing market's SIP.

    ``status_code`` is CTA's ("2" halt, "3" resume, "E" short sale restriction,
    "F" LULD ...) or UTP's ("H" halt, "Q" quotation resumption, "T" trading
    resumption, "P" volatility pause); ``reason_code`` is e.g. "T12" or "LUDP".
    """

    symbol: str
    ts_ns: int
    status_code: str
    status_message: str
    reason_code: str
    reason_message: str
    tape: str

    @property
    def is_halted(self) -> bool:
        """True when the status stops trading (a halt or a volatility pause)."""
        return self.status_code in HALT_CODES


@dataclass(slots=True, frozen=True)
class Luld:
    """Limit up/limit down price bands: trades outside them are not allowed."""

    symbol: str
    ts_ns: int
    limit_up: Decimal
    limit_down: Decimal
    indicator: str
    tape: str
