"""The order manager: state machine, idempotency, journal-first, recovery, kill switch, replace.

The broker is a small fake that records commands and answers queries from what
each test sets up; the test plays the broker's side by publishing
``OrderUpdate``s. Risk is the real ``RiskEngine``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_SECOND, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import Alert, SessionEvent, SessionPhase
from engine.core.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Quote,
    Side,
    TimeInForce,
    TradeEvent,
)
from engine.journal import EventKind, Journal
from engine.oms import (
    NEVER_REACHED_BROKER,
    TRANSITIONS,
    OrderManager,
    is_legal_transition,
)
from engine.risk.config import RiskConfig
from engine.risk.engine import RiskEngine
from engine.risk.kill_switch import KillSwitchState
from engine.risk.types import RiskCheck, RiskDecision

D = Decimal
START_NS = datetime_to_ns(datetime(2024, 3, 15, 9, 30, tzinfo=NEW_YORK))
TAG = "240315093000"
STARTING_CASH = D(100_000)
MULTIPLIER = D(2)
_EVENT_FOR = {
    OrderStatus.PARTIALLY_FILLED: TradeEvent.PARTIAL_FILL,
    OrderStatus.FILLED: TradeEvent.FILL,
}


class FakeBroker:
    """A Broker that records commands and answers queries from what the test set up."""

    name = "fake"

    def __init__(self, *, cash: Decimal = STARTING_CASH, multiplier: Decimal = MULTIPLIER) -> None:
        self.cash = cash
        self.multiplier = multiplier
        self.submitted: list[Order] = []
        self.cancels: list[str] = []
        self.replaces: list[tuple[str, Order]] = []
        self.remote: dict[str, Order] = {}
        self.remote_fills: list[Fill] = []
        self.remote_positions: list[Position] = []
        self.refusal: str | None = None
        self.on_submit: Callable[[Order], None] | None = None
        self.fills_asked_since: list[int] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def submit(self, order: Order) -> None:
        if self.on_submit is not None:
            self.on_submit(order)
        if self.refusal:
            raise BrokerError(self.refusal)
        self.submitted.append(dataclasses.replace(order))
        self.remote[order.id] = dataclasses.replace(order)

    def cancel(self, order_id: str) -> None:
        if self.refusal:
            raise BrokerError(self.refusal)
        self.cancels.append(order_id)

    def replace(self, order_id: str, new_order: Order) -> None:
        if self.refusal:
            raise BrokerError(self.refusal)
        self.replaces.append((order_id, dataclasses.replace(new_order)))

    async def account(self) -> Account:
        return Account(
            cash=self.cash,
            equity=self.cash,
            buying_power=self.cash * self.multiplier,
            multiplier=self.multiplier,
            account_id="fake-1",
        )

    async def positions(self) -> list[Position]:
        return list(self.remote_positions)

    async def open_orders(self) -> list[Order]:
        return [dataclasses.replace(o) for o in self.remote.values() if o.is_open]

    async def get_order(self, order_id: str) -> Order | None:
        order = self.remote.get(order_id)
        return None if order is None else dataclasses.replace(order)

    async def fills_since(self, ts_ns: int) -> list[Fill]:
        self.fills_asked_since.append(ts_ns)
        return [f for f in self.remote_fills if f.ts_ns >= ts_ns]

    def instrument(self, symbol: str) -> Instrument | None:
        return Instrument(symbol) if symbol in ("AAPL", "MSFT", "IBM") else None


@dataclasses.dataclass
class Desk:
    """One wired-up order manager with everything it talks to, and what it published."""

    bus: MessageBus
    clock: SimClock
    market: MarketView
    broker: FakeBroker
    risk: RiskEngine
    journal: Journal
    oms: OrderManager
    published: list[tuple[str, Any]]
    exec_ids: Iterator[int]

    def quote(self, symbol: str, bid: str, ask: str) -> None:
        self.bus.publish(Topic.QUOTE, Quote(symbol, self.clock.now_ns(), D(bid), 500, D(ask), 500))

    def emit(
        self,
        order_id: str,
        status: OrderStatus,
        *,
        event: TradeEvent | None = None,
        filled: str = "0",
        avg: str | None = None,
        fill: Fill | None = None,
        replaced_by: str | None = None,
        reason: str = "",
    ) -> None:
        self.bus.publish(
            Topic.ORDER_UPDATE,
            OrderUpdate(
                event=event or _EVENT_FOR.get(status) or TradeEvent(status.value),
                order_id=order_id,
                ts_ns=self.clock.now_ns(),
                status=status,
                filled_qty=D(filled),
                filled_avg_price=None if avg is None else D(avg),
                fill=fill,
                replaced_by=replaced_by,
                reason=reason,
            ),
        )

    def fill(
        self, order: Order, qty: str, price: str, *, total: str | None = None, fee: str = "0"
    ) -> Fill:
        """Emit an execution of ``qty`` at ``price``; ``total`` is the order's filled qty after."""
        execution = Fill(
            f"exec-{next(self.exec_ids)}",
            order.id,
            order.symbol,
            order.side,
            D(qty),
            D(price),
            self.clock.now_ns(),
            D(fee),
        )
        done = D(total or qty)
        status = OrderStatus.FILLED if done == order.qty else OrderStatus.PARTIALLY_FILLED
        self.emit(order.id, status, filled=str(done), avg=price, fill=execution)
        return execution

    def buy(self, qty: str = "100", symbol: str = "AAPL", **fields: Any) -> Order:
        """Submit a request that must pass risk; returns the new order."""
        result = self.oms.submit(OrderRequest(symbol, Side.BUY, D(qty), **fields))
        assert result.accepted and result.order is not None, result.message
        return result.order

    def sell(self, qty: str = "100", symbol: str = "AAPL", **fields: Any) -> Order:
        result = self.oms.submit(OrderRequest(symbol, Side.SELL, D(qty), **fields))
        assert result.accepted and result.order is not None, result.message
        return result.order

    def topics(self, topic: str) -> list[Any]:
        return [message for t, message in self.published if t == topic]

    def restart(self, journal: Journal | None = None) -> Desk:
        """A new process: fresh bus, market, risk engine and OMS; the same broker and journal."""
        return make_desk(journal or self.journal, broker=self.broker, risk_config=self.risk.config)


