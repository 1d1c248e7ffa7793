"""Pause, resume, cancel, the kill switch, risk refusals and restarts of algo parents."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.core.bus import Topic
from engine.core.clock import NS_PER_SECOND
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import OrderStatus
from engine.execution import ChildPricing, ParentState, RestartPolicy, TwapSpec
from engine.journal import EventKind
from tests.execution.harness import ROOMY_RISK, D, Desk, config, request

MINUTE = 60 * NS_PER_SECOND
RESTING = config(child_pricing=ChildPricing.TOUCH)  # children rest at the bid: nothing fills


@pytest.fixture
def desk(tmp_path) -> Desk:
    d = Desk(tmp_path, config=RESTING)
    d.quote("10.00", "10.02")
    return d


def test_cancelling_a_parent_cancels_its_working_child(desk):
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=2)).parent
    desk.settle()
    assert desk.children(parent.id)[0].status is OrderStatus.NEW
    result = desk.service.cancel(parent.id)
    desk.settle()
    assert result.message == "algo-1 canceled"
    assert parent.state is ParentState.CANCELED
    assert [c.status for c in desk.children(parent.id)] == [OrderStatus.CANCELED]
    desk.advance(10 * MINUTE)
    assert len(desk.children(parent.id)) == 1  # no slice after the cancel


def test_a_child_refused_by_risk_pauses_the_parent_with_the_reason(tmp_path):
    risk = dataclasses.replace(ROOMY_RISK, max_order_qty=D(400))
    desk = Desk(tmp_path, risk_config=risk, config=RESTING)
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=2)).parent
    assert parent.state is ParentState.PAUSED
    assert parent.reason == (
        "child refused: rejected by risk: order quantity 500 is above the max order quantity of 400"
    )
    assert desk.children(parent.id) == []
    assert desk.alerts[-1].message == f"algo-1 paused: {parent.reason}"


def test_a_paused_parent_sends_nothing_until_resumed(desk):
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=2)).parent
    desk.settle()
    desk.service.pause("1")
    desk.settle()
    assert desk.children(parent.id)[0].status is OrderStatus.CANCELED
    desk.advance(6 * MINUTE)  # the second slice passes while paused
    assert len(desk.children(parent.id)) == 1
    desk.service.resume("algo-1")
    # Catching up: both slices' 1000, nothing filled so far.
    assert [c.qty for c in desk.children(parent.id)] == [D(500), D(1000)]
    assert parent.state is ParentState.WORKING


def test_the_kill_switch_cancels_every_algo_and_its_children(desk):
    first = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=2)).parent
    second = desk.service.submit(request("sell", "800", symbol="XYZ"), TwapSpec(600, 4)).parent
    desk.settle()
    desk.oms.kill("test")
    desk.settle()
    for parent in (first, second):
        assert parent.state is ParentState.CANCELED
        assert parent.reason == "kill switch: test"
        assert all(c.status is OrderStatus.CANCELED for c in desk.children(parent.id))
    desk.advance(10 * MINUTE)
    assert len(desk.children(first.id)) == len(desk.children(second.id)) == 1


def test_an_algo_is_refused_while_the_kill_switch_is_engaged(desk):
    desk.oms.kill("test")
    result = desk.service.submit(request("buy", "100"), TwapSpec(60))
    assert (result.accepted, result.message) == (
        False,
        "the kill switch is engaged; no algo was started",
    )


def test_a_restart_mid_algo_resumes_the_schedule(tmp_path):
    desk = Desk(tmp_path, config=config())
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(400, slices=4)).parent
    desk.advance(150 * NS_PER_SECOND)  # slices at 0 and 100 s filled: 500
    assert parent.filled_qty == D(500)
    # Down for 110 s: back at 260 s, the 200 s slice is due at once, the 300 s one on time.
    again = desk.restart(at_ns=desk.clock.now_ns() + 110 * NS_PER_SECOND)
    again.quote("10.00", "10.02")
    resumed = again.service.parent(parent.id)
    assert resumed.state is ParentState.WORKING
    assert resumed.filled_qty == D(500)
    again.advance(200 * NS_PER_SECOND)
    assert [c.qty for c in again.children(parent.id)] == [D(250)] * 4
    assert [c.created_ns - desk.start_ns for c in again.children(parent.id)] == [
        0,
        100 * NS_PER_SECOND,
        260 * NS_PER_SECOND,
        300 * NS_PER_SECOND,
    ]
    assert resumed.state is ParentState.COMPLETED
    assert resumed.filled_qty == D(1000)


def test_a_restart_with_on_restart_cancel_cancels_the_algo_and_its_children(tmp_path):
    desk = Desk(tmp_path, config=RESTING)
    desk.quote("10.00", "10.02")
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(400, slices=4)).parent
    desk.settle()
    again = desk.restart(config=dataclasses.replace(RESTING, on_restart=RestartPolicy.CANCEL))
    again.settle()
    restored = again.service.parent(parent.id)
    assert restored.state is ParentState.CANCELED
    assert restored.reason == "canceled at restart (execution.on_restart = cancel)"
    assert [c.status for c in again.children(parent.id)] == [OrderStatus.CANCELED]


def test_the_journal_records_each_state_change_with_its_quality(desk):
    parent = desk.service.submit(request("buy", "1000"), TwapSpec(600, slices=2)).parent
    desk.service.cancel(parent.id)
    events = [e for e in desk.journal.load_events(parent.id) if e.kind is EventKind.ALGO]
    assert [json.loads(e.payload)["state"] for e in events] == ["working", "canceled"]
    quality = json.loads(events[-1].payload)["quality"]
    assert quality["arrival_price"] == "10.01"
    assert quality["schedule_deviation_pct"] == "-50.00"  # 500 scheduled, none filled


def test_a_child_expiring_after_the_schedule_ended_fails_the_parent(desk):
    parent = desk.service.submit(request("buy", "100"), TwapSpec(60, slices=1)).parent
    desk.advance(2 * MINUTE)  # the one child rests at the bid past the end
    desk.bus.publish(
        Topic.SESSION, SessionEvent(desk.clock.now_ns(), SessionPhase.CLOSE, "2024-03-15")
    )
    desk.settle()
    child = desk.children(parent.id)[0]
    assert child.status is OrderStatus.EXPIRED
    assert parent.state is ParentState.FAILED
    assert parent.reason == f"child {child.id} expired after the schedule ended"
