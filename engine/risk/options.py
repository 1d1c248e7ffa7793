"""Pre-trade checks for option orders: contracts per order, and portfolio delta and vega.

The greeks come from an ``OptionGreeks`` source the engine wires in (the pricing kernels over
the repriced chains). The portfolio after an order is the positions held now, plus every
working option order as if it filled, plus this order; a limit is breached when that is beyond
it and further from zero than without this order, so an order that brings the portfolio back
toward its limits always passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from engine.core.errors import InputError
from engine.core.models import Order, OrderRequest
from engine.core.prices import is_option_symbol
from engine.risk.types import GreekExposure, OptionGreeks, RiskCheck, RiskViolation

_NONE = GreekExposure(0.0, 0.0)


def check_option_order(
    out: list[RiskViolation],
    request: OrderRequest,
    orders: Sequence[Order],
    greeks: OptionGreeks | None,
    *,
    max_contracts: int | None,
    max_delta: Decimal | None,
    max_vega: Decimal | None,
) -> None:
    """Append the option violations of ``request`` (an order on an OCC symbol) to ``out``."""
    qty = request.qty
    if max_contracts is not None and qty > max_contracts:
        out.append(
            RiskViolation(
                RiskCheck.OPTION_CONTRACTS,
                f"{qty:f} contracts is above the max of {max_contracts} option contracts per order",
            )
        )
    if max_delta is None and max_vega is None:
        return
    if greeks is None:
        out.append(
            RiskViolation(
                RiskCheck.PORTFOLIO_DELTA,
                "option greeks are not available in this mode, so the portfolio delta and "
                "vega limits cannot be checked",
            )
        )
        return
    contract = greeks.contract(request.symbol)
    if contract is None:
        out.append(
            RiskViolation(
                RiskCheck.PORTFOLIO_DELTA,
                f"{request.symbol} has no model price yet, so its delta and vega are unknown",
            )
        )
        return
    try:
        held = greeks.portfolio()
    except InputError as error:
        out.append(
            RiskViolation(
                RiskCheck.PORTFOLIO_DELTA,
                f"the portfolio's greeks cannot be computed: {str(error).rstrip('.')}",
            )
        )
        return
    before = held + _working(orders, greeks)
    after = before + contract.scaled(float(qty) * request.side.sign)
    if max_delta is not None:
        _limit(
            out,
            RiskCheck.PORTFOLIO_DELTA,
            "delta",
            before.delta_dollars,
            after.delta_dollars,
            max_delta,
        )
    if max_vega is not None:
        _limit(out, RiskCheck.PORTFOLIO_VEGA, "vega", before.vega, after.vega, max_vega, "/vol pt")


def _working(orders: Sequence[Order], greeks: OptionGreeks) -> GreekExposure:
    total = _NONE
    for order in orders:
        if is_option_symbol(order.symbol) and order.leaves_qty:
            contract = greeks.contract(order.symbol)
            if contract is not None:
                total = total + contract.scaled(float(order.leaves_qty) * order.side.sign)
    return total


def _limit(
    out: list[RiskViolation],
    check: RiskCheck,
    name: str,
    before: float,
    after: float,
    limit: Decimal,
    unit: str = "",
) -> None:
    if abs(after) > float(limit) and abs(after) > abs(before):
        out.append(
            RiskViolation(
                check,
                f"portfolio {name} after the order would be {_dollars(after)}{unit}, beyond "
                f"the max portfolio {name} of {_dollars(float(limit))}{unit}",
            )
        )


def _dollars(amount: float) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.0f}"
