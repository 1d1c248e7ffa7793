"""The health monitor: component status, feed rate and loop lag."""

import asyncio

from engine.health import HealthMonitor, Status


class Wall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_components_report_status_detail_and_heartbeat_age():
    wall = Wall()
    monitor = HealthMonitor(feed_events=lambda: 0, bus_errors=lambda: 0, wall=wall)
    monitor.beat("feed")
    monitor.beat("journal", Status.DEGRADED, "disk full")
    wall.now += 2.5
    snap = monitor.snapshot()
    assert [(c.name, c.status, c.detail, c.heartbeat_age_s) for c in snap.components] == [
        ("feed", Status.OK, "", 2.5),
        ("journal", Status.DEGRADED, "disk full", 2.5),
    ]
    assert not snap.healthy


def test_feed_rate_is_events_per_wall_second_between_samples():
    wall, events = Wall(), [0]
    monitor = HealthMonitor(feed_events=lambda: events[0], bus_errors=lambda: 3, wall=wall)
    monitor.sample_rate()
    events[0], wall.now = 500, wall.now + 2
    monitor.sample_rate()
    snap = monitor.snapshot()
    assert snap.feed_msgs_per_s == 250
    assert snap.bus_errors == 3


def test_loop_lag_is_measured_while_the_loop_runs():
    monitor = HealthMonitor(feed_events=lambda: 0, bus_errors=lambda: 0)

    async def main():
        task = asyncio.create_task(monitor.watch_loop_lag())
        await asyncio.sleep(0.35)
        task.cancel()

    asyncio.run(main())
    snap = monitor.snapshot()
    assert snap.loop_lag_ms >= 0 and snap.loop_lag_p99_ms <= snap.loop_lag_ms
