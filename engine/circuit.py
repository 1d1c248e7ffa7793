"""Circuit breakers around calls to the broker and the data service.

After ``failures`` consecutive failures a breaker opens: calls fail at once, without
touching the network, for ``cooldown_s``. Then it lets one trial call through
(half-open): success closes it, failure opens it again. Its state is a health
component (``circuit.<name>``): closed is ok, half-open degraded, open down.

Only failures that say the service is unwell count: it could not be reached or
answered 5xx. A refusal (a 4xx: bad order, no buying power) is the service
working. The cooldown is measured on the process's monotonic clock: it protects
the process, it is not market time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from engine.core.errors import BrokerRejected, BrokerUnavailable
from engine.health import HealthMonitor, Status

DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN_S = 30.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_HEALTH = {
    CircuitState.CLOSED: Status.OK,
    CircuitState.HALF_OPEN: Status.DEGRADED,
    CircuitState.OPEN: Status.DOWN,
}


def counts_as_failure(error: BaseException) -> bool:
    """True for errors that mean the service is unwell (unreachable, timed out, 5xx), not a
    refusal."""
    if isinstance(error, BrokerUnavailable | OSError | TimeoutError):
        return True
    return isinstance(error, BrokerRejected) and error.status >= 500


class CircuitBreaker:
    """One service's breaker; ``check()`` before a call, ``succeeded()``/``failed()`` after.

    It reports to ``health`` when its state changes and whenever ``report()`` is called
    (the engine's health refresh does, as a heartbeat).
    """

    def __init__(
        self,
        name: str,
        *,
        failures: int = DEFAULT_FAILURES,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        health: HealthMonitor | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._limit = max(1, failures)
        self._cooldown_s = cooldown_s
        self._health = health
        self._wall = wall
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False
        self.trips = 0  # times it has opened

    @property
    def component(self) -> str:
        return f"circuit.{self.name}"

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._wall() - self._opened_at >= self._cooldown_s:
            self._state = CircuitState.HALF_OPEN
            self._trial_out = False
            self._report("cooldown over: the next call is a trial")
        return self._state

    def check(self) -> None:
        """Raise ``BrokerUnavailable`` instead of calling a service the breaker holds open."""
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return
        wait = max(0.0, self._cooldown_s - (self._wall() - self._opened_at))
        raise BrokerUnavailable(
            f"{self.name} failed {self._limit} times in a row; calls are paused"
            + (f" for {wait:.0f} s more" if state is CircuitState.OPEN else " while a trial runs")
        )

    def succeeded(self) -> None:
        if self._state is not CircuitState.CLOSED:
            self._report("recovered")
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._trial_out = False
        self._report("")

    def failed(self, error: BaseException) -> None:
        """Count ``error`` if it says the service is unwell; open at the limit (or on a failed
        trial)."""
        if not counts_as_failure(error) or self._state is CircuitState.OPEN:
            return  # while open, the only failures are the breaker's own refusals
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or self._failures >= self._limit:
            if self._state is not CircuitState.OPEN:
                self.trips += 1
            self._state = CircuitState.OPEN
            self._opened_at = self._wall()
            self._trial_out = False
        self._report(str(error))

    def report(self) -> None:
        """Beat the health component with the current state (a heartbeat while all is quiet)."""
        self._report("" if self.state is CircuitState.CLOSED else "calls paused")

    def _report(self, detail: str) -> None:
        if self._health is None:
            return
        text = self._state.value if not detail else f"{self._state.value}: {detail}"
        if self._failures and self._state is CircuitState.CLOSED:
            text = f"closed, {self._failures} failure(s) in a row: {detail}"
        self._health.beat(self.component, _HEALTH[self._state], text)
