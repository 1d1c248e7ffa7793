"""Settings of the ``[execution]`` section: how algos slice, price children and restart."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine.core.prices import ZERO


class RestartPolicy(StrEnum):
    """What a working or paused algo does when the engine starts again."""

    RESUME = "resume"
    CANCEL = "cancel"


class ChildPricing(StrEnum):
    """How TWAP and VWAP children are priced when the parent has no limit.

    ``market``: market orders. ``touch``: limits at the near touch (the bid for a
    buy) moved ``touch_offset`` dollars toward the far side. A parent's limit always caps them.
    """

    MARKET = "market"
    TOUCH = "touch"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(slots=True, frozen=True)
class ExecutionConfig:
    """Defaults for every algo; an order line's own parameters win over them."""

    on_restart: RestartPolicy = RestartPolicy.RESUME
    twap_slices: int = 10
    twap_jitter_pct: Decimal = Decimal(20)  # a slice may move this % of its interval either way
    vwap_bucket_s: int = 60  # one VWAP slice per bucket of the volume curve
    child_pricing: ChildPricing = ChildPricing.MARKET
    touch_offset: Decimal = ZERO
    pov_min_clip: Decimal = Decimal(100)
    pov_max_clip: Decimal | None = None
    child_interval_ms: int = 1000  # POV and Iceberg send at most one child per interval
    twap_seed: int = 7  # TWAP timing randomness, mixed with each parent's id

    def __post_init__(self) -> None:
        _check(self.twap_slices >= 1, f"twap_slices must be 1 or more, got {self.twap_slices}")
        _check(
            ZERO <= self.twap_jitter_pct <= 50,
            f"twap_jitter_pct must be from 0 to 50, got {self.twap_jitter_pct}",
        )
        _check(
            self.vwap_bucket_s >= 1, f"vwap_bucket_s must be 1 or more, got {self.vwap_bucket_s}"
        )
        _check(
            self.touch_offset >= ZERO, f"touch_offset must be zero or more, got {self.touch_offset}"
        )
        _check(
            self.pov_min_clip > ZERO,
            f"pov_min_clip must be more than zero, got {self.pov_min_clip}",
        )
        _check(
            self.pov_max_clip is None or self.pov_max_clip >= self.pov_min_clip,
            f"pov_max_clip must be at least pov_min_clip, got {self.pov_max_clip}",
        )
        _check(
            self.child_interval_ms >= 0,
            f"child_interval_ms must be zero or more, got {self.child_interval_ms}",
        )
