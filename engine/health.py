"""Engine health: components with a status and a heartbeat, feed rate, event-loop lag.

Components report in with ``beat``; the monitor samples the feed rate once a
second and the event-loop lag ten times a second (how late a 100 ms sleep
wakes up). Wall-clock readings here measure the process itself, not market
time, so they come from ``time.monotonic`` rather than the engine clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

LAG_PERIOD_S = 0.1
LAG_WINDOW = 100  # samples kept: the last 10 seconds


class Status(StrEnum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(slots=True, frozen=True)
class ComponentHealth:
    name: str
    status: Status
    detail: str
    heartbeat_age_s: float | None  # seconds since the component last reported; None if never


@dataclass(slots=True, frozen=True)
class HealthSnapshot:
    components: tuple[ComponentHealth, ...]
    feed_msgs_per_s: float
    feed_latency_ms: float | None  # None where the feed is simulated (no wire to be late on)
    reconnects: int
    loop_lag_ms: float  # worst lag in the last 10 s
    loop_lag_p99_ms: float
    bus_errors: int

    @property
    def healthy(self) -> bool:
        return all(c.status is Status.OK for c in self.components)


class _Component:
    __slots__ = ("detail", "last_beat", "status")

    def __init__(self) -> None:
        self.status = Status.STARTING
        self.detail = ""
        self.last_beat: float | None = None


class HealthMonitor:
    """The registry every component reports to, and the sampler behind the health pane."""

    def __init__(
        self,
        *,
        feed_events: Callable[[], int],
        bus_errors: Callable[[], int],
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._components: dict[str, _Component] = {}
        self._feed_events = feed_events
        self._bus_errors = bus_errors
        self._wall = wall
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self._rate = 0.0
        self._rate_mark: tuple[float, int] | None = None
        self.reconnects = 0
        self.feed_latency_ms: float | None = None

    def beat(self, name: str, status: Status = Status.OK, detail: str = "") -> None:
        component = self._components.get(name)
        if component is None:
            component = self._components[name] = _Component()
        component.status = status
        component.detail = detail
        component.last_beat = self._wall()

    def sample_rate(self) -> None:
        """Update the feed's msgs/s from the events seen since the last sample."""
        now, events = self._wall(), self._feed_events()
        if self._rate_mark is not None:
            then, before = self._rate_mark
            if now > then:
                self._rate = (events - before) / (now - then)
        self._rate_mark = (now, events)

    async def watch_loop_lag(self) -> None:
        """Runs for the engine's life: how late the event loop wakes a 100 ms sleep."""
        while True:
            started = self._wall()
            await asyncio.sleep(LAG_PERIOD_S)
            self._lags.append(max(0.0, self._wall() - started - LAG_PERIOD_S) * 1_000)

    def snapshot(self) -> HealthSnapshot:
        now = self._wall()
        components = tuple(
            ComponentHealth(
                name,
                c.status,
                c.detail,
                None if c.last_beat is None else max(0.0, now - c.last_beat),
            )
            for name, c in sorted(self._components.items())
        )
        lags = sorted(self._lags)
        worst = lags[-1] if lags else 0.0
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
        return HealthSnapshot(
            components=components,
            feed_msgs_per_s=self._rate,
            feed_latency_ms=self.feed_latency_ms,
            reconnects=self.reconnects,
            loop_lag_ms=worst,
            loop_lag_p99_ms=p99,
            bus_errors=self._bus_errors(),
        )
