"""The feed driver: simulated time, pacing, end time, and timers between events."""

import asyncio
from decimal import Decimal

from engine.core import MessageBus, Quote, SimClock, Topic
from engine.core.clock import NS_PER_SECOND
from engine.data.driver import FeedDriver


def quotes(*seconds: float) -> list[Quote]:
    return [
        Quote("X", int(s * NS_PER_SECOND), Decimal("10"), 100, Decimal("10.01"), 100)
        for s in seconds
    ]


class FakeWall:
    """A wall clock the test controls; asyncio.sleep is real but tiny because pacing reads this."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_step_publishes_each_event_at_its_own_time():
    bus, clock = MessageBus(), SimClock(0)
    seen = []
    bus.subscribe(Topic.QUOTE, lambda q: seen.append((q.ts_ns, clock.now_ns())))
    driver = FeedDriver(quotes(1, 2, 3), clock, bus, speed=0)
    while driver.step():
        pass
    assert seen == [(s * NS_PER_SECOND, s * NS_PER_SECOND) for s in (1, 2, 3)]
    assert driver.stats.quotes == 3 and driver.exhausted


def test_until_stops_before_later_events_and_moves_the_clock_to_the_end():
    bus, clock = MessageBus(), SimClock(0)
    driver = FeedDriver(quotes(1, 2, 30), clock, bus, speed=0, until_ns=10 * NS_PER_SECOND)
    asyncio.run(driver.run())
    assert driver.stats.events == 2
    assert clock.now_ns() == 10 * NS_PER_SECOND


def test_timers_between_events_fire_at_their_own_time_when_paced():
    bus, clock, wall = MessageBus(), SimClock(0), FakeWall()
    fired = []
    clock.call_at(int(1.5 * NS_PER_SECOND), lambda: fired.append(clock.now_ns()))

    async def advance_wall():
        while True:
            wall.now += 0.5
            await asyncio.sleep(0)

    async def main():
        ticker = asyncio.create_task(advance_wall())
        await FeedDriver(quotes(1, 2), clock, bus, speed=1.0, wall=wall).run()
        ticker.cancel()

    asyncio.run(main())
    assert fired == [int(1.5 * NS_PER_SECOND)]


def test_after_event_hook_runs_after_every_dispatch():
    bus, clock = MessageBus(), SimClock(0)
    calls = []
    driver = FeedDriver(
        quotes(1, 2), clock, bus, speed=0, after_event=lambda: calls.append(clock.now_ns())
    )
    asyncio.run(driver.run())
    assert calls == [NS_PER_SECOND, 2 * NS_PER_SECOND]


def test_drain_fires_pending_timers_within_the_horizon_only():
    bus, clock = MessageBus(), SimClock(0)
    fired = []
    clock.call_later(NS_PER_SECOND, lambda: fired.append("soon"))
    clock.call_later(10 * NS_PER_SECOND, lambda: fired.append("late"))
    driver = FeedDriver([], clock, bus, speed=0)
    asyncio.run(driver.drain(2 * NS_PER_SECOND))
    assert fired == ["soon"]
    assert clock.now_ns() == 2 * NS_PER_SECOND