def make_desk(
    journal: Journal | None = None,
    *,
    broker: FakeBroker | None = None,
    risk_config: RiskConfig | None = None,
    start: bool = True,
) -> Desk:
    bus = MessageBus()
    clock = SimClock(START_NS)
    market = MarketView(bus)
    broker = broker or FakeBroker()
    config = risk_config or RiskConfig(duplicate_window_ms=None, max_orders_per_second=None)
    risk = RiskEngine(config, clock, market)
    journal = journal or Journal(":memory:")
    oms = OrderManager(bus, clock, broker, risk, journal, market)
    published: list[tuple[str, Any]] = []
    for topic in Topic:
        if topic not in (Topic.QUOTE, Topic.TRADE, Topic.BAR, Topic.ORDER_UPDATE):
            bus.subscribe(topic, lambda message, t=topic: published.append((t, message)))
    desk = Desk(bus, clock, market, broker, risk, journal, oms, published, itertools.count(1))
    desk.quote("AAPL", "187.50", "187.52")
    desk.quote("MSFT", "400.00", "400.04")
    if start:
        asyncio.run(oms.start())
    return desk


@pytest.fixture
def desk() -> Desk:
    return make_desk()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Messages loguru logs at WARNING and above while the test runs."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def journal_with_order(status: OrderStatus, order_id: str = "td-seed-1") -> Journal:
    """A journal from an earlier session holding one AAPL buy order in ``status``."""
    journal = Journal(":memory:")
    order = Order(
        id=order_id,
        symbol="AAPL",
        side=Side.BUY,
        qty=D(100),
        type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        status=status,
        created_ns=START_NS - NS_PER_SECOND,
        updated_ns=START_NS - NS_PER_SECOND,
        limit_price=D("187.00"),
        filled_qty=D(0),
    )
    journal.save_order(order)
    return journal


