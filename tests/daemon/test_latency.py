"""The order path's latency: stamped stage by stage by the order manager, summarized as
nearest-rank percentiles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.core.clock import NS_PER_MS
from engine.core.models import OrderStatus
from engine.latency import LatencyBook, OrderLatency
from engine.orders.language import parse
from tests.tui.conftest import WARM_UP, deterministic_engine, step


@pytest.fixture
def started(tmp_path: Path):
    """``started(latency_ms)``: a warmed-up deterministic engine, stopped afterwards."""
    engines = []

    def build(latency_ms: float):
        engine = deterministic_engine(tmp_path, **{"venue.latency_ms": latency_ms})
        asyncio.run(engine.start())
        step(engine, WARM_UP)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        asyncio.run(engine.stop(cancel_open=False))


def test_a_filled_market_order_has_every_stage_stamped_from_the_engine_clock(started):
    engine = started(5)
    quoted_ns = engine.market.quote("AAPL").ts_ns
    result = engine.oms.submit(parse("buy 10 AAPL").request)
    submitted_ns = engine.clock.now_ns()
    while engine.oms.order(result.order.id).status is not OrderStatus.FILLED:
        engine.driver.step()
    record = engine.oms.latency.get(result.order.id)
    assert record.decision_ns == record.risk_ns == record.submit_ns == submitted_ns
    assert record.event_ns == quoted_ns
    assert record.ack_ns - record.submit_ns == 5 * NS_PER_MS
    assert record.fill_ns == record.ack_ns


def test_an_order_resting_on_the_book_is_acknowledged_but_not_filled(started):
    engine = started(5)
    result = engine.oms.submit(parse("buy 10 AAPL lmt 50 gtc").request)
    for _ in range(50):
        engine.driver.step()
    record = engine.oms.latency.get(result.order.id)
    assert record.ack_ns is not None
    assert record.fill_ns is None
    assert record.stages_ms()["fill"] is None


def _record(order_id: str, total_ms: int) -> OrderLatency:
    ms = NS_PER_MS
    return OrderLatency(order_id, 0, 0, 0, 0, total_ms * ms, total_ms * ms)


def test_percentiles_are_nearest_rank_over_the_kept_orders():
    book = LatencyBook()
    for n in range(1, 11):  # totals of 1..10 ms
        book.submitted(_record(f"o{n}", n))
    total = {s.stage: s for s in book.summary()}["total"]
    # Nearest rank of 10 values: p50 is the 5th, p90 the 9th, p99 the 10th.
    assert (total.count, total.p50_ms, total.p90_ms, total.p99_ms) == (10, 5.0, 9.0, 10.0)


def test_the_book_keeps_only_the_newest_orders():
    book = LatencyBook(keep=3)
    for n in range(1, 6):
        book.submitted(_record(f"o{n}", n))
    assert [r.order_id for r in book.newest(10)] == ["o5", "o4", "o3"]
    assert book.get("o1") is None


def test_stages_are_measured_from_the_one_before():
    ms = NS_PER_MS
    record = OrderLatency("o", 0, 1 * ms, 3 * ms, 6 * ms, 10 * ms, 15 * ms)
    assert record.stages_ms() == {
        "decision": 1.0,
        "risk": 2.0,
        "submit": 3.0,
        "ack": 4.0,
        "fill": 5.0,
    }
    assert record.total_ms() == 15.0


def test_the_health_snapshot_carries_the_breakdown_and_the_percentiles(started):
    engine = started(0)
    result = engine.oms.submit(parse("buy 1 MSFT").request)
    engine.driver.step()
    health = engine.health.snapshot()
    assert health.order(result.order.id) == engine.oms.latency.get(result.order.id)
    assert {s.stage for s in health.order_latency} == {
        "decision",
        "risk",
        "submit",
        "ack",
        "fill",
        "total",
    }
