"""What an algo order line asks for: the algo and its parameters (pure data, no engine state).

The order language builds these (``buy 5000 AAPL twap 30m``); the execution
service turns one into a running algo. Each spec has a ``to_dict``/``spec_from_dict``
JSON form for the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any, TypeAlias


@dataclass(slots=True, frozen=True)
class TwapSpec:
    """Equal slices over ``duration_s``; ``slices`` None takes ``execution.twap_slices``."""

    duration_s: int
    slices: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"algo": "twap", "duration_s": self.duration_s, "slices": self.slices}


@dataclass(slots=True, frozen=True)
class VwapSpec:
    """Slices weighted by the intraday volume curve, for ``duration_s`` or ``until`` a NY time."""

    duration_s: int | None = None
    until: time | None = None

    def to_dict(self) -> dict[str, Any]:
        until = None if self.until is None else self.until.strftime("%H:%M")
        return {"algo": "vwap", "duration_s": self.duration_s, "until": until}


@dataclass(slots=True, frozen=True)
class PovSpec:
    """Participate at ``rate_pct`` % of the volume traded since the start, in clips."""

    rate_pct: Decimal
    min_clip: Decimal | None = None
    max_clip: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "algo": "pov",
            "rate_pct": str(self.rate_pct),
            "min_clip": None if self.min_clip is None else str(self.min_clip),
            "max_clip": None if self.max_clip is None else str(self.max_clip),
        }


@dataclass(slots=True, frozen=True)
class IcebergSpec:
    """Show ``display_qty`` at the parent's limit; replenish when the shown part has filled."""

    display_qty: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {"algo": "iceberg", "display_qty": str(self.display_qty)}


AlgoSpec: TypeAlias = TwapSpec | VwapSpec | PovSpec | IcebergSpec


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def spec_from_dict(data: dict[str, Any]) -> AlgoSpec:
    """The spec ``to_dict`` wrote; ``ValueError`` for an unknown algo."""
    match data["algo"]:
        case "twap":
            return TwapSpec(data["duration_s"], data["slices"])
        case "vwap":
            until = data["until"]
            return VwapSpec(
                data["duration_s"], None if until is None else time.fromisoformat(until)
            )
        case "pov":
            return PovSpec(
                Decimal(data["rate_pct"]), _decimal(data["min_clip"]), _decimal(data["max_clip"])
            )
        case "iceberg":
            return IcebergSpec(Decimal(data["display_qty"]))
    raise ValueError(f"unknown algo '{data['algo']}'")


def algo_name(spec: AlgoSpec) -> str:
    """ "twap", "vwap", "pov" or "iceberg"."""
    return spec.to_dict()["algo"]