def desk_with_order_in(status: OrderStatus) -> tuple[Desk, Order]:
    """An OMS started on a journal whose one order is in ``status``, the broker agreeing."""
    journal = journal_with_order(status)
    broker = FakeBroker()
    (order,) = journal.load_orders()
    broker.remote[order.id] = dataclasses.replace(order)
    desk = make_desk(journal, broker=broker)
    own = desk.oms.order(order.id)
    assert own is not None and own.status is status
    return desk, own


# -- the transition table -------------------------------------------------------------------

ALL_PAIRS = list(itertools.product(OrderStatus, OrderStatus))


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_status_pair_applies_if_legal_and_changes_nothing_if_not(current, new, warnings):
    desk, order = desk_with_order_in(current)
    before = dataclasses.replace(order)
    desk.clock.advance_by(NS_PER_SECOND)
    desk.emit(order.id, new)
    if is_legal_transition(current, new):
        assert order.status is new
    else:
        assert order == before
        assert any("illegal transition" in m for m in warnings)
        kinds = [e.kind for e in desk.journal.load_events(order.id)]
        assert kinds[-1] is EventKind.ILLEGAL_TRANSITION


def test_terminal_statuses_have_no_successors():
    assert {s for s in OrderStatus if not TRANSITIONS[s]} == {
        s for s in OrderStatus if s.is_terminal
    }


def test_every_open_status_may_be_restated():
    assert all(s in TRANSITIONS[s] for s in OrderStatus if s.is_open)


def test_the_table_covers_every_status():
    assert set(TRANSITIONS) == set(OrderStatus)


def test_a_legal_update_is_journaled_with_the_new_order_record(desk):
    order = desk.buy()
    desk.emit(order.id, OrderStatus.NEW)
    (saved,) = desk.journal.load_orders()
    assert saved.status is OrderStatus.NEW
    assert desk.journal.load_events(order.id)[-1].kind is EventKind.UPDATE


# -- submit ---------------------------------------------------------------------------------


def test_an_accepted_order_is_journaled_before_the_broker_sees_it(desk):
    journaled_at_send: list[bool] = []
    desk.broker.on_submit = lambda order: journaled_at_send.append(
        any(o.id == order.id for o in desk.journal.load_orders())
    )
    desk.buy()
    assert journaled_at_send == [True]


def test_an_accepted_order_is_pending_new_published_and_sent(desk):
    result = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(100)))
    assert result.accepted and result.order is not None
    assert result.order.status is OrderStatus.PENDING_NEW
    assert desk.topics(Topic.ORDER) == [result.order]
    assert [o.id for o in desk.broker.submitted] == [result.order.id]


def test_order_ids_carry_the_prefix_the_session_tag_and_a_sequence(desk):
    assert [desk.buy().id, desk.buy().id] == [f"td-{TAG}-1", f"td-{TAG}-2"]


def test_the_id_sequence_continues_after_a_restart(desk):
    desk.buy()
    desk.buy()
    assert desk.restart().buy().id == f"td-{TAG}-3"


def test_a_known_client_order_id_returns_the_existing_order_without_resending(desk):
    request = OrderRequest("AAPL", Side.BUY, D(100), client_order_id="mine-1")
    first = desk.oms.submit(request)
    second = desk.oms.submit(request)
    assert second.order is first.order
    assert len(desk.broker.submitted) == 1


def test_a_client_order_id_is_idempotent_across_a_restart(desk):
    request = OrderRequest("AAPL", Side.BUY, D(100), client_order_id="mine-1")
    desk.oms.submit(request)
    again = desk.restart()
    assert again.oms.submit(request).order == desk.oms.order("mine-1")
    assert len(desk.broker.submitted) == 1


def test_a_risk_rejection_is_journaled_published_and_never_sent(desk):
    result = desk.oms.submit(OrderRequest("ZZZZ", Side.BUY, D(100)))
    assert not result.accepted and result.decision is not None
    assert [r.reason for r in desk.journal.load_rejections()] == [result.decision.reason]
    assert desk.topics(Topic.RISK_REJECT) == [result.decision]
    assert desk.broker.submitted == []
    assert desk.oms.rejections() == [result.decision]


