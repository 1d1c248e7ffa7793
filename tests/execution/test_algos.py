"""Algos on a SimClock against the sim venue: schedules checked slice by slice, by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.core.clock import NS_PER_SECOND
from engine.core.models import OrderStatus, OrderType
from engine.execution import (
    IcebergSpec,
    ParentState,
    PovSpec,
    TwapSpec,
    VwapSpec,
)
from engine.execution.curve import bucket_weights
from engine.execution.twap import twap_times
from tests.execution.harness import D, Desk, config, request

MINUTE = 60 * NS_PER_SECOND


@pytest.fixture
def desk(tmp_path) -> Desk:
    d = Desk(tmp_path, config=config())
    d.quote("10.00", "10.02")
    return d


def child_sizes(desk: Desk, parent_id: str) -> list[Decimal]:
    return [c.qty for c in desk.children(parent_id)]


def test_twap_sends_equal_slices_at_equal_intervals(desk):
    # 5000 over 30 minutes in 10 slices: 500 every 3 minutes, the first at once.
    result = desk.service.submit(request("buy", "5000"), TwapSpec(30 * 60))
    parent = result.parent
    desk.advance(31 * MINUTE)
    children = desk.children(parent.id)
    assert [c.qty for c in children] == [D(500)] * 10
    assert [c.created_ns - desk.start_ns for c in children] == [i * 3 * MINUTE for i in range(10)]
    assert parent.state is ParentState.COMPLETED
    assert parent.filled_qty == D(5000)
    assert parent.avg_price == D("10.02")


def test_twap_slices_are_due_at_their_nominal_times(desk):
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=3)).parent
    desk.settle()
    # Slices of floor(1000*1/3)=333, floor(1000*2/3)-333=333, 1000-666=334 at 0, 200 s, 400 s.
    desk.advance(200 * NS_PER_SECOND - 2 * 5_000_000)
    assert child_sizes(desk, parent.id) == [D(333), D(333)]
    assert desk.children(parent.id)[1].created_ns == desk.start_ns + 200 * NS_PER_SECOND
    desk.advance(200 * NS_PER_SECOND)
    desk.settle()
    assert child_sizes(desk, parent.id) == [D(333), D(333), D(334)]
    assert parent.state is ParentState.COMPLETED


def test_twap_jitter_keeps_each_slice_within_its_bounds():
    interval = 180 * NS_PER_SECOND
    times = twap_times(0, 10 * interval, 10, Decimal(20), seed=42)
    assert times[0] == 0
    for i, ts in enumerate(times[1:], start=1):
        assert abs(ts - i * interval) <= interval // 5
    assert times != [i * interval for i in range(10)]
    assert times == twap_times(0, 10 * interval, 10, Decimal(20), seed=42)


def test_vwap_follows_the_volume_curve(tmp_path):
    class Steps:
        # minute m of the session weighs 1 before 10:02 and 3 after: 10:00-10:04 is 1, 1, 3, 3.
        def minute_weights(self, symbol, session_date):
            return [1.0] * 32 + [3.0] * 358

    desk = Desk(tmp_path, config=config(vwap_bucket_s=60))
    desk.service._curve = Steps()
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("sell", "800"), VwapSpec(duration_s=240)).parent
    desk.settle()
    for _ in range(4):
        desk.advance(MINUTE)
        desk.settle()
    # weights 1, 1, 3, 3 of 8: cumulative floor(800*1/8)=100, 200, 500, 800.
    assert child_sizes(desk, parent.id) == [D(100), D(100), D(300), D(300)]
    assert parent.state is ParentState.COMPLETED
    assert parent.avg_price == D("10.00")


def test_vwap_until_a_time_of_day_ends_then(desk):
    from datetime import time

    parent = desk.service.submit(request("buy", "100"), VwapSpec(until=time(10, 30))).parent
    assert parent.end_ns == desk.start_ns + 30 * MINUTE


def test_vwap_until_a_time_already_past_is_refused(desk):
    from datetime import time

    result = desk.service.submit(request("buy", "100"), VwapSpec(until=time(9, 45)))
    assert not result.accepted
    assert result.message == "09:45 has already passed today"


def test_u_shape_weighs_the_open_more_than_midday():
    from datetime import datetime

    from engine.core.clock import NEW_YORK, datetime_to_ns
    from engine.execution import UShapeCurve

    open_ns = datetime_to_ns(datetime(2024, 3, 15, 9, 30, tzinfo=NEW_YORK))
    noon_ns = datetime_to_ns(datetime(2024, 3, 15, 12, 45, tzinfo=NEW_YORK))
    first = bucket_weights(UShapeCurve(), "X", open_ns, open_ns + MINUTE, MINUTE)[0]
    midday = bucket_weights(UShapeCurve(), "X", noon_ns, noon_ns + MINUTE, MINUTE)[0]
    assert first > 3 * midday


def test_pov_participates_in_traded_volume_with_clips(tmp_path):
    # Children at least a second apart: risk refuses an identical order within 500 ms.
    desk = Desk(tmp_path, config=config(child_interval_ms=1000))
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("buy", "1000"), PovSpec(D(10), D(50), D(80))).parent
    desk.trade("10.01", 400)  # target 40 < min clip 50: wait
    desk.settle()
    assert child_sizes(desk, parent.id) == []
    desk.trade("10.01", 600)  # target 100: one clip, capped at 80
    desk.settle()
    assert child_sizes(desk, parent.id) == [D(80)]
    desk.advance(NS_PER_SECOND)
    desk.trade("10.01", 3000)  # target 400, filled 80: 320 wanted, 80 at most
    desk.settle()
    assert child_sizes(desk, parent.id) == [D(80), D(80)]
    desk.advance(NS_PER_SECOND)  # the spacing timer sends the next clip without a trade
    assert child_sizes(desk, parent.id) == [D(80), D(80), D(80)]
    assert parent.market_volume == 4000


def test_iceberg_shows_the_display_size_and_replenishes_on_fill(tmp_path):
    desk = Desk(tmp_path, config=config(child_interval_ms=1000))
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("sell", "1000", limit="10.05"), IcebergSpec(D(300))).parent
    desk.settle()
    first = desk.children(parent.id)[0]
    assert (first.qty, first.type, first.limit_price) == (D(300), OrderType.LIMIT, D("10.05"))
    assert first.status is OrderStatus.NEW
    for bid in ("10.05", "10.06", "10.07", "10.08"):
        desk.quote(bid, "10.10")  # the bid reaches the limit: the shown clip fills at the bid
        desk.settle()
        desk.advance(NS_PER_SECOND)  # the next clip shows one child interval later
    assert child_sizes(desk, parent.id) == [D(300), D(300), D(300), D(100)]
    assert parent.state is ParentState.COMPLETED
    # Each new clip arrives while the last bid still stands and sells into it at once:
    # 300 at 10.05 (resting), 300 at 10.05, 300 at 10.06, 100 at 10.07 = 10,055.00 / 1000.
    assert parent.avg_price == D("10.055")


def test_an_iceberg_needs_a_limit_price(desk):
    result = desk.service.submit(request("sell", "1000"), IcebergSpec(D(100)))
    assert not result.accepted
    assert result.message == "an iceberg needs a limit price (lmt PRICE)"


def test_children_carry_the_parent_id_and_algo_source(desk):
    parent = desk.service.submit(request("buy", "100"), TwapSpec(60, slices=1)).parent
    child = desk.children(parent.id)[0]
    assert (child.parent_id, child.source) == (parent.id, f"algo:{parent.id}")


def test_touch_pricing_caps_children_at_the_parent_limit(tmp_path):
    from engine.execution import ChildPricing

    desk = Desk(tmp_path, config=config(child_pricing=ChildPricing.TOUCH, touch_offset=D("0.05")))
    desk.quote("10.00", "10.10")
    parent = desk.service.submit(request("buy", "100", limit="10.03"), TwapSpec(60, 1)).parent
    # bid 10.00 + 0.05 = 10.05, capped at the parent's 10.03
    assert desk.children(parent.id)[0].limit_price == D("10.03")


def test_a_completed_algo_says_how_it_went(desk):
    desk.service.submit(request("buy", "200"), TwapSpec(60, slices=2))
    desk.trade("10.01", 2000)
    desk.advance(MINUTE)
    # 200 bought at the 10.02 ask against a 10.01 arrival mid and a 10.01 interval VWAP.
    assert desk.alerts[-1].message == (
        "algo-1 completed: 200 XYZ at 10.0200, 9.99 bps vs arrival, 9.99 bps vs interval VWAP, "
        "10.00% participation, shortfall $2.00"
    )
