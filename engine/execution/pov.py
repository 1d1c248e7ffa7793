"""POV: participate at a percentage of the volume the market trades while the algo works.

The target is ``rate × market volume since the start`` (the symbol's trade prints;
minute bars where the feed has no prints). A child goes out when the target is at
least ``min_clip`` ahead of the fills (or the parent's whole rest, if smaller), at
most ``max_clip``. Children are marketable (market orders, or limits at the
parent's limit), since participation means trading with the flow now.
"""

from __future__ import annotations

from decimal import Decimal

from engine.execution.algo import Algo
from engine.execution.spec import PovSpec


class Pov(Algo):
    follows_volume = True

    @property
    def spec(self) -> PovSpec:
        spec = self.parent.spec
        assert isinstance(spec, PovSpec)
        return spec

    def target(self) -> Decimal:
        return self.parent.market_volume * self.spec.rate_pct / 100

    def clip(self, wanted: Decimal) -> Decimal:
        spec, config = self.spec, self.config
        minimum = min(spec.min_clip or config.pov_min_clip, self.parent.leaves_qty)
        if wanted < minimum:
            return Decimal(0)
        maximum = spec.max_clip or config.pov_max_clip
        return wanted if maximum is None else min(wanted, maximum)