def test_a_soft_violation_needs_confirmation_and_passes_with_it(desk):
    # 3% through the ask: beyond the 2% soft collar, inside the 10% hard one.
    request = OrderRequest(
        "AAPL", Side.BUY, D(10), OrderType.LIMIT, limit_price=D("193.15"), tif=TimeInForce.DAY
    )
    unconfirmed = desk.oms.submit(request)
    confirmed = desk.oms.submit(request, confirmed=True)
    assert unconfirmed.message.startswith("needs confirmation")
    assert (unconfirmed.accepted, confirmed.accepted) == (False, True)


def test_no_order_is_accepted_before_start():
    desk = make_desk(start=False)
    result = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(100)))
    assert (result.accepted, desk.broker.submitted) == (False, [])


def test_a_broker_refusal_marks_the_order_rejected_with_the_brokers_reason(desk):
    desk.broker.refusal = "the broker is unreachable"
    result = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(100)))
    assert not result.accepted and result.order is not None
    assert (result.order.status, result.order.reason) == (
        OrderStatus.REJECTED,
        "the broker is unreachable",
    )
    assert desk.journal.load_orders()[0].status is OrderStatus.REJECTED


# -- fills ----------------------------------------------------------------------------------


def test_a_fill_updates_the_order_and_the_position(desk):
    order = desk.buy()
    desk.emit(order.id, OrderStatus.NEW)
    desk.fill(order, "100", "187.52")
    position = desk.oms.position("AAPL")
    assert (order.status, order.filled_qty, order.filled_avg_price) == (
        OrderStatus.FILLED,
        D(100),
        D("187.52"),
    )
    assert position is not None and (position.qty, position.avg_cost) == (D(100), D("187.52"))


def test_a_fill_is_journaled_before_it_is_published(desk):
    order = desk.buy()
    journaled: list[bool] = []
    desk.bus.subscribe(
        Topic.FILL,
        lambda fill: journaled.append(fill in desk.journal.load_fills()),
    )
    desk.fill(order, "100", "187.52")
    assert journaled == [True]


def test_a_fill_publishes_the_order_then_the_fill_then_the_position(desk):
    order = desk.buy()
    desk.published.clear()
    desk.fill(order, "100", "187.52")
    assert [t for t, _ in desk.published] == [Topic.ORDER, Topic.FILL, Topic.POSITION]


def test_a_fill_with_a_known_execution_id_is_ignored(desk):
    order = desk.buy()
    execution = desk.fill(order, "40", "187.52")
    desk.emit(order.id, OrderStatus.PARTIALLY_FILLED, filled="40", avg="187.52", fill=execution)
    assert desk.oms.position_qty("AAPL") == D(40)
    assert len(desk.oms.fills()) == len(desk.journal.load_fills()) == 1


def test_a_late_fill_on_a_cancelled_order_still_moves_the_position(desk, warnings):
    order = desk.buy()
    desk.emit(order.id, OrderStatus.CANCELED)
    desk.fill(order, "100", "187.52")
    assert order.status is OrderStatus.CANCELED
    assert desk.oms.position_qty("AAPL") == D(100)
    kinds = [e.kind for e in desk.journal.load_events(order.id)]
    assert EventKind.FILL_ANOMALY in kinds
    assert any("applied to the book anyway" in m for m in warnings)


def test_a_filled_qty_above_the_order_qty_is_not_taken(desk):
    order = desk.buy("100")
    desk.emit(order.id, OrderStatus.PARTIALLY_FILLED, filled="150")
    assert order.filled_qty == D(0)


def test_a_stale_lower_filled_qty_does_not_lower_it(desk):
    order = desk.buy("100")
    desk.fill(order, "60", "187.52")
    desk.emit(order.id, OrderStatus.PARTIALLY_FILLED, filled="20")
    assert order.filled_qty == D(60)


def test_an_update_for_an_unknown_order_is_journaled_and_ignored(desk, warnings):
    desk.emit("not-ours", OrderStatus.NEW)
    assert [e.kind for e in desk.journal.load_events("not-ours")] == [EventKind.UNKNOWN_ORDER]
    assert desk.oms.order("not-ours") is None
    assert any("unknown order not-ours" in m for m in warnings)


def test_fees_reduce_cash_in_the_account(desk):
    order = desk.buy("10")
    desk.fill(order, "10", "187.52", fee="0.35")
    # 100,000 - 1,875.20 - 0.35
    assert desk.oms.account().cash == D("98124.45")


