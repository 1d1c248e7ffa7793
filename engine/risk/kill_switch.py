"""The kill switch: once engaged, only orders that reduce a position pass risk.

The switch is state, not action. ``RiskEngine.check`` reads it to refuse every
risk-increasing order; the OMS, which owns the orders, engages it (on the daily
loss limit or the trader's kill key), cancels the open orders, flattens when
``RiskConfig.flatten_on_kill`` says so, journals the state and publishes a
``KillSwitchState`` under ``Topic.KILL_SWITCH``. Nothing disengages it but an
explicit ``reset()``: not a new day, not a P&L recovery, not a restart
(``restore`` reloads the journaled state).
"""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger


@dataclass(slots=True, frozen=True)
class KillSwitchState:
    """A snapshot of the switch, for the bus, the journal and the console."""

    engaged: bool
    reason: str
    since_ns: int | None


class KillSwitch:
    """Engaged or not, why, and since when (``ts_ns`` from the engine's clock)."""

    __slots__ = ("engaged", "reason", "since_ns")

    def __init__(self) -> None:
        self.engaged = False
        self.reason = ""
        self.since_ns: int | None = None

    def engage(self, reason: str, ts_ns: int) -> bool:
        """Engage the switch; True if this call engaged it, False if it already was.

        A second trip keeps the first reason and time: the first cause is the one to fix.
        """
        if self.engaged:
            return False
        self.engaged = True
        self.reason = reason
        self.since_ns = ts_ns
        logger.warning("kill switch engaged: {}", reason)
        return True

    def reset(self) -> None:
        """Disengage: the trader's explicit decision to trade again."""
        if self.engaged:
            logger.warning("kill switch reset (was engaged: {})", self.reason)
        self.engaged = False
        self.reason = ""
        self.since_ns = None

    def restore(self, engaged: bool, reason: str, since_ns: int | None) -> None:
        """Reload the journaled state after a restart, without logging a new trip."""
        self.engaged = engaged
        self.reason = reason if engaged else ""
        self.since_ns = since_ns if engaged else None

    def state(self) -> KillSwitchState:
        """An immutable snapshot to publish under ``Topic.KILL_SWITCH`` or journal."""
        return KillSwitchState(self.engaged, self.reason, self.since_ns)
