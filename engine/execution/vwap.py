"""VWAP: slices in proportion to the intraday volume curve, one per ``vwap_bucket_s`` bucket."""

from __future__ import annotations

from decimal import Decimal

from engine.core.clock import NS_PER_SECOND
from engine.execution.algo import AlgoHost, SlicedAlgo, cumulative
from engine.execution.config import ExecutionConfig
from engine.execution.curve import VolumeCurve, bucket_weights
from engine.execution.parent import Parent


class Vwap(SlicedAlgo):
    """Bucket ``k`` starts at ``start + k × bucket``; its slice is the curve's share of the qty."""

    def __init__(
        self, parent: Parent, host: AlgoHost, config: ExecutionConfig, curve: VolumeCurve
    ) -> None:
        self.curve = curve
        super().__init__(parent, host, config)

    def schedule(self) -> list[tuple[int, Decimal]]:
        parent = self.parent
        assert parent.end_ns is not None
        bucket_ns = self.config.vwap_bucket_s * NS_PER_SECOND
        weights = bucket_weights(
            self.curve, parent.symbol, parent.start_ns, parent.end_ns, bucket_ns
        )
        times = [parent.start_ns + k * bucket_ns for k in range(len(weights))]
        return list(zip(times, cumulative(parent.qty, weights), strict=True))