# -- queries and the risk context -----------------------------------------------------------


def test_resolve_finds_an_order_by_id_by_number_and_by_hash_number(desk):
    desk.buy()
    second = desk.buy()
    found = [desk.oms.resolve(ref) for ref in (second.id, "2", "#2", "#9")]
    assert found == [second, second, second, None]


def test_open_orders_leave_out_finished_ones(desk):
    first, second = desk.buy(), desk.buy()
    desk.fill(first, "100", "187.52")
    assert desk.oms.open_orders() == [second]


def test_gross_exposure_marks_at_the_last_price_or_else_at_avg_cost(desk):
    desk.fill(desk.buy("10"), "10", "187.52")
    # IBM trades but has no quote yet: its position is marked at its avg cost, 131.00.
    for price in ("130.00", "132.00"):
        request = OrderRequest("IBM", Side.BUY, D(5), OrderType.LIMIT, limit_price=D(price))
        order = desk.oms.submit(request, confirmed=True).order
        assert order is not None
        desk.fill(order, "5", price)
    desk.quote("AAPL", "190.00", "190.02")
    # AAPL at the mid 190.01 x 10 + IBM 131.00 x 10
    assert desk.oms.gross_exposure() == D("1900.10") + D("1310.00")


def test_buying_power_is_equity_times_multiplier_less_gross_exposure(desk):
    order = desk.buy("100")
    desk.fill(order, "100", "187.52")
    desk.quote("AAPL", "190.00", "190.02")
    # cash 81,248.00 + 100 x 190.01 = 100,249.00; x 2 = 200,498.00; less 19,001.00
    assert desk.oms.buying_power() == D("181497.00")


def test_day_pnl_measures_from_the_session_start(desk):
    order = desk.buy("100")
    desk.fill(order, "100", "187.52", fee="1.00")
    desk.quote("AAPL", "188.00", "188.02")
    # (188.01 - 187.52) x 100 - 1.00
    assert desk.oms.day_pnl() == D("48.00")


def test_a_new_session_measures_day_pnl_from_the_equity_at_its_open(desk):
    order = desk.buy("100")
    desk.fill(order, "100", "187.52")
    desk.quote("AAPL", "188.00", "188.02")
    desk.bus.publish(
        Topic.SESSION, SessionEvent(desk.clock.now_ns(), SessionPhase.OPEN, "2024-03-18")
    )
    assert desk.oms.day_pnl() == D(0)


def test_the_account_reports_the_tracked_cash_equity_and_multiplier(desk):
    order = desk.buy("100")
    desk.fill(order, "100", "187.52")
    account = desk.oms.account()
    # marked at the AAPL mid 187.51
    assert (account.cash, account.equity, account.multiplier, account.account_id) == (
        D("81248.00"),
        D("99999.00"),
        D(2),
        "fake-1",
    )


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_journals_the_request_and_asks_the_broker(desk):
    order = desk.buy()
    result = desk.oms.cancel("#1")
    assert result.accepted and desk.broker.cancels == [order.id]
    assert desk.journal.load_events(order.id)[-1].kind is EventKind.CANCEL_REQUEST


def test_cancel_of_an_unknown_order_says_so(desk):
    result = desk.oms.cancel("#42")
    assert (result.accepted, result.message) == (False, "no order matches '#42'")


def test_cancel_of_a_filled_order_is_refused(desk):
    order = desk.buy()
    desk.fill(order, "100", "187.52")
    result = desk.oms.cancel(order.id)
    assert not result.accepted and desk.broker.cancels == []


def test_cancel_all_for_a_symbol_cancels_only_that_symbols_open_orders(desk):
    aapl, msft = desk.buy(symbol="AAPL"), desk.buy("10", symbol="MSFT")
    desk.oms.cancel_all("MSFT")
    assert desk.broker.cancels == [msft.id]
    assert aapl.id not in desk.broker.cancels


def test_stop_with_cancel_open_cancels_every_open_order_and_refuses_new_ones(desk):
    first, second = desk.buy(), desk.buy()
    asyncio.run(desk.oms.stop(cancel_open=True))
    assert desk.broker.cancels == [first.id, second.id]
    assert not desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(1))).accepted


