"""Algos through the console seam: order lines start, pause, resume and cancel parents."""

from __future__ import annotations

import asyncio

import pytest

from engine.client import Cursor, LocalClient
from engine.core.clock import NS_PER_SECOND
from engine.core.models import OrderStatus
from engine.execution import ParentState
from tests.tui.conftest import deterministic_engine


@pytest.fixture
def client(tmp_path):
    engine = deterministic_engine(tmp_path)
    client = LocalClient(engine, run_feed=False)
    asyncio.run(client.start())
    for _ in range(200):
        engine.driver.step()
    yield client
    asyncio.run(client.stop())


def run(coro):
    return asyncio.run(coro)


def step_for(client: LocalClient, seconds: int) -> None:
    engine = client.engine
    until = engine.clock.now_ns() + seconds * NS_PER_SECOND
    while engine.clock.now_ns() < until and engine.driver.step():
        pass


def test_an_algo_line_starts_a_parent_shown_with_its_children(client):
    outcome = run(client.execute("buy 300 AAPL twap 3m slices 3"))
    assert (outcome.ok, outcome.message, outcome.order_id) == (
        True,
        "algo-1 started: buy 300 AAPL twap",
        "algo-1",
    )
    step_for(client, 200)
    book = run(client.snapshot(Cursor())).book
    [parent] = book.parents
    assert (parent.id, parent.state, parent.filled_qty, parent.algo) == (
        "algo-1",
        ParentState.COMPLETED,
        300,
        "twap",
    )
    children = [o for o in book.orders if o.parent_id == "algo-1"]
    assert sorted(o.id for o in children) == sorted(parent.children)
    assert [o.qty for o in children] == [100, 100, 100]
    assert parent.quality.participation_pct is not None


def test_the_preview_of_an_algo_line_names_it_and_leaves_risk_to_the_children(client):
    preview = run(client.preview("buy 50000 AAPL vwap 1h"))
    assert preview.ok
    assert preview.summary == "buy 50000 AAPL vwap 1h (each child checked by risk)"
    assert preview.violations == ()


def test_pause_resume_and_cancel_lines_control_the_parent(client):
    run(client.execute("buy 1000 MSFT twap 10m"))
    paused = run(client.execute("pause algo-1"))
    assert (paused.ok, paused.message) == (True, "algo-1 paused")
    again = run(client.execute("pause 1"))
    assert (again.ok, again.message) == (False, "algo-1 is paused, not working")
    assert run(client.execute("resume 1")).message == "algo-1 resumed"
    cancelled = run(client.cancel("algo-1"))
    assert (cancelled.ok, cancelled.message) == (True, "algo-1 canceled")
    step_for(client, 1)
    parent = client.engine.execution.parent("algo-1")
    assert parent.state is ParentState.CANCELED
    assert all(
        o.status in (OrderStatus.CANCELED, OrderStatus.FILLED)
        for o in client.engine.execution.children("algo-1")
    )


def test_a_pause_shows_in_the_next_snapshot_without_an_order_change(client):
    run(client.execute("buy 1000 MSFT pov 5%"))
    first = run(client.snapshot(Cursor()))
    run(client.execute("pause algo-1"))
    later = run(client.snapshot(first.cursor))
    assert later.book is not None
    assert later.book.parents[0].state is ParentState.PAUSED
