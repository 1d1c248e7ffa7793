"""Drives simulated time from a time-ordered event source.

The sim market and the replay feed are plain iterators of events. The driver
moves the ``SimClock`` to each event's time (firing venue timers on the way),
publishes the event on the bus, and paces the whole thing against the wall
clock at ``speed`` (1.0 is real time; 0 is as fast as possible). Overnight gaps
are skipped: a session OPEN event rebases the pacing, so a trader never waits
17 hours for tomorrow's sim session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, SimClock
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Quote, Trade

MarketEvent = Quote | Trade | Bar | SessionEvent

TOPIC_OF: dict[type, Topic] = {
    Quote: Topic.QUOTE,
    Trade: Topic.TRADE,
    Bar: Topic.BAR,
    SessionEvent: Topic.SESSION,
}

# How many events an unpaced run dispatches before yielding to other tasks.
_YIELD_EVERY = 512
# Never sleep longer than this at once, so a stop request is noticed promptly.
_MAX_SLEEP_S = 0.25


@dataclass(slots=True)
class DriverStats:
    events: int = 0
    quotes: int = 0
    trades: int = 0
    bars: int = 0


class FeedDriver:
    """Publishes a source's events on the bus in simulated time.

    ``after_event`` is called after each event is dispatched (the headless
    order script uses it to submit its next line at a deterministic point).
    """

    def __init__(
        self,
        source: Iterable[MarketEvent],
        clock: SimClock,
        bus: MessageBus,
        *,
        speed: float = 1.0,
        until_ns: int | None = None,
        wall: Callable[[], float] = time.monotonic,
        after_event: Callable[[], None] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")
        self._events: Iterator[MarketEvent] = iter(source)
        self._clock = clock
        self._bus = bus
        self.speed = speed
        self.until_ns = until_ns
        self._wall = wall
        self._after_event = after_event
        self.stats = DriverStats()
        self.exhausted = False
        self._stopping = False
        self._origin_wall = 0.0
        self._origin_ns = 0

    def stop(self) -> None:
        self._stopping = True

    def step(self) -> bool:
        """Dispatch one event without pacing; False when the source is done or the end time is reached."""
        event = next(self._events, None)
        if event is None:
            self.exhausted = True
            return False
        if self.until_ns is not None and event.ts_ns > self.until_ns:
            self._clock.advance_to(self.until_ns)
            self.exhausted = True
            return False
        self._dispatch(event)
        return True

    def _dispatch(self, event: MarketEvent) -> None:
        self._clock.advance_to(event.ts_ns)
        topic = TOPIC_OF[type(event)]
        self._bus.publish(topic, event)
        stats = self.stats
        stats.events += 1
        if topic is Topic.QUOTE:
            stats.quotes += 1
        elif topic is Topic.TRADE:
            stats.trades += 1
        elif topic is Topic.BAR:
            stats.bars += 1
        if self._after_event is not None:
            self._after_event()

    async def run(self) -> None:
        """Dispatch until the source ends, the end time passes, or ``stop()`` is called."""
        self._rebase()
        dispatched = 0
        while not self._stopping:
            event = next(self._events, None)
            if event is None:
                self.exhausted = True
                return
            if self.until_ns is not None and event.ts_ns > self.until_ns:
                await self._pace_to(self.until_ns)
                self._clock.advance_to(self.until_ns)
                self.exhausted = True
                return
            if isinstance(event, SessionEvent) and event.phase is SessionPhase.OPEN:
                self._rebase(event.ts_ns)
            await self._pace_to(event.ts_ns)
            if self._stopping:
                return
            self._dispatch(event)
            dispatched += 1
            if self.speed == 0 and dispatched % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def drain(self, horizon_ns: int) -> None:
        """Let simulated time run on for ``horizon_ns`` with no market events (fires pending timers)."""
        self._rebase()
        end = self._clock.now_ns() + horizon_ns
        while True:
            deadline = self._clock.next_timer_ns()
            if deadline is None or deadline > end:
                break
            await self._pace_to(deadline)
            self._clock.advance_to(deadline)
        self._clock.advance_to(end)

    def _rebase(self, at_ns: int | None = None) -> None:
        self._origin_wall = self._wall()
        self._origin_ns = self._clock.now_ns() if at_ns is None else at_ns

    async def _pace_to(self, ts_ns: int) -> None:
        """Sleep until ``ts_ns`` is due on the wall clock, firing simulated timers that fall before it."""
        if self.speed == 0:
            return
        while not self._stopping:
            deadline = self._clock.next_timer_ns()
            target_ns = ts_ns if deadline is None or deadline > ts_ns else deadline
            due = self._origin_wall + (target_ns - self._origin_ns) / NS_PER_SECOND / self.speed
            wait = due - self._wall()
            if wait > 0:
                await asyncio.sleep(min(wait, _MAX_SLEEP_S))
                continue
            if target_ns == ts_ns:
                return
            self._clock.advance_to(target_ns)
