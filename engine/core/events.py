"""Engine events that are not market data or orders."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(slots=True, frozen=True)
class Alert:
    """A sentence for the trader's message line (and the log)."""

    ts_ns: int
    severity: Severity
    message: str
    source: str = "engine"


class SessionPhase(StrEnum):
    OPEN = "open"
    CLOSE = "close"


@dataclass(slots=True, frozen=True)
class SessionEvent:
    """The regular session opened or closed (sim and replay feeds publish these)."""

    ts_ns: int
    phase: SessionPhase
    session_date: str  # ISO date of the trading day, America/New_York