# -- replace ----------------------------------------------------------------------------------


def limit_buy(desk: Desk, price: str = "187.00", qty: str = "100") -> Order:
    order = desk.buy(qty, type=OrderType.LIMIT, limit_price=D(price), tif=TimeInForce.GTC)
    desk.emit(order.id, OrderStatus.NEW)
    return order


def test_replace_marks_the_old_order_and_sends_a_new_one_that_replaces_it(desk):
    old = limit_buy(desk)
    result = desk.oms.replace(old.id, limit_price=D("187.10"))
    new = result.order
    assert result.accepted and new is not None
    assert (old.status, new.status, new.replaces) == (
        OrderStatus.PENDING_REPLACE,
        OrderStatus.PENDING_NEW,
        old.id,
    )
    assert (new.qty, new.limit_price, new.tif) == (D(100), D("187.10"), TimeInForce.GTC)
    assert [(old_id, sent.id) for old_id, sent in desk.broker.replaces] == [(old.id, new.id)]


def test_replace_then_replaced_and_new_updates_finish_the_swap(desk):
    old = limit_buy(desk)
    new = desk.oms.replace(old.id, qty=D(50)).order
    assert new is not None
    desk.emit(old.id, OrderStatus.REPLACED, replaced_by=new.id)
    desk.emit(new.id, OrderStatus.NEW)
    assert (old.status, old.replaced_by, new.status) == (
        OrderStatus.REPLACED,
        new.id,
        OrderStatus.NEW,
    )
    assert desk.oms.open_orders() == [new]


def test_replace_defaults_the_quantity_to_what_is_left_unfilled(desk):
    old = limit_buy(desk)
    desk.fill(old, "30", "187.00")
    new = desk.oms.replace(old.id, limit_price=D("187.05")).order
    assert new is not None and new.qty == D(70)


def test_replace_does_not_count_the_old_order_against_the_open_order_limit():
    desk = make_desk(
        risk_config=RiskConfig(
            duplicate_window_ms=None, max_orders_per_second=None, max_open_orders=1
        )
    )
    old = limit_buy(desk)
    assert desk.oms.replace(old.id, limit_price=D("187.05")).accepted


def test_a_rejected_replace_rejects_the_new_order_and_the_old_one_works_on(desk):
    old = limit_buy(desk)
    new = desk.oms.replace(old.id, limit_price=D("187.05")).order
    assert new is not None
    desk.emit(
        old.id,
        OrderStatus.NEW,
        event=TradeEvent.ORDER_REPLACE_REJECTED,
        reason="too late to replace",
    )
    assert (old.status, new.status) == (OrderStatus.NEW, OrderStatus.REJECTED)
    assert new.reason == "replace rejected: too late to replace"


def test_a_broker_refused_replace_restores_the_old_order(desk):
    old = limit_buy(desk)
    desk.broker.refusal = "the broker is unreachable"
    result = desk.oms.replace(old.id, limit_price=D("187.05"))
    assert not result.accepted and result.order is not None
    assert (old.status, result.order.status) == (OrderStatus.NEW, OrderStatus.REJECTED)


def test_an_order_already_being_replaced_cannot_be_replaced_again(desk):
    old = limit_buy(desk)
    desk.oms.replace(old.id, limit_price=D("187.05"))
    assert not desk.oms.replace(old.id, limit_price=D("187.06")).accepted


def test_a_replace_that_changes_nothing_is_refused(desk):
    old = limit_buy(desk)
    assert not desk.oms.replace(old.id).accepted


# -- kill switch and flatten -----------------------------------------------------------------


def test_kill_engages_the_switch_journals_and_publishes_it(desk):
    desk.oms.kill("trader pressed kill")
    assert desk.risk.kill_switch.engaged
    assert desk.topics(Topic.KILL_SWITCH) == [
        KillSwitchState(True, "trader pressed kill", START_NS)
    ]
    assert [e.kind for e in desk.journal.load_events()][-1] is EventKind.KILL


def test_kill_cancels_every_open_order(desk):
    first, second = desk.buy(), desk.buy("10", symbol="MSFT")
    desk.oms.kill()
    assert desk.broker.cancels == [first.id, second.id]


