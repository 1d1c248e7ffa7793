"""Brackets, OTO and OCO emulated by the sim venue, seen through the OMS, checked to the cent."""

from __future__ import annotations

import pytest

from engine.core.models import OrderClass, OrderStatus, OrderType, Side
from engine.orders import parse
from tests.execution.harness import D, Desk, config

ENTRY = "td-240315100000-1"


@pytest.fixture
def desk(tmp_path) -> Desk:
    d = Desk(tmp_path, config=config())
    d.quote("10.00", "10.02")
    return d


def send(desk: Desk, line: str):
    result = desk.oms.submit(parse(line).request)
    assert result.accepted, result.message
    desk.settle()
    return result.order


def statuses(desk: Desk) -> dict[str, OrderStatus]:
    return {o.id: o.status for o in desk.oms.orders()}


def test_a_bracket_entry_fill_brings_both_legs_to_life(desk):
    entry = send(desk, "buy 100 XYZ lmt 10.02 tp 10.50 sl 9.80")
    assert entry.order_class is OrderClass.BRACKET
    assert statuses(desk) == {
        ENTRY: OrderStatus.FILLED,
        f"{ENTRY}-tp": OrderStatus.NEW,
        f"{ENTRY}-sl": OrderStatus.NEW,
    }
    tp, sl = desk.oms.order(f"{ENTRY}-tp"), desk.oms.order(f"{ENTRY}-sl")
    assert (tp.side, tp.qty, tp.type, tp.limit_price, tp.parent_id) == (
        Side.SELL,
        D(100),
        OrderType.LIMIT,
        D("10.50"),
        ENTRY,
    )
    assert (sl.side, sl.qty, sl.type, sl.stop_price) == (
        Side.SELL,
        D(100),
        OrderType.STOP,
        D("9.80"),
    )


def test_the_take_profit_filling_cancels_the_stop_loss(desk):
    send(desk, "buy 100 XYZ lmt 10.02 tp 10.50 sl 9.80")
    desk.quote("10.50", "10.52")
    desk.settle()
    assert statuses(desk)[f"{ENTRY}-tp"] is OrderStatus.FILLED
    sl = desk.oms.order(f"{ENTRY}-sl")
    assert (sl.status, sl.reason) == (OrderStatus.CANCELED, f"the other leg {ENTRY}-tp filled")
    position = desk.oms.position("XYZ")
    # bought 100 at 10.02, sold 100 at the 10.50 bid: +$48.00
    assert (position.qty, position.realized_pnl) == (D(0), D("48.00"))


def test_the_stop_loss_filling_cancels_the_take_profit(desk):
    send(desk, "buy 100 XYZ lmt 10.02 tp 10.50 sl 9.80")
    desk.quote("9.79", "9.81")  # bid 9.79 <= stop 9.80: the stop sells at the bid
    desk.settle()
    assert statuses(desk)[f"{ENTRY}-sl"] is OrderStatus.FILLED
    assert statuses(desk)[f"{ENTRY}-tp"] is OrderStatus.CANCELED
    position = desk.oms.position("XYZ")
    # bought 100 at 10.02, sold 100 at 9.79: -$23.00
    assert (position.qty, position.realized_pnl) == (D(0), D("-23.00"))
    assert desk.oms.account().cash == D(100_000_000) - D("23.00")


def test_a_stop_limit_leg_rests_at_its_limit(desk):
    send(desk, "sell 100 XYZ lmt 10.00 tp 9.50 sl 10.30 sll 10.35")
    sl = desk.oms.order(f"{ENTRY}-sl")
    assert (sl.side, sl.type, sl.stop_price, sl.limit_price) == (
        Side.BUY,
        OrderType.STOP_LIMIT,
        D("10.30"),
        D("10.35"),
    )
    desk.quote("10.38", "10.40")  # ask 10.40 >= stop 10.30 triggers; the 10.35 limit rests
    desk.settle()
    assert statuses(desk)[f"{ENTRY}-sl"] is OrderStatus.NEW
    desk.quote("10.33", "10.35")
    desk.settle()
    assert statuses(desk)[f"{ENTRY}-sl"] is OrderStatus.FILLED
    assert statuses(desk)[f"{ENTRY}-tp"] is OrderStatus.CANCELED
    # sold 100 at 10.00, bought back at 10.35: -$35.00
    assert desk.oms.position("XYZ").realized_pnl == D("-35.00")


def test_an_oto_has_its_one_leg_and_nothing_to_cancel(desk):
    send(desk, "buy 100 XYZ tp 10.10")
    assert statuses(desk) == {ENTRY: OrderStatus.FILLED, f"{ENTRY}-tp": OrderStatus.NEW}
    desk.quote("10.10", "10.12")
    desk.settle()
    assert statuses(desk)[f"{ENTRY}-tp"] is OrderStatus.FILLED
    # bought at the 10.02 ask, sold at 10.10: +$8.00
    assert desk.oms.position("XYZ").realized_pnl == D("8.00")


def test_an_unfilled_entry_has_no_legs(desk):
    send(desk, "buy 100 XYZ lmt 9.90 tp 10.50 sl 9.50")
    desk.oms.cancel(ENTRY)
    desk.settle()
    assert statuses(desk) == {ENTRY: OrderStatus.CANCELED}


def test_an_oco_exit_pair_cancels_the_limit_when_the_stop_fills(desk):
    send(desk, "buy 100 XYZ")  # the position the pair will close: 100 at 10.02
    oco = send(desk, "sell 100 XYZ oco tp 10.50 sl 9.80")
    assert statuses(desk)[oco.id] is OrderStatus.NEW
    assert statuses(desk)[f"{oco.id}-sl"] is OrderStatus.NEW
    desk.quote("9.75", "9.77")
    desk.settle()
    assert statuses(desk)[f"{oco.id}-sl"] is OrderStatus.FILLED
    assert desk.oms.order(oco.id).status is OrderStatus.CANCELED
    # 100 at 10.02 sold at the 9.75 bid: -$27.00
    assert desk.oms.position("XYZ").realized_pnl == D("-27.00")


def test_an_oco_exit_pair_cancels_the_stop_when_the_limit_fills(desk):
    send(desk, "buy 100 XYZ")
    oco = send(desk, "sell 100 XYZ oco tp 10.50 sl 9.80")
    desk.quote("10.55", "10.57")
    desk.settle()
    assert desk.oms.order(oco.id).status is OrderStatus.FILLED
    assert desk.oms.order(f"{oco.id}-sl").status is OrderStatus.CANCELED
    # sold at the 10.55 bid (improving on the 10.50 limit): +$53.00
    assert desk.oms.position("XYZ").realized_pnl == D("53.00")
