"""TWAP: the parent in N equal slices over a duration, each slice's time randomized within bounds.

Slice ``i`` is nominally due at ``start + i × interval`` (``interval = duration / N``);
every slice but the first moves by a uniform random amount of up to
``twap_jitter_pct`` % of the interval either way, so the algo's rhythm is not a
signal to others. The randomness is seeded with ``execution.twap_seed`` and the
parent's id: the same parent gets the same schedule after a restart.
"""

from __future__ import annotations

import random
import zlib
from decimal import Decimal

from engine.core.clock import NS_PER_SECOND
from engine.execution.algo import SlicedAlgo, cumulative
from engine.execution.spec import TwapSpec


def twap_times(
    start_ns: int, duration_ns: int, slices: int, jitter_pct: Decimal, seed: int
) -> list[int]:
    """The slice times: nominal ``start + i × interval``, moved by up to ``jitter_pct`` %."""
    interval = duration_ns // slices
    bound = int(interval * jitter_pct / 100)
    rng = random.Random(seed)
    times = [start_ns]
    for i in range(1, slices):
        shift = rng.randint(-bound, bound) if bound else 0
        times.append(start_ns + i * interval + shift)
    return times


class Twap(SlicedAlgo):
    def schedule(self) -> list[tuple[int, Decimal]]:
        parent, config = self.parent, self.config
        spec = parent.spec
        assert isinstance(spec, TwapSpec)
        slices = spec.slices or config.twap_slices
        seed = config.twap_seed ^ zlib.crc32(parent.id.encode())
        times = twap_times(
            parent.start_ns, spec.duration_s * NS_PER_SECOND, slices, config.twap_jitter_pct, seed
        )
        return list(zip(times, cumulative(parent.qty, [1] * slices), strict=True))