def test_the_kill_switch_blocks_an_order_that_increases_risk(desk):
    desk.oms.kill()
    result = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(10)))
    assert result.decision is not None
    assert [v.check for v in result.decision.violations] == [RiskCheck.KILL_SWITCH]


def test_the_kill_switch_lets_an_order_that_reduces_a_position_through(desk):
    desk.fill(desk.buy("100"), "100", "187.52")
    desk.oms.kill()
    assert desk.oms.submit(OrderRequest("AAPL", Side.SELL, D(40))).accepted


def test_the_kill_switch_stays_engaged_across_a_restart(desk):
    desk.oms.kill("trader pressed kill")
    again = desk.restart()
    assert (again.risk.kill_switch.engaged, again.risk.kill_switch.reason) == (
        True,
        "trader pressed kill",
    )


def test_only_an_explicit_reset_lets_increasing_orders_through_again(desk):
    desk.oms.kill()
    desk.clock.advance_by(3600 * NS_PER_SECOND)
    blocked = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(10)))
    desk.oms.reset_kill()
    allowed = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(10)))
    assert (blocked.accepted, allowed.accepted) == (False, True)
    assert [e.kind for e in desk.journal.load_events()].count(EventKind.KILL_RESET) == 1


def test_kill_with_flatten_closes_every_position_at_market(desk):
    desk.fill(desk.buy("100"), "100", "187.52")
    desk.fill(desk.sell("10", symbol="MSFT"), "10", "400.00")
    desk.broker.submitted.clear()
    desk.oms.kill(flatten=True)
    sent = [(o.symbol, o.side, o.qty, o.type) for o in desk.broker.submitted]
    assert sent == [
        ("AAPL", Side.SELL, D(100), OrderType.MARKET),
        ("MSFT", Side.BUY, D(10), OrderType.MARKET),
    ]


def test_kill_without_flatten_follows_the_risk_config(desk):
    desk.fill(desk.buy("100"), "100", "187.52")
    desk.broker.submitted.clear()
    desk.oms.kill()
    assert desk.broker.submitted == []


def test_flatten_waits_for_working_orders_to_end_then_closes_what_is_left(desk):
    desk.fill(desk.buy("100"), "100", "187.52")
    working = desk.sell("30", type=OrderType.LIMIT, limit_price=D("188.00"))
    desk.emit(working.id, OrderStatus.NEW)
    desk.broker.submitted.clear()
    (result,) = desk.oms.flatten("AAPL")
    sent_before = list(desk.broker.submitted)
    # The working sell fills 10 before the cancel lands.
    desk.fill(working, "10", "188.00")
    desk.emit(working.id, OrderStatus.CANCELED, filled="10", avg="188.00")
    assert (result.accepted, result.order, sent_before) == (True, None, [])
    assert [(o.side, o.qty) for o in desk.broker.submitted] == [(Side.SELL, D(90))]


def test_a_daily_loss_breach_after_a_fill_engages_the_kill_switch():
    desk = make_desk(
        risk_config=RiskConfig(
            duplicate_window_ms=None, max_orders_per_second=None, daily_loss_limit=D(100)
        )
    )
    order = desk.buy("100")
    desk.quote("AAPL", "186.00", "186.02")
    desk.fill(order, "100", "187.52")
    # marked at mid 186.01: (186.01 - 187.52) x 100 = -151.00
    assert desk.risk.kill_switch.engaged
    assert desk.risk.kill_switch.reason == "daily loss limit breached: day P&L is -$151.00"


def test_check_daily_loss_trips_on_a_mark_move_without_a_fill():
    desk = make_desk(
        risk_config=RiskConfig(
            duplicate_window_ms=None, max_orders_per_second=None, daily_loss_limit=D(100)
        )
    )
    desk.fill(desk.buy("100"), "100", "187.52")
    quiet = desk.oms.check_daily_loss()
    desk.quote("AAPL", "185.00", "185.02")
    assert (quiet, desk.oms.check_daily_loss()) == (False, True)


# -- recovery ---------------------------------------------------------------------------------


