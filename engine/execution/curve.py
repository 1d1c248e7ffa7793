"""Intraday volume curves for VWAP: how a day's volume spreads over the regular session.

``VolumeCurve`` is the provider interface; a history store can implement it with
curves measured from past sessions. ``UShapeCurve`` is the default: the sim
market's U-shaped activity profile (busy open and close, quiet midday).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from engine.core.clock import NEW_YORK, NS_PER_SECOND, datetime_to_ns, ns_to_datetime
from engine.data.intraday import SESSION_MINUTES
from engine.data.sim import SESSION_OPEN, activity_profile

NS_PER_MINUTE = 60 * NS_PER_SECOND


class VolumeCurve(Protocol):
    """Relative volume for each minute of a regular session (09:30-16:00 New York)."""

    def minute_weights(self, symbol: str, session_date: date) -> Sequence[float]:
        """``SESSION_MINUTES`` non-negative weights, minute 0 starting at 09:30; any scale."""
        ...


class UShapeCurve:
    """The same U-shape for every symbol and day (``engine.data.sim.activity_profile``)."""

    def __init__(self) -> None:
        self._weights = activity_profile(SESSION_MINUTES)

    def minute_weights(self, symbol: str, session_date: date) -> Sequence[float]:
        return self._weights


def bucket_weights(
    curve: VolumeCurve, symbol: str, start_ns: int, end_ns: int, bucket_ns: int
) -> list[float]:
    """The curve's volume in each bucket of ``bucket_ns`` from ``start_ns`` to ``end_ns``.

    A partial minute counts in proportion; time outside the regular session has no
    volume. When the whole interval has none (an algo run after the close), every
    bucket weighs the same, which makes VWAP a TWAP.
    """
    day = ns_to_datetime(start_ns, NEW_YORK).date()
    open_ns = datetime_to_ns(datetime.combine(day, SESSION_OPEN, tzinfo=NEW_YORK))
    weights = curve.minute_weights(symbol, day)
    buckets: list[float] = []
    edge = start_ns
    while edge < end_ns:
        stop = min(edge + bucket_ns, end_ns)
        total = 0.0
        minute = max((edge - open_ns) // NS_PER_MINUTE, 0)
        while minute < len(weights):
            lo = open_ns + minute * NS_PER_MINUTE
            if lo >= stop:
                break
            overlap = min(stop, lo + NS_PER_MINUTE) - max(edge, lo)
            if overlap > 0:
                total += weights[minute] * overlap / NS_PER_MINUTE
            minute += 1
        buckets.append(total)
        edge = stop
    if sum(buckets) <= 0.0:
        return [1.0] * len(buckets)
    return buckets
