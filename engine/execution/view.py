"""An immutable copy of a parent order for consoles: its terms, state, progress and quality."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.core.models import Side
from engine.execution.parent import Parent, ParentState
from engine.execution.quality import ExecutionQuality, measure


@dataclass(slots=True, frozen=True)
class ParentView:
    id: str
    symbol: str
    side: Side
    qty: Decimal
    algo: str  # twap, vwap, pov, iceberg
    limit_price: Decimal | None
    state: ParentState
    reason: str
    filled_qty: Decimal
    avg_price: Decimal | None
    progress_pct: Decimal
    created_ns: int
    updated_ns: int
    children: tuple[str, ...]  # child order ids, oldest first
    quality: ExecutionQuality

    @property
    def is_open(self) -> bool:
        return not self.state.is_terminal


def parent_view(parent: Parent) -> ParentView:
    return ParentView(
        id=parent.id,
        symbol=parent.symbol,
        side=parent.side,
        qty=parent.qty,
        algo=parent.algo,
        limit_price=parent.limit_price,
        state=parent.state,
        reason=parent.reason,
        filled_qty=parent.filled_qty,
        avg_price=parent.avg_price,
        progress_pct=parent.progress_pct,
        created_ns=parent.created_ns,
        updated_ns=parent.updated_ns,
        children=tuple(parent.children),
        quality=measure(parent),
    )