def test_a_restart_rebuilds_the_same_orders_positions_and_cash(tmp_path: Path):
    path = tmp_path / "journal.sqlite"
    desk = make_desk(Journal(path))
    first = desk.buy("100")
    desk.fill(first, "100", "187.52", fee="0.50")
    second = desk.sell("40")
    desk.fill(second, "40", "188.00", fee="0.20")
    resting = desk.buy("10", symbol="MSFT", type=OrderType.LIMIT, limit_price=D("390.00"))
    desk.emit(resting.id, OrderStatus.NEW)
    desk.broker.remote[resting.id].status = OrderStatus.NEW
    before = (desk.oms.orders(), desk.oms.positions(), desk.oms.account().cash)
    # No close: the journal must carry everything without a clean shutdown.
    again = desk.restart(Journal(path))
    assert (again.oms.orders(), again.oms.positions(), again.oms.account().cash) == before


def test_an_open_order_the_broker_never_got_is_marked_rejected_on_restart():
    journal = journal_with_order(OrderStatus.PENDING_NEW)
    desk = make_desk(journal)
    order = desk.oms.order("td-seed-1")
    assert order is not None
    assert (order.status, order.reason) == (OrderStatus.REJECTED, NEVER_REACHED_BROKER)
    assert journal.load_orders()[0].status is OrderStatus.REJECTED


def test_a_restart_adopts_the_brokers_status_and_applies_the_fills_it_missed():
    journal = journal_with_order(OrderStatus.NEW)
    broker = FakeBroker()
    (seed,) = journal.load_orders()
    broker.remote[seed.id] = dataclasses.replace(
        seed, status=OrderStatus.FILLED, filled_qty=D(100), filled_avg_price=D("187.00")
    )
    missed = Fill("exec-9", seed.id, "AAPL", Side.BUY, D(100), D("187.00"), START_NS)
    broker.remote_fills.append(missed)
    desk = make_desk(journal, broker=broker)
    order = desk.oms.order(seed.id)
    assert order is not None and order.status is OrderStatus.FILLED
    assert desk.oms.position_qty("AAPL") == D(100)
    assert journal.load_fills() == [missed]
    assert broker.fills_asked_since == [seed.created_ns]


def test_a_restart_warns_when_the_brokers_positions_differ():
    broker = FakeBroker()
    broker.remote_positions.append(Position("AAPL", qty=D(50)))
    desk = make_desk(broker=broker)
    alerts = desk.topics(Topic.ALERT)
    assert [a.message for a in alerts if isinstance(a, Alert)] == [
        "AAPL: the journal's fills make the position 0 but the broker holds 50; "
        "fills were missed outside tickdeck"
    ]


def test_the_first_start_takes_the_starting_cash_from_the_broker():
    desk = make_desk(broker=FakeBroker(cash=D("25000.00")))
    assert desk.oms.account().cash == D("25000.00")


def test_a_restart_keeps_the_journaled_starting_cash_whatever_the_broker_says(desk):
    desk.fill(desk.buy("10"), "10", "187.52")
    desk.broker.cash = D(1)
    assert desk.restart().oms.account().cash == D("98124.80")


def test_rejections_lists_this_process_only_while_the_journal_keeps_them_all(desk):
    decision = desk.oms.submit(OrderRequest("ZZZZ", Side.BUY, D(1))).decision
    assert isinstance(decision, RiskDecision)
    again = desk.restart()
    assert again.oms.rejections() == []
    assert len(again.journal.load_rejections()) == 1


# -- journal failures -------------------------------------------------------------------------


def test_an_order_the_journal_cannot_record_is_never_sent(desk):
    desk.journal.close()
    result = desk.oms.submit(OrderRequest("AAPL", Side.BUY, D(100)))
    assert (result.accepted, result.order, desk.broker.submitted) == (False, None, [])
    assert result.message.endswith("the order was not sent")


def test_a_fill_the_journal_cannot_record_still_moves_the_book_and_raises_an_alert(desk):
    order = desk.buy()
    desk.journal.close()
    desk.fill(order, "100", "187.52")
    assert desk.oms.position_qty("AAPL") == D(100)
    assert any("restart tickdeck to reconcile" in a.message for a in desk.topics(Topic.ALERT))
