"""Circuit breakers: open after repeated failures, a trial after the cooldown, closed on
success; a refusal from a working service does not count."""

from __future__ import annotations

import pytest

from engine.circuit import CircuitBreaker, CircuitState
from engine.core.errors import BrokerRejected, BrokerUnavailable
from engine.health import HealthMonitor, Status

DOWN = BrokerUnavailable("Alpaca cannot be reached")


class Wall:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(wall: Wall, health: HealthMonitor | None = None) -> CircuitBreaker:
    return CircuitBreaker("broker", failures=3, cooldown_s=10, wall=wall, health=health)


def test_it_opens_after_the_configured_failures_in_a_row():
    breaker = _breaker(Wall())
    for _ in range(3):
        breaker.check()
        breaker.failed(DOWN)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(BrokerUnavailable, match="broker failed 3 times in a row"):
        breaker.check()


def test_a_success_resets_the_count():
    breaker = _breaker(Wall())
    breaker.failed(DOWN)
    breaker.failed(DOWN)
    breaker.succeeded()
    breaker.failed(DOWN)
    assert breaker.state is CircuitState.CLOSED


def test_a_refusal_is_the_service_working_and_does_not_count():
    breaker = _breaker(Wall())
    for _ in range(5):
        breaker.failed(BrokerRejected(403, "insufficient buying power"))
    assert breaker.state is CircuitState.CLOSED


def test_a_server_error_counts():
    breaker = _breaker(Wall())
    for _ in range(3):
        breaker.failed(BrokerRejected(503, "service unavailable"))
    assert breaker.state is CircuitState.OPEN


def test_after_the_cooldown_one_trial_call_goes_through():
    wall = Wall()
    breaker = _breaker(wall)
    for _ in range(3):
        breaker.failed(DOWN)
    wall.now += 10
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.check()  # the trial
    with pytest.raises(BrokerUnavailable, match="while a trial runs"):
        breaker.check()


def test_a_successful_trial_closes_it():
    wall = Wall()
    breaker = _breaker(wall)
    for _ in range(3):
        breaker.failed(DOWN)
    wall.now += 10
    breaker.check()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_trial_opens_it_again():
    wall = Wall()
    breaker = _breaker(wall)
    for _ in range(3):
        breaker.failed(DOWN)
    wall.now += 10
    breaker.check()
    breaker.failed(DOWN)
    assert breaker.state is CircuitState.OPEN
    assert breaker.trips == 2


def test_its_state_is_a_health_component():
    wall = Wall()
    health = HealthMonitor(feed_events=lambda: 0, bus_errors=lambda: 0, wall=wall)
    breaker = _breaker(wall, health)
    statuses = [breaker.component]
    for _ in range(3):
        breaker.failed(DOWN)
    wall.now += 10
    breaker.report()
    components = {c.name: c.status for c in health.snapshot().components}
    assert statuses == ["circuit.broker"]
    assert components["circuit.broker"] is Status.DEGRADED  # half-open after the cooldown


def test_its_own_refusals_do_not_extend_the_cooldown():
    wall = Wall()
    breaker = _breaker(wall)
    for _ in range(3):
        breaker.failed(DOWN)
    wall.now += 9
    with pytest.raises(BrokerUnavailable) as refused:
        breaker.check()
    breaker.failed(refused.value)
    wall.now += 1
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_timeout_counts():
    breaker = _breaker(Wall())
    for _ in range(3):
        breaker.failed(TimeoutError())
    assert breaker.state is CircuitState.OPEN
