"""Property: whatever the market does, children never exceed the parent's quantity or its limit."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.clock import NS_PER_SECOND
from engine.core.models import OrderType, Side
from engine.execution import ChildPricing, IcebergSpec, PovSpec, TwapSpec, VwapSpec
from tests.execution.harness import D, Desk, config, request

specs = st.one_of(
    st.builds(TwapSpec, st.integers(10, 600), st.integers(1, 12)),
    st.builds(VwapSpec, st.integers(60, 900)),
    st.builds(
        PovSpec,
        st.integers(1, 50).map(Decimal),
        st.integers(1, 50).map(Decimal),
        st.none() | st.integers(50, 500).map(Decimal),
    ),
    st.builds(IcebergSpec, st.integers(1, 400).map(Decimal)),
)
# One market step: seconds to wait, the bid in cents, and the volume traded there.
steps = st.lists(st.tuples(st.integers(0, 120), st.integers(980, 1020), st.integers(0, 5000)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs,
    side=st.sampled_from(["buy", "sell"]),
    qty=st.integers(1, 3000),
    limit_cents=st.none() | st.integers(990, 1010),
    touch=st.booleans(),
    market=steps,
)
def test_children_never_exceed_the_parents_quantity_or_limit(
    spec, side, qty, limit_cents, touch, market
):
    if isinstance(spec, IcebergSpec) and limit_cents is None:
        limit_cents = 1000
    limit = None if limit_cents is None else str(Decimal(limit_cents) / 100)
    pricing = ChildPricing.TOUCH if touch else ChildPricing.MARKET
    with tempfile.TemporaryDirectory() as tmp:
        desk = Desk(Path(tmp), config=config(child_pricing=pricing, child_interval_ms=600))
        desk.quote("10.00", "10.02", size=700)
        parent = desk.service.submit(request(side, str(qty), limit=limit), spec).parent
        for wait_s, bid_cents, volume in market:
            desk.advance(wait_s * NS_PER_SECOND)
            bid = Decimal(bid_cents) / 100
            desk.quote(str(bid), str(bid + D("0.02")), size=700)
            if volume:
                desk.trade(str(bid + D("0.01")), volume)
            desk.settle()
            children = desk.children(parent.id)
            working = sum((c.leaves_qty for c in children if c.is_open), D(0))
            assert parent.filled_qty + working <= parent.qty
            assert sum((c.filled_qty for c in children), D(0)) == parent.filled_qty
            for child in children:
                assert child.side is Side(side)
                if limit is None:
                    continue
                assert child.type is OrderType.LIMIT
                if child.side is Side.BUY:
                    assert child.limit_price <= D(limit)
                else:
                    assert child.limit_price >= D(limit)
                if child.filled_avg_price is not None:
                    if child.side is Side.BUY:
                        assert child.filled_avg_price <= D(limit)
                    else:
                        assert child.filled_avg_price >= D(limit)
        desk.journal.close()
