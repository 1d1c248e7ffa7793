"""Engine health: components with a status and a heartbeat, feed rate, event-loop lag,
queue depths, memory, and the order path's latency.

Components report in with ``beat``; the monitor samples the feed rate once a
second and the event-loop lag ten times a second (how late a 100 ms sleep
wakes up). Wall-clock readings here measure the process itself, not market
time, so they come from ``time.monotonic`` rather than the engine clock.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.latency import LatencyBook, OrderLatency, StageLatency

LAG_PERIOD_S = 0.1
LAG_WINDOW = 100  # samples kept: the last 10 seconds
LATENCY_SHOWN = 50  # newest orders whose breakdown rides along in every snapshot


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
class QueueDepth:
    name: str
    depth: int


@dataclass(slots=True, frozen=True)
class HealthSnapshot:
    components: tuple[ComponentHealth, ...]
    feed_msgs_per_s: float
    feed_latency_ms: float | None  # None where the feed is simulated (no wire to be late on)
    reconnects: int
    loop_lag_ms: float  # worst lag in the last 10 s
    loop_lag_p99_ms: float
    bus_errors: int
    memory_rss_bytes: int = 0  # resident set size of the engine process
    queues: tuple[QueueDepth, ...] = ()
    order_latency: tuple[StageLatency, ...] = ()  # p50/p90/p99 per stage of the order path
    recent_orders: tuple[OrderLatency, ...] = ()  # newest orders' breakdowns, newest first

    def order(self, order_id: str) -> OrderLatency | None:
        """``order_id``'s breakdown if it is among the recent orders."""
        return next((o for o in self.recent_orders if o.order_id == order_id), None)

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
        self.latency: LatencyBook | None = None  # the order manager's, once it exists
        self._queues: dict[str, Callable[[], int]] = {}

    def watch_queue(self, name: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as queue ``name`` in every snapshot (until ``forget_queue``)."""
        self._queues[name] = depth

    def forget_queue(self, name: str) -> None:
        self._queues.pop(name, None)

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
        latency = self.latency
        return HealthSnapshot(
            components=components,
            feed_msgs_per_s=self._rate,
            feed_latency_ms=self.feed_latency_ms,
            reconnects=self.reconnects,
            loop_lag_ms=worst,
            loop_lag_p99_ms=p99,
            bus_errors=self._bus_errors(),
            memory_rss_bytes=rss_bytes(),
            queues=tuple(QueueDepth(n, depth()) for n, depth in sorted(self._queues.items())),
            order_latency=latency.summary() if latency is not None else (),
            recent_orders=latency.newest(LATENCY_SHOWN) if latency is not None else (),
        )


_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident memory now (Linux), else its peak (``ru_maxrss``)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
