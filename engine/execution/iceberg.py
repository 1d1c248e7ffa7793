"""Iceberg: only ``display_qty`` shows at the parent's limit; the next part shows when it fills."""

from __future__ import annotations

from decimal import Decimal

from engine.execution.algo import Algo
from engine.execution.spec import IcebergSpec


class Iceberg(Algo):
    """The target is always the whole parent; each child is one display clip at the limit."""

    def target(self) -> Decimal:
        return self.parent.qty

    def clip(self, wanted: Decimal) -> Decimal:
        spec = self.parent.spec
        assert isinstance(spec, IcebergSpec)
        return min(wanted, spec.display_qty)
