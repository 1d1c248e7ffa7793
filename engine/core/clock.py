"""Injected clocks: the only source of "now" in the engine.

``LiveClock`` reads the wall clock and schedules timers on the asyncio loop.
``SimClock`` holds a time that only moves when its driver (a feed, a backtest,
a test) advances it; timers fire, in time order, as it passes them. The same
component code therefore runs live, in replay, in backtests and in tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000
NEW_YORK = ZoneInfo("America/New_York")


def ns_to_datetime(ts_ns: int, tz=UTC) -> datetime:
    return datetime.fromtimestamp(ts_ns / NS_PER_SECOND, tz=tz)


def datetime_to_ns(moment: datetime) -> int:
    """Exact nanoseconds for an aware datetime (naive datetimes are refused: they hide bugs)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * NS_PER_US


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What every component may ask of time."""

    def now_ns(self) -> int: ...

    def now(self) -> datetime: ...

    def call_at(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle: ...

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> TimerHandle: ...


class LiveClock:
    """Wall-clock time; timers run on the running asyncio loop."""

    def now_ns(self) -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return ns_to_datetime(self.now_ns())

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(delay_ns, 0) / NS_PER_SECOND, callback)

    def call_at(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle:
        return self.call_later(ts_ns - self.now_ns(), callback)


class _SimTimer:
    __slots__ = ("callback", "cancelled", "ts_ns")

    def __init__(self, ts_ns: int, callback: Callable[[], None]) -> None:
        self.ts_ns = ts_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Simulated time. ``advance_to`` moves it forward and fires due timers in order.

    Timers scheduled for the same instant fire in the order they were set; a
    timer's callback sees ``now_ns()`` equal to its own deadline.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns
        self._timers: list[tuple[int, int, _SimTimer]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now_ns

    def now(self) -> datetime:
        return ns_to_datetime(self._now_ns)

    def call_at(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle:
        timer = _SimTimer(max(ts_ns, self._now_ns), callback)
        heapq.heappush(self._timers, (timer.ts_ns, next(self._seq), timer))
        return timer

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now_ns + max(delay_ns, 0), callback)

    def next_timer_ns(self) -> int | None:
        """Deadline of the earliest live timer, for drivers that pace time."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance_to(self, ts_ns: int) -> None:
        """Move time to ``ts_ns`` (never backwards), firing every timer due on the way."""
        while self._timers and self._timers[0][0] <= ts_ns:
            deadline, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now_ns = max(self._now_ns, deadline)
            timer.callback()
        self._now_ns = max(self._now_ns, ts_ns)

    def advance_by(self, delta_ns: int) -> None:
        self.advance_to(self._now_ns + delta_ns)
