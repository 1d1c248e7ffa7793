"""The blotter with algos: a parent's row, its children nested under it, pause and cancel keys."""

from __future__ import annotations

from decimal import Decimal

import pytest
from textual import on
from textual.app import App, ComposeResult

from engine.client import BookSnapshot, Cursor, EngineSnapshot
from engine.core.models import Account, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.execution import Parent, ParentState, TwapSpec, parent_view
from engine.health import HealthSnapshot
from tui.widgets import Blotter

D = Decimal
OPEN_NS = 1_710_509_400 * 1_000_000_000  # 2024-03-15 09:30:00 New York
MINUTE_NS = 60 * 1_000_000_000
HEALTH = HealthSnapshot((), 0.0, None, 0, 0.0, 0.0, 0)
ACCOUNT = Account(cash=D(100_000), equity=D(100_000), buying_power=D(200_000))


def order(seq: int, status: OrderStatus, minute: int, *, parent: str | None = None) -> Order:
    ts = OPEN_NS + minute * MINUTE_NS
    filled = D(100) if status is OrderStatus.FILLED else D(0)
    return Order(
        id=f"td-240315093000-{seq}",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(100),
        type=OrderType.MARKET,
        tif=TimeInForce.DAY,
        status=status,
        created_ns=ts,
        updated_ns=ts,
        filled_qty=filled,
        filled_avg_price=D("187.50") if filled else None,
        source=f"algo:{parent}" if parent else "manual",
        parent_id=parent,
    )


def parent(state: ParentState = ParentState.WORKING) -> Parent:
    record = Parent(
        id="algo-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(500),
        spec=TwapSpec(600),
        created_ns=OPEN_NS,
        start_ns=OPEN_NS,
        state=state,
        updated_ns=OPEN_NS + 2 * MINUTE_NS,
        arrival_price=D("187.40"),
        filled_qty=D(200),
        notional=D(37_500),
        children=["td-240315093000-2", "td-240315093000-3"],
    )
    return record


def snapshot(orders: tuple[Order, ...], parents: tuple[Parent, ...]) -> EngineSnapshot:
    book = BookSnapshot(
        orders, (), ACCOUNT, D(0), D(0), D(0), parents=tuple(parent_view(p) for p in parents)
    )
    return EngineSnapshot(Cursor(), OPEN_NS, "sim", (), book, None, HEALTH, ())


ORDERS = (
    order(1, OrderStatus.FILLED, 0),
    order(2, OrderStatus.FILLED, 1, parent="algo-1"),
    order(3, OrderStatus.FILLED, 2, parent="algo-1"),
    order(4, OrderStatus.NEW, 3),
)


class PaneApp(App):
    def __init__(self, pane: Blotter) -> None:
        super().__init__()
        self.pane = pane
        self.received: list[object] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    @on(Blotter.CancelRequested)
    @on(Blotter.PauseRequested)
    def record(self, message: object) -> None:
        self.received.append(message)


def lines(widget: Blotter, count: int) -> list[str]:
    return [widget.render_line(y).text.rstrip() for y in range(count)]


@pytest.mark.asyncio
async def test_children_are_nested_under_their_parents_row():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(120, 8)) as pilot:
        blotter.apply(snapshot(ORDERS, (parent(),)))
        await pilot.pause()
        assert lines(blotter, 6) == [
            "ID    SYMBOL SIDE     QTY  FILLED TYPE      PRICE STATUS    AVG FILL     TIME",
            "#4    AAPL   buy      100       0 mkt          -- new             -- 09:33:00",
            "A1    AAPL   buy      500     200 twap         -- working     187.50 09:32:00",
            "└#3   AAPL   buy      100     100 mkt          -- filled      187.50 09:32:00",
            "└#2   AAPL   buy      100     100 mkt          -- filled      187.50 09:31:00",
            "#1    AAPL   buy      100     100 mkt          -- filled      187.50 09:30:00",
        ]


@pytest.mark.asyncio
async def test_p_pauses_the_selected_parent_and_resumes_a_paused_one():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 8)) as pilot:
        blotter.apply(snapshot(ORDERS, (parent(),)))
        blotter.focus()
        await pilot.press("home", "down", "down", "p")  # on a child's row: its parent
        await pilot.pause()
        blotter.apply(snapshot(ORDERS, (parent(ParentState.PAUSED),)))
        await pilot.pause()
        await pilot.press("up", "p")  # on the parent's own row
        await pilot.pause()
        pauses = [(m.order_id, m.resume) for m in app.received]
        assert pauses == [("algo-1", False), ("algo-1", True)]


@pytest.mark.asyncio
async def test_ctrl_x_on_a_parents_row_asks_to_cancel_the_parent():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 8)) as pilot:
        blotter.apply(snapshot(ORDERS, (parent(),)))
        blotter.focus()
        await pilot.press("home", "down", "ctrl+x")
        await pilot.pause()
        assert [m.order_id for m in app.received] == ["algo-1"]
        assert blotter.selected_parent.id == "algo-1"
        assert "200 filled (40.0%), 2 children" in blotter.tooltip
