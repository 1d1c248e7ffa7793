"""Per-order latency: when each stage of an order's path happened, and percentiles over them.

The order manager stamps each stage from the engine clock: the market event the
decision saw (the symbol's latest quote), the decision (``submit`` called), the
risk check passed, the request handed to the broker, the broker's acknowledgement
and the first fill. Under the sim clock stages inside one synchronous call share a
timestamp, so their gaps read zero: the venue's latency shows in ack and fill.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from dataclasses import dataclass

from engine.core.clock import NS_PER_MS
from engine.core.models import OrderStatus

LATENCY_ORDERS = 1_000  # orders whose breakdown is kept (the newest)
PERCENTILES = (50, 90, 99)

_ACKED = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PENDING_REPLACE,
        OrderStatus.DONE_FOR_DAY,
    }
)

STAGES = ("decision", "risk", "submit", "ack", "fill")
"""Each stage is measured from the one before it; ``decision`` from the market event."""


@dataclass(slots=True, frozen=True)
class OrderLatency:
    """One order's stage timestamps (engine-clock ns); a stage not reached yet is None."""

    order_id: str
    event_ns: int
    decision_ns: int
    risk_ns: int
    submit_ns: int
    ack_ns: int | None = None
    fill_ns: int | None = None

    def stages_ms(self) -> dict[str, float | None]:
        """Milliseconds spent in each stage (market event -> decision, ..., ack -> fill)."""
        marks = (
            self.event_ns,
            self.decision_ns,
            self.risk_ns,
            self.submit_ns,
            self.ack_ns,
            self.fill_ns,
        )
        out: dict[str, float | None] = {}
        for stage, before, after in zip(STAGES, marks, marks[1:], strict=False):
            out[stage] = None if before is None or after is None else (after - before) / NS_PER_MS
        return out

    def total_ms(self) -> float | None:
        """Market event to fill (or to the broker's ack while unfilled)."""
        end = self.fill_ns if self.fill_ns is not None else self.ack_ns
        return None if end is None else (end - self.event_ns) / NS_PER_MS


@dataclass(slots=True, frozen=True)
class StageLatency:
    """Percentiles of one stage over the kept orders; ``count`` orders had reached it."""

    stage: str
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None


def _percentile(values: list[float], pct: int) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, -(-pct * len(values) // 100))  # ceil(pct/100 * n)
    return values[rank - 1]


class LatencyBook:
    """The newest orders' breakdowns, by order id."""

    def __init__(self, keep: int = LATENCY_ORDERS) -> None:
        self._keep = keep
        self._orders: OrderedDict[str, OrderLatency] = OrderedDict()
        self._version = 0
        self._summary: tuple[int, tuple[StageLatency, ...]] | None = None

    def submitted(self, record: OrderLatency) -> None:
        self._orders[record.order_id] = record
        self._version += 1
        while len(self._orders) > self._keep:
            self._orders.popitem(last=False)

    def updated(self, order_id: str, status: OrderStatus, now_ns: int, filled: bool) -> None:
        """Stamp the broker's first acknowledgement and the first fill of ``order_id``."""
        record = self._orders.get(order_id)
        if record is None:
            return
        ack_ns, fill_ns = record.ack_ns, record.fill_ns
        if ack_ns is None and (status in _ACKED or filled):
            ack_ns = now_ns
        if fill_ns is None and filled:
            fill_ns = now_ns
        if (ack_ns, fill_ns) != (record.ack_ns, record.fill_ns):
            self._orders[order_id] = dataclasses.replace(record, ack_ns=ack_ns, fill_ns=fill_ns)
            self._version += 1

    def get(self, order_id: str) -> OrderLatency | None:
        return self._orders.get(order_id)

    def newest(self, count: int) -> tuple[OrderLatency, ...]:
        """The ``count`` most recently submitted orders' breakdowns, newest first."""
        return tuple(itertools.islice(reversed(self._orders.values()), max(count, 0)))

    def summary(self) -> tuple[StageLatency, ...]:
        """p50/p90/p99 of every stage, and of the whole path (``total``); recomputed only
        after an order changed (consoles ask with every snapshot)."""
        if self._summary is not None and self._summary[0] == self._version:
            return self._summary[1]
        columns: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
        for record in self._orders.values():
            for stage, value in record.stages_ms().items():
                if value is not None:
                    columns[stage].append(value)
            total = record.total_ms()
            if total is not None:
                columns["total"].append(total)
        out = []
        for stage, values in columns.items():
            values.sort()
            p50, p90, p99 = (_percentile(values, p) for p in PERCENTILES)
            out.append(StageLatency(stage, len(values), p50, p90, p99))
        self._summary = (self._version, tuple(out))
        return self._summary[1]
