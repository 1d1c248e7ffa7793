"""The risk contract shared by the risk engine and the OMS.

``RiskEngine.check`` is pure: it evaluates every check and returns a
``RiskDecision`` listing each violation with a human reason, so the console's
preview can show all that would fail without submitting anything. The OMS
records an accepted order with ``RiskEngine.record_submitted`` (throttle and
duplicate windows) after it journals it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from engine.core.models import Instrument, Order, OrderRequest


class RiskCheck(StrEnum):
    KILL_SWITCH = "kill_switch"
    SYMBOL = "symbol"
    QUANTITY = "quantity"
    PRICE = "price"
    TICK = "tick"
    SHORTABLE = "shortable"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    COLLAR = "collar"
    MAX_POSITION = "max_position"
    GROSS_EXPOSURE = "gross_exposure"
    BUYING_POWER = "buying_power"
    MAX_OPEN_ORDERS = "max_open_orders"
    THROTTLE = "throttle"
    DUPLICATE = "duplicate"
    DAILY_LOSS = "daily_loss"
    MARKET_PRICE = "market_price"  # no quote or trade yet to price a market order
    OPTION_CONTRACTS = "option_contracts"
    PORTFOLIO_DELTA = "portfolio_delta"
    PORTFOLIO_VEGA = "portfolio_vega"


@dataclass(slots=True, frozen=True)
class RiskViolation:
    check: RiskCheck
    message: str  # one sentence, e.g. "order notional $52,000.00 exceeds the $50,000.00 limit"
    soft: bool = False  # a soft violation needs the trader's confirmation, not a rejection


@dataclass(slots=True, frozen=True)
class RiskDecision:
    request: OrderRequest
    violations: tuple[RiskViolation, ...]
    ts_ns: int
    confirmed: bool = False

    @property
    def hard(self) -> tuple[RiskViolation, ...]:
        return tuple(v for v in self.violations if not v.soft)

    @property
    def soft(self) -> tuple[RiskViolation, ...]:
        return tuple(v for v in self.violations if v.soft)

    @property
    def ok(self) -> bool:
        """Accepted: no hard violation, and every soft one confirmed."""
        return not self.hard and (self.confirmed or not self.soft)

    @property
    def needs_confirmation(self) -> bool:
        return not self.hard and bool(self.soft) and not self.confirmed

    @property
    def reason(self) -> str:
        return "; ".join(v.message for v in self.violations)


class RiskContext(Protocol):
    """What the risk engine reads about the book; the OMS implements it."""

    def position_qty(self, symbol: str) -> Decimal: ...

    def open_orders(self) -> Sequence[Order]: ...

    def buying_power(self) -> Decimal: ...

    def gross_exposure(self) -> Decimal:
        """Sum of |qty| x mark over all positions, in dollars."""

    def day_pnl(self) -> Decimal:
        """Realized + unrealized P&L since the session began, net of fees."""

    def instrument(self, symbol: str) -> Instrument | None: ...


@dataclass(slots=True, frozen=True)
class GreekExposure:
    """Dollar delta (share delta x spot) and vega ($ per vol point) of a position or contract."""

    delta_dollars: float
    vega: float

    def __add__(self, other: GreekExposure) -> GreekExposure:
        return GreekExposure(self.delta_dollars + other.delta_dollars, self.vega + other.vega)

    def scaled(self, units: float) -> GreekExposure:
        return GreekExposure(self.delta_dollars * units, self.vega * units)


class OptionGreeks(Protocol):
    """Greeks for the option checks, computed by the pricing kernels (engine.options)."""

    def contract(self, symbol: str) -> GreekExposure | None:
        """One contract held long; None when no model prices it (unknown or no spot yet)."""

    def portfolio(self) -> GreekExposure:
        """Every position held now, stock and options together."""
