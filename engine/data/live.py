"""A live market-data stream behind the same interface as the simulated-time driver.

The headless runner and the console run ``engine.driver`` whatever the mode:
``run()``, ``stop()``, ``stats``, ``drain()`` and an ``after_event`` hook. In
sim and replay that is the ``FeedDriver``; in paper and live it is this
adapter around the Alpaca stream, whose events arrive on the bus on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, Clock
from engine.data.driver import DriverStats

# Live time cannot be fast-forwarded: draining waits this long at most for answers in flight.
MAX_DRAIN_S = 2.0


class Stream(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class LiveFeed:
    def __init__(
        self,
        stream: Stream,
        bus: MessageBus,
        clock: Clock,
        *,
        until_ns: int | None = None,
        after_event: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self._clock = clock
        self.until_ns = until_ns
        self._after_event = after_event
        self.stats = DriverStats()
        self.exhausted = False
        self.speed = 1.0
        # Subscribed after every component, so the hook sees the event already applied.
        bus.subscribe(Topic.QUOTE, self._on_quote)
        bus.subscribe(Topic.TRADE, self._on_trade)
        bus.subscribe(Topic.BAR, self._on_bar)

    def _counted(self) -> None:
        self.stats.events += 1
        if self._after_event is not None:
            self._after_event()

    def _on_quote(self, _message: object) -> None:
        self.stats.quotes += 1
        self._counted()

    def _on_trade(self, _message: object) -> None:
        self.stats.trades += 1
        self._counted()

    def _on_bar(self, _message: object) -> None:
        self.stats.bars += 1
        self._counted()

    async def run(self) -> None:
        """Stream until stopped, or until ``until_ns`` on the (live) clock."""
        if self.until_ns is None:
            await self.stream.run()
            return
        seconds = max(0.0, (self.until_ns - self._clock.now_ns()) / NS_PER_SECOND)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stream.run(), timeout=seconds)
        self.exhausted = True

    def stop(self) -> None:
        self.stream.stop()

    async def drain(self, horizon_ns: int) -> None:
        await asyncio.sleep(min(horizon_ns / NS_PER_SECOND, MAX_DRAIN_S))
