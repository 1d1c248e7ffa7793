"""Execution quality of a parent order: what working it cost against benchmarks.

All figures are signed so that a positive number is a cost to the trader (a buy
that paid more than the benchmark, a sell that received less):

* arrival slippage: average fill price against the mid when the algo started, in bps;
* slippage vs interval VWAP: against the market's VWAP over the algo's life, in bps;
* implementation shortfall (Perold): the filled part's cost against arrival, plus the
  unfilled part's move since arrival (its opportunity cost), plus fees, in dollars and
  in bps of the order's value at arrival;
* participation: the parent's filled quantity as a % of the market volume since it started;
* schedule deviation: filled minus what the schedule wanted by now, as a % of the order
  (negative is behind). Iceberg has no schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.core.prices import ZERO
from engine.execution.parent import Parent
from engine.execution.spec import IcebergSpec

_BPS = Decimal(10_000)
_CENTS = Decimal("0.01")


@dataclass(slots=True, frozen=True)
class ExecutionQuality:
    arrival_price: Decimal | None
    avg_price: Decimal | None
    interval_vwap: Decimal | None
    arrival_slippage_bps: Decimal | None
    vwap_slippage_bps: Decimal | None
    shortfall: Decimal | None
    shortfall_bps: Decimal | None
    participation_pct: Decimal | None
    schedule_deviation_pct: Decimal | None


def _bps(sign: int, price: Decimal | None, benchmark: Decimal | None) -> Decimal | None:
    if price is None or benchmark is None or benchmark == ZERO:
        return None
    return (sign * (price - benchmark) * _BPS / benchmark).quantize(_CENTS)


def measure(parent: Parent) -> ExecutionQuality:
    """``parent``'s execution quality now (final once the parent is terminal)."""
    sign = parent.side.sign
    avg, arrival, vwap = parent.avg_price, parent.arrival_price, parent.interval_vwap
    shortfall = shortfall_bps = None
    if arrival is not None and arrival > ZERO:
        executed = parent.notional - parent.filled_qty * arrival
        mark = parent.last_price if parent.last_price is not None else arrival
        # A terminal parent will never fill the rest: the opportunity cost is fixed at its mark.
        opportunity = parent.leaves_qty * (mark - arrival)
        shortfall = (sign * (executed + opportunity) + parent.fees).quantize(_CENTS)
        shortfall_bps = (shortfall * _BPS / (parent.qty * arrival)).quantize(_CENTS)
    participation = None
    if parent.market_volume:
        participation = (parent.filled_qty * 100 / parent.market_volume).quantize(_CENTS)
    deviation = None
    if not isinstance(parent.spec, IcebergSpec):
        deviation = ((parent.filled_qty - parent.scheduled_qty) * 100 / parent.qty).quantize(_CENTS)
    return ExecutionQuality(
        arrival_price=arrival,
        avg_price=avg,
        interval_vwap=vwap,
        arrival_slippage_bps=_bps(sign, avg, arrival),
        vwap_slippage_bps=_bps(sign, avg, vwap),
        shortfall=shortfall,
        shortfall_bps=shortfall_bps,
        participation_pct=participation,
        schedule_deviation_pct=deviation,
    )
