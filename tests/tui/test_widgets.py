"""The console's panes, each mounted alone in a tiny app and fed hand-made engine snapshots."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from rich.color import Color
from textual import on
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from engine.client import (
    BookSnapshot,
    Cursor,
    EngineSnapshot,
    PortfolioRisk,
    Rejection,
    RiskSnapshot,
)
from engine.core.conflate import SymbolSnapshot
from engine.core.events import Alert, Severity
from engine.core.models import (
    Account,
    Bar,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from engine.health import ComponentHealth, HealthSnapshot, Status
from engine.options.portfolio import PortfolioGreeks
from engine.risk.engine import LimitUsage
from engine.risk.types import RiskCheck
from tui.widgets import Blotter, Chart, HealthPane, PositionsPane, QuoteBoard, RiskPane
from tui.widgets.chart import chart_title, draw_chart
from tui.widgets.format import (
    Column,
    fit_columns,
    fmt_money,
    fmt_order_id,
    fmt_pct,
    fmt_price,
    fmt_qty,
    fmt_time,
    fmt_volume,
)
from tui.widgets.message_line import MessageLine, without_echo
from tui.widgets.quote_board import COLUMNS as BOARD_COLUMNS
from tui.widgets.quote_board import sparkline
from tui.widgets.risk_pane import fmt_dollars, fmt_usage, usage_bar, utilization_style

D = Decimal
OPEN_NS = 1_710_509_400 * 1_000_000_000  # 2024-03-15 09:30:00 New York (13:30 UTC)
MINUTE_NS = 60 * 1_000_000_000
HEALTH = HealthSnapshot(
    components=(
        ComponentHealth("broker", Status.OK, "sim", 0.2),
        ComponentHealth("feed", Status.DEGRADED, "ended", 0.2),
        ComponentHealth("journal", Status.OK, "journal-sim.sqlite", 0.2),
    ),
    feed_msgs_per_s=1234.4,
    feed_latency_ms=None,
    reconnects=0,
    loop_lag_ms=3.25,
    loop_lag_p99_ms=1.04,
    bus_errors=0,
)
ACCOUNT = Account(cash=D("50000"), equity=D("100000"), buying_power=D("200000"))


# -- builders -------------------------------------------------------------------------------


def quote(
    symbol: str,
    version: int,
    bid: str = "187.50",
    ask: str = "187.52",
    last: str = "187.51",
    *,
    reference: str = "185.00",
    volume: int = 1_234_567,
    closes: tuple[str, ...] = (),
) -> SymbolSnapshot:
    return SymbolSnapshot(
        symbol=symbol,
        version=version,
        ts_ns=OPEN_NS,
        bid=D(bid),
        bid_size=100,
        ask=D(ask),
        ask_size=200,
        last=D(last),
        reference=D(reference),
        volume=volume,
        closes=tuple(D(c) for c in closes),
    )


def book(
    orders: tuple[Order, ...] = (),
    positions: tuple[Position, ...] = (),
    *,
    day_pnl: str = "0",
    gross: str = "0",
    net: str = "0",
) -> BookSnapshot:
    return BookSnapshot(orders, positions, ACCOUNT, D(day_pnl), D(gross), D(net))


def snapshot(
    quotes: tuple[SymbolSnapshot, ...] = (),
    *,
    book: BookSnapshot | None = None,
    risk: RiskSnapshot | None = None,
    health: HealthSnapshot = HEALTH,
) -> EngineSnapshot:
    return EngineSnapshot(Cursor(), OPEN_NS, "sim", quotes, book, risk, health, ())


def order(
    seq: int,
    status: OrderStatus,
    *,
    minute: int = 0,
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    qty: str = "100",
    filled: str = "0",
    limit: str | None = "187.50",
    avg: str | None = None,
) -> Order:
    ts_ns = OPEN_NS + minute * MINUTE_NS
    return Order(
        id=f"td-240315093000-{seq}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        type=OrderType.LIMIT if limit else OrderType.MARKET,
        tif=TimeInForce.DAY,
        status=status,
        created_ns=ts_ns,
        updated_ns=ts_ns,
        limit_price=D(limit) if limit else None,
        filled_qty=D(filled),
        filled_avg_price=D(avg) if avg else None,
    )


def bar(minute: int, o: str, h: str, low: str, c: str) -> Bar:
    return Bar("TEST", OPEN_NS + minute * MINUTE_NS, D(o), D(h), D(low), D(c), 1_000)


class PaneApp(App):
    """One pane filling the screen; records the messages panes post."""

    def __init__(self, pane: Widget) -> None:
        super().__init__()
        self.pane = pane
        self.received: list[object] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    @on(QuoteBoard.SymbolSelected)
    @on(Blotter.CancelRequested)
    @on(Blotter.ReplaceRequested)
    def record(self, message: object) -> None:
        self.received.append(message)


def lines(widget: Widget, count: int | None = None) -> list[str]:
    """The rendered text of the widget's first ``count`` lines, right-trimmed."""
    height = widget.size.height if count is None else count
    return [widget.render_line(y).text.rstrip() for y in range(height)]


def segment_at(strip: Strip, text: str):
    """The segment whose text, stripped, is ``text``."""
    return next(s for s in strip if s.text.strip() == text)


def is_theme(colour: Color | None, app: App, name: str) -> bool:
    """``colour`` is the app theme's ``name`` colour (Textual's blending may move a channel by one)."""
    if colour is None:
        return False
    expected = Color.parse(getattr(app.current_theme, name)).get_truecolor()
    return all(abs(a - b) <= 1 for a, b in zip(colour.get_truecolor(), expected, strict=True))


# -- formatting -----------------------------------------------------------------------------


def test_price_has_its_ticks_decimals():
    assert fmt_price(D("187.5")) == "187.50"
    assert fmt_price(D("0.51234")) == "0.5123"
    assert fmt_price(D("0.01"), grid_of=D("187.50")) == "0.01"
    assert fmt_price(None, 6) == "    --"


def test_money_has_thousands_separators_and_cents():
    assert fmt_money(D("-1234.5")) == "-1,234.50"
    assert fmt_money(D("1234.5"), signed=True) == "+1,234.50"
    assert fmt_money(D("-0.001")) == "0.00"


def test_a_number_too_wide_for_its_column_is_hashed_not_cut():
    assert fmt_money(D("1234567.89"), 8) == "########"
    assert fmt_price(D("1.5"), 8) == "    1.50"


def test_quantity_is_exact_with_separators():
    assert fmt_qty(D("100")) == "100"
    assert fmt_qty(D("1500.00")) == "1,500"
    assert fmt_qty(D("0.50")) == "0.5"
    assert fmt_qty(D("-100")) == "-100"


def test_percent_is_signed_and_zero_is_not():
    assert fmt_pct(D("1.234")) == "+1.23%"
    assert fmt_pct(D("-12.3456")) == "-12.35%"
    assert fmt_pct(D("-0.004")) == "0.00%"


def test_volume_is_exact_below_ten_thousand_then_compact():
    assert [fmt_volume(v) for v in (950, 9_999, 12_345, 1_234_567, 999_960)] == [
        "950",
        "9,999",
        "12.3K",
        "1.2M",
        "1.0M",
    ]


def test_times_are_new_york_wall_time():
    assert fmt_time(OPEN_NS + 65 * 1_000_000_000) == "09:31:05"
    assert fmt_time(OPEN_NS, seconds=False) == "09:30"


def test_order_id_shortens_to_its_sequence():
    assert fmt_order_id("td-240315093000-12") == "#12"
    assert fmt_order_id("external") == "external"


def test_narrow_tables_drop_the_most_droppable_column_first():
    columns = (Column("a", "A", 4), Column("b", "B", 4, drop=1), Column("c", "C", 4, drop=2))
    assert [c.key for c in fit_columns(columns, 14)] == ["a", "b", "c"]
    assert [c.key for c in fit_columns(columns, 13)] == ["a", "b"]
    assert [c.key for c in fit_columns(columns, 4)] == ["a"]


# -- quote board ----------------------------------------------------------------------------


def test_sparkline_scales_closes_onto_eight_levels():
    assert sparkline(tuple(D(v) for v in "01234567")) == "▁▂▃▄▅▆▇█"
    assert sparkline((D(5), D(5))) == "▄▄"
    # 32 closes in 16 cells: each cell shows the close at the end of its pair.
    assert sparkline(tuple(D(v) for v in range(32))) == "▁▁▂▂▃▃▄▄▅▅▆▆▇▇██"


def test_board_at_80_columns_keeps_symbol_prices_and_change():
    kept = [c.key for c in fit_columns(BOARD_COLUMNS, 45)]
    assert kept == ["symbol", "bid", "ask", "last", "change"]
    assert [c.key for c in fit_columns(BOARD_COLUMNS, 62)] == [
        "symbol",
        "bid",
        "ask",
        "last",
        "change",
        "volume",
        "spread",
    ]


@pytest.mark.asyncio
async def test_board_rows_follow_the_watchlist_and_new_symbols_are_appended():
    board = QuoteBoard(["MSFT", "AAPL"])
    async with PaneApp(board).run_test(size=(120, 10)) as pilot:
        board.apply(snapshot((quote("NVDA", 3), quote("AAPL", 2))))
        await pilot.pause()
        assert board.symbols == ["MSFT", "AAPL", "NVDA"]
        assert [line[:6].strip() for line in lines(board, 4)] == ["SYMBOL", "MSFT", "AAPL", "NVDA"]


@pytest.mark.asyncio
async def test_board_row_shows_prices_change_volume_spread_and_sparkline():
    board = QuoteBoard(["AAPL"])
    async with PaneApp(board).run_test(size=(120, 10)) as pilot:
        board.apply(snapshot((quote("AAPL", 1, closes=("185", "186", "187")),)))
        await pilot.pause()
        header, row = lines(board, 2)
        assert header == "SYMBOL      BID      ASK     LAST     CHG%    VOL   SPRD TREND"
        # change: (187.51 - 185) / 185 = +1.3567...% ; spread 0.02 on a cent grid
        assert row == "AAPL     187.50   187.52   187.51   +1.36%   1.2M   0.02 ▁▅█"


@pytest.mark.asyncio
async def test_narrow_board_drops_sparkline_volume_and_spread():
    board = QuoteBoard(["AAPL"])
    async with PaneApp(board).run_test(size=(46, 6)) as pilot:
        board.apply(snapshot((quote("AAPL", 1),)))
        await pilot.pause()
        assert lines(board, 2)[1] == "AAPL     187.50   187.52   187.51   +1.36%"


class CountingBoard(QuoteBoard):
    """Records which rows had their strip built."""

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self.built: list[int] = []

    def render_row(self, row: int, width: int) -> Strip:
        self.built.append(row)
        return super().render_row(row, width)


WATCHLIST = [f"S{n:02d}" for n in range(30)]


@pytest.mark.asyncio
async def test_a_flood_of_changes_to_one_symbol_rebuilds_only_that_row():
    board = CountingBoard(WATCHLIST)
    async with PaneApp(board).run_test(size=(120, 40)) as pilot:
        board.apply(snapshot(tuple(quote(s, 1) for s in WATCHLIST)))
        await pilot.pause()
        board.built.clear()
        for version in range(2, 10_002):
            price = f"{187 + version % 7}.50"
            board.apply(snapshot((quote("S07", version, last=price),)))
            if version % 1_000 == 0:
                await pilot.pause()
        await pilot.pause()
        assert set(board.built) == {7}
        assert len(board.built) <= 20  # at most once per painted frame, never per change


@pytest.mark.asyncio
async def test_a_pull_with_no_changes_rebuilds_nothing():
    board = CountingBoard(WATCHLIST)
    async with PaneApp(board).run_test(size=(120, 40)) as pilot:
        board.apply(snapshot(tuple(quote(s, 1) for s in WATCHLIST)))
        await pilot.pause()
        board.built.clear()
        for _ in range(50):
            board.apply(snapshot())
        await pilot.pause()
        assert board.built == []


@pytest.mark.asyncio
async def test_last_price_flashes_for_the_pull_it_moved_then_keeps_its_direction_colour():
    board = QuoteBoard(["AAPL", "MSFT"])
    app = PaneApp(board)
    async with app.run_test(size=(120, 10)) as pilot:
        board.apply(snapshot((quote("AAPL", 1, last="187.51"),)))
        board.apply(snapshot((quote("AAPL", 2, last="187.40"),)))
        await pilot.pause()
        flashed = segment_at(board.render_line(1), "187.40").style
        assert flashed.bgcolor != board.rich_style.bgcolor
        board.apply(snapshot((quote("MSFT", 3),)))  # a later pull without AAPL
        await pilot.pause()
        settled = segment_at(board.render_line(1), "187.40").style
        assert is_theme(settled.color, app, "error")
        assert settled.bgcolor != flashed.bgcolor


@pytest.mark.asyncio
async def test_change_percent_is_coloured_by_its_sign():
    board = QuoteBoard(["UP", "DOWN"])
    app = PaneApp(board)
    async with app.run_test(size=(120, 10)) as pilot:
        board.apply(snapshot((quote("UP", 1, last="190"), quote("DOWN", 2, last="180"))))
        await pilot.pause()
        assert is_theme(segment_at(board.render_line(1), "+2.70%").style.color, app, "success")
        assert is_theme(segment_at(board.render_line(2), "-2.70%").style.color, app, "error")


@pytest.mark.asyncio
async def test_a_new_theme_repaints_the_rows_in_its_colours():
    board = QuoteBoard(["UP"])
    app = PaneApp(board)
    async with app.run_test(size=(120, 10)) as pilot:
        board.apply(snapshot((quote("UP", 1, last="190"),)))
        await pilot.pause()
        app.theme = "textual-light"
        await pilot.pause()
        style = segment_at(board.render_line(1), "+2.70%").style
        assert is_theme(style.color, app, "success")
        assert app.current_theme.name == "textual-light"


@pytest.mark.asyncio
async def test_cursor_keys_move_the_selection_and_post_symbol_selected():
    board = QuoteBoard(WATCHLIST)
    app = PaneApp(board)
    async with app.run_test(size=(120, 12)) as pilot:
        await pilot.pause()
        assert board.selected_symbol == "S00"
        board.focus()
        await pilot.press("down", "down")
        assert board.selected_symbol == "S02"
        await pilot.press("end")
        assert board.selected_symbol == "S29"
        await pilot.press("pageup")  # 11 rows visible under the header
        assert board.selected_symbol == "S18"
        await pilot.press("home", "up")
        await pilot.pause()
        assert board.selected_symbol == "S00"
        posted = [m.symbol for m in app.received if isinstance(m, QuoteBoard.SymbolSelected)]
        assert posted == ["S00", "S01", "S02", "S29", "S18", "S00"]


@pytest.mark.asyncio
async def test_selecting_a_row_below_the_page_scrolls_it_into_view():
    board = QuoteBoard(WATCHLIST)
    async with PaneApp(board).run_test(size=(120, 12)) as pilot:
        board.selected_symbol = "S20"
        await pilot.pause()
        visible = [line[:6].strip() for line in lines(board)]
        assert visible[0] == "SYMBOL" and "S20" in visible


@pytest.mark.asyncio
async def test_assigning_an_unknown_symbol_keeps_the_selection():
    board = QuoteBoard(["AAPL", "MSFT"])
    async with PaneApp(board).run_test(size=(120, 6)) as pilot:
        board.selected_symbol = "MSFT"
        board.selected_symbol = "ZZZZ"
        await pilot.pause()
        assert board.selected_symbol == "MSFT"


# -- blotter --------------------------------------------------------------------------------


MIXED_ORDERS = (
    order(1, OrderStatus.FILLED, minute=0, filled="100", avg="187.49"),
    order(2, OrderStatus.NEW, minute=1),
    order(3, OrderStatus.CANCELED, minute=2),
    order(4, OrderStatus.PARTIALLY_FILLED, minute=3, filled="40", avg="187.50"),
    order(5, OrderStatus.REJECTED, minute=4, symbol="MSFT", side=Side.SELL, limit=None),
)


@pytest.mark.asyncio
async def test_blotter_puts_working_orders_first_newest_first():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        await pilot.pause()
        assert [fmt_order_id(i) for i in blotter.order_ids] == ["#4", "#2", "#5", "#3", "#1"]
        assert lines(blotter, 6) == [
            "ID    SYMBOL SIDE     QTY  FILLED TYPE      PRICE STATUS    AVG FILL     TIME",
            "#4    AAPL   buy      100      40 lmt      187.50 partial     187.50 09:33:00",
            "#2    AAPL   buy      100       0 lmt      187.50 new             -- 09:31:00",
            "#5    MSFT   sell     100       0 mkt          -- rejected        -- 09:34:00",
            "#3    AAPL   buy      100       0 lmt      187.50 canceled        -- 09:32:00",
            "#1    AAPL   buy      100     100 lmt      187.50 filled      187.49 09:30:00",
        ]


@pytest.mark.asyncio
async def test_blotter_status_is_coloured():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        await pilot.pause()
        assert is_theme(segment_at(blotter.render_line(5), "filled").style.color, app, "success")
        assert is_theme(segment_at(blotter.render_line(3), "rejected").style.color, app, "error")


@pytest.mark.asyncio
async def test_ctrl_x_asks_to_cancel_the_selected_working_order():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        blotter.focus()
        await pilot.press("down", "ctrl+x")
        await pilot.pause()
        cancels = [m for m in app.received if isinstance(m, Blotter.CancelRequested)]
        assert [m.order_id for m in cancels] == ["td-240315093000-2"]


@pytest.mark.asyncio
async def test_ctrl_r_asks_to_replace_the_selected_working_order():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        blotter.focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        replaces = [m for m in app.received if isinstance(m, Blotter.ReplaceRequested)]
        assert [m.order_id for m in replaces] == ["td-240315093000-4"]
        assert blotter.order("td-240315093000-4").limit_price == D("187.50")


@pytest.mark.asyncio
async def test_a_filled_order_cannot_be_cancelled_from_the_blotter():
    blotter = Blotter()
    app = PaneApp(blotter)
    async with app.run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        blotter.focus()
        await pilot.press("end", "ctrl+x")
        await pilot.pause()
        assert blotter.selected_order.status is OrderStatus.FILLED
        assert not [m for m in app.received if isinstance(m, Blotter.CancelRequested)]


@pytest.mark.asyncio
async def test_the_selected_orders_full_id_and_reason_are_in_its_tooltip():
    blotter = Blotter()
    rejected = order(9, OrderStatus.REJECTED)
    rejected.reason = "order notional is above the limit"
    async with PaneApp(blotter).run_test(size=(120, 8)) as pilot:
        blotter.apply(snapshot(book=book((rejected,))))
        await pilot.pause()
        assert blotter.tooltip.splitlines()[0] == "td-240315093000-9"
        assert blotter.tooltip.splitlines()[-1] == "order notional is above the limit"


class RecordingBlotter(Blotter):
    """Records which rows had a cell updated."""

    def __init__(self) -> None:
        super().__init__()
        self.updated: set[str] = set()

    def update_cell(self, row_key, column_key, value, *, update_width=False) -> None:
        self.updated.add(row_key)
        super().update_cell(row_key, column_key, value, update_width=update_width)


@pytest.mark.asyncio
async def test_a_fill_updates_only_that_orders_row():
    blotter = RecordingBlotter()
    async with PaneApp(blotter).run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        await pilot.pause()
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        assert blotter.updated == set()
        partial = order(4, OrderStatus.PARTIALLY_FILLED, minute=3, filled="70", avg="187.50")
        partial.updated_ns += 1
        blotter.apply(snapshot(book=book((*MIXED_ORDERS[:3], partial, MIXED_ORDERS[4]))))
        await pilot.pause()
        assert blotter.updated == {"td-240315093000-4"}
        assert lines(blotter, 2)[1].split()[4] == "70"


@pytest.mark.asyncio
async def test_a_new_order_on_top_leaves_the_cursor_on_the_order_it_was_on():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        blotter.focus()
        await pilot.press("down", "down")
        assert fmt_order_id(blotter.selected_order.id) == "#5"
        newest = order(6, OrderStatus.NEW, minute=5)
        blotter.apply(snapshot(book=book((*MIXED_ORDERS, newest))))
        await pilot.pause()
        assert fmt_order_id(blotter.order_ids[0]) == "#6"
        assert fmt_order_id(blotter.selected_order.id) == "#5"


@pytest.mark.asyncio
async def test_the_cursor_on_the_newest_order_follows_each_new_order():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(120, 12)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS[:1])))
        filled_now = order(2, OrderStatus.FILLED, minute=1, filled="100", avg="187.49")
        blotter.apply(snapshot(book=book((*MIXED_ORDERS[:1], filled_now))))
        await pilot.pause()
        assert fmt_order_id(blotter.selected_order.id) == "#2"
        working = order(3, OrderStatus.NEW, minute=2)
        blotter.apply(snapshot(book=book((*MIXED_ORDERS[:1], filled_now, working))))
        await pilot.pause()
        assert fmt_order_id(blotter.selected_order.id) == "#3"


@pytest.mark.asyncio
async def test_orders_placed_in_one_instant_follow_their_sequence_not_their_text():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(120, 14)) as pilot:
        nine = tuple(order(n, OrderStatus.FILLED, filled="100", avg="187.49") for n in range(1, 10))
        blotter.apply(snapshot(book=book(nine)))
        tenth = order(10, OrderStatus.FILLED, filled="100", avg="187.49")
        blotter.apply(snapshot(book=book((*nine, tenth))))
        await pilot.pause()
        assert fmt_order_id(blotter.selected_order.id) == "#10"


@pytest.mark.asyncio
async def test_narrow_blotter_drops_time_avg_fill_type_then_filled():
    blotter = Blotter()
    async with PaneApp(blotter).run_test(size=(54, 10)) as pilot:
        blotter.apply(snapshot(book=book(MIXED_ORDERS)))
        await pilot.pause()
        assert lines(blotter, 2) == [
            "ID    SYMBOL SIDE     QTY  FILLED    PRICE STATUS",
            "#4    AAPL   buy      100      40   187.50 partial",
        ]
        await pilot.resize_terminal(46, 10)
        await pilot.pause()
        assert lines(blotter, 2) == [
            "ID    SYMBOL SIDE     QTY    PRICE STATUS",
            "#4    AAPL   buy      100   187.50 partial",
        ]


# -- positions ------------------------------------------------------------------------------


POSITIONS = (
    Position("MSFT", D("-50"), D("410"), D("12.5"), last_price=D("412.10")),
    Position("AAPL", D("100"), D("187.5"), D("0"), last_price=D("188.25")),
)


@pytest.mark.asyncio
async def test_positions_show_each_row_totals_exposure_and_account_exactly():
    pane = PositionsPane()
    async with PaneApp(pane).run_test(size=(120, 10)) as pilot:
        pane.apply(
            snapshot(book=book(positions=POSITIONS, day_pnl="-17.5", gross="39430", net="-1780"))
        )
        await pilot.pause()
        # AAPL: (188.25 - 187.50) x 100 = +75.00 ; MSFT: (412.10 - 410) x -50 = -105.00
        assert lines(pane, 6) == [
            "SYMBOL      QTY  AVG COST      LAST     UNRL P&L     REAL P&L",
            "AAPL        100    187.50    188.25       +75.00         0.00",
            "MSFT        -50    410.00    412.10      -105.00       +12.50",
            "TOTAL                                     -30.00       +12.50",
            "day P&L -17.50   gross 39,430.00   net -1,780.00   cash 50,000.00   "
            "equity 100,000.00   buying power 200,000.00",
            "",
        ]


@pytest.mark.asyncio
async def test_pnl_is_coloured_by_sign():
    pane = PositionsPane()
    app = PaneApp(pane)
    async with app.run_test(size=(120, 10)) as pilot:
        pane.apply(snapshot(book=book(positions=POSITIONS)))
        await pilot.pause()
        assert is_theme(segment_at(pane.render_line(1), "+75.00").style.color, app, "success")
        assert is_theme(segment_at(pane.render_line(2), "-105.00").style.color, app, "error")


@pytest.mark.asyncio
async def test_positions_pane_ignores_a_pull_without_a_book():
    pane = PositionsPane()
    async with PaneApp(pane).run_test(size=(120, 10)) as pilot:
        pane.apply(snapshot(book=book(positions=POSITIONS)))
        pane.apply(snapshot())
        await pilot.pause()
        assert lines(pane, 2)[1].startswith("AAPL")


# -- risk -----------------------------------------------------------------------------------


def test_utilization_colour_is_success_under_half_warning_to_eighty_then_error():
    assert utilization_style(D("0.4999")) == "$success"
    assert utilization_style(D("0.5")) == "$warning"
    assert utilization_style(D("0.8")) == "$warning"
    assert utilization_style(D("0.8001")) == "$error"


def test_usage_bar_fills_in_eighths_of_a_cell():
    assert usage_bar(D("0.5"), 10) == ("█████", "░░░░░")
    assert usage_bar(D("0.55"), 10) == ("█████▌", "░░░░")
    assert usage_bar(D("1.7"), 4) == ("████", "")


def usage(name: str, used: str, limit: str, check: RiskCheck) -> LimitUsage:
    return LimitUsage(name, D(used), D(limit), D(used) / D(limit), check)


LIMITS = (
    usage("open orders", "3", "10", RiskCheck.MAX_OPEN_ORDERS),
    usage("gross exposure", "400000", "500000", RiskCheck.GROSS_EXPOSURE),
    usage("daily loss", "4500", "5000", RiskCheck.DAILY_LOSS),
)


def risk(*, engaged: bool = False, rejections: tuple[Rejection, ...] = ()) -> RiskSnapshot:
    return RiskSnapshot(
        limits=LIMITS,
        kill_engaged=engaged,
        kill_reason="kill switch engaged by the trader" if engaged else "",
        kill_since_ns=OPEN_NS + 5 * MINUTE_NS if engaged else None,
        rejections=rejections,
    )


@pytest.mark.asyncio
async def test_risk_pane_shows_each_limit_with_its_usage_bar_and_percent():
    pane = RiskPane()
    app = PaneApp(pane)
    async with app.run_test(size=(70, 12)) as pilot:
        pane.apply(snapshot(risk=risk()))
        await pilot.pause()
        # name 14 cells (the longest name), usage 13, bar 30 (its most), percent 5
        assert lines(pane, 4) == [
            "kill switch off",
            "open orders             3/10 █████████░░░░░░░░░░░░░░░░░░░░░  30%",
            "gross exposure 400.0K/500.0K ████████████████████████░░░░░░  80%",
            "daily loss       4,500/5,000 ███████████████████████████░░░  90%",
        ]
        assert is_theme(segment_at(pane.render_line(3), "█" * 27).style.color, app, "error")
        assert is_theme(segment_at(pane.render_line(2), "80%").style.color, app, "warning")


@pytest.mark.asyncio
async def test_engaged_kill_switch_is_a_red_banner_with_since_time_and_reason():
    pane = RiskPane()
    app = PaneApp(pane)
    async with app.run_test(size=(60, 12)) as pilot:
        pane.apply(snapshot(risk=risk(engaged=True)))
        await pilot.pause()
        assert [line.strip() for line in lines(pane, 3)] == [
            "■ KILL SWITCH ENGAGED since 09:35:00 ■",
            "new risk blocked, only reducing orders",
            "kill switch engaged by the trader",
        ]
        banner = pane.render_line(0)
        assert all(is_theme(s.style.bgcolor, app, "error") for s in banner)


@pytest.mark.asyncio
async def test_kill_banner_wraps_in_a_narrow_pane_instead_of_clipping():
    pane = RiskPane()
    async with PaneApp(pane).run_test(size=(30, 12)) as pilot:
        pane.apply(snapshot(risk=risk(engaged=True)))
        await pilot.pause()
        assert [line.strip() for line in lines(pane, 6)] == [
            "■ KILL SWITCH ENGAGED since",
            "09:35:00 ■",
            "new risk blocked, only",
            "reducing orders",
            "kill switch engaged by the",
            "trader",
        ]


@pytest.mark.asyncio
async def test_rejections_show_newest_first_with_time_order_and_wrapped_reason():
    pane = RiskPane()
    rejections = (
        Rejection(
            OPEN_NS + 2 * MINUTE_NS,
            "buy 100000 AAPL",
            "order quantity 100,000 is above the max order quantity of 10,000; order "
            "notional $18,750,000.00 is above the max order notional of $250,000.00; "
            "buying power is short",
        ),
        Rejection(OPEN_NS + MINUTE_NS, "sell 5 MSFT", "MSFT is not shortable"),
    )
    async with PaneApp(pane).run_test(size=(60, 14)) as pilot:
        pane.apply(snapshot(risk=risk(rejections=rejections)))
        await pilot.pause()
        # 14 rows less the kill line and three limits: the newest takes the lines it needs,
        # each failed check starting a line of its own.
        assert lines(pane)[4:12] == [
            "✗ 09:32:00 buy 100000 AAPL",
            "  order quantity 100,000 is above the max order quantity of",
            "  10,000",
            "  order notional $18,750,000.00 is above the max order",
            "  notional of $250,000.00",
            "  buying power is short",
            "✗ 09:31:00 sell 5 MSFT",
            "  MSFT is not shortable",
        ]


LONG_REJECTION = Rejection(
    OPEN_NS + 2 * MINUTE_NS,
    "buy 100000 AAPL",
    "order quantity 100,000 is above the max order quantity of 10,000; order notional "
    "$18,750,000.00 is above the max order notional of $250,000.00; buying power is short",
)


def portfolio(delta_dollars: float) -> PortfolioRisk:
    greeks = PortfolioGreeks((), delta_dollars, 0.0, 0.0, 0.0, delta_dollars)
    return PortfolioRisk(OPEN_NS, 1.0, 0.99, greeks, None, "no volatility for AAPL")


@pytest.mark.asyncio
async def test_the_newest_rejection_keeps_two_reason_lines_above_the_portfolio():
    pane = RiskPane()
    async with PaneApp(pane).run_test(size=(60, 8)) as pilot:
        pane.apply(snapshot(risk=risk(rejections=(LONG_REJECTION,))))
        pane.show_portfolio(portfolio(13_300.0))
        await pilot.pause()
        assert lines(pane)[4:8] == [
            "✗ 09:32:00 buy 100000 AAPL",
            "  order quantity 100,000 is above the max order quantity of",
            "  10,000 …",
            "PORTFOLIO  Δ $13.3K  Γ/1% $0  vega $0  θ/d $0",
        ]


@pytest.mark.asyncio
async def test_the_portfolio_follows_the_rejections_when_there_is_room():
    pane = RiskPane()
    async with PaneApp(pane).run_test(size=(80, 12)) as pilot:
        pane.apply(snapshot(risk=risk()))
        pane.show_portfolio(portfolio(13_300.0))
        await pilot.pause()
        assert lines(pane)[4:7] == [
            "REJECTIONS none",
            "PORTFOLIO  Δ $13.3K  Γ/1% $0  vega $0  θ/d $0  VaR 99% 1d no volatility for AAPL",
            "",
        ]


@pytest.mark.asyncio
async def test_more_limits_than_room_show_the_most_used_and_count_the_rest():
    pane = RiskPane()
    rejection = Rejection(OPEN_NS, "sell 5 MSFT", "MSFT is not shortable")
    async with PaneApp(pane).run_test(size=(60, 5)) as pilot:
        pane.apply(snapshot(risk=risk(rejections=(rejection,))))
        await pilot.pause()
        assert [line[:30].rstrip() for line in lines(pane)] == [
            "kill switch off",
            "daily loss   4,500/5,000 █████",
            "… 2 more limits, less used (F1",
            "✗ 09:30:00 sell 5 MSFT",
            "  MSFT is not shortable",
        ]


def test_a_long_position_is_a_positive_dollar_delta():
    assert fmt_dollars(100 * 133.0) == "$13.3K"
    assert fmt_dollars(-20 * 610.56) == "-$12.2K"


@pytest.mark.asyncio
async def test_gross_exposure_in_the_thousands_reads_in_whole_dollars_not_hashes():
    pane = RiskPane()
    gross = usage("gross exposure", "1234.56", "500000", RiskCheck.GROSS_EXPOSURE)
    async with PaneApp(pane).run_test(size=(60, 4)) as pilot:
        pane.apply(snapshot(risk=dataclasses.replace(risk(), limits=(gross,))))
        await pilot.pause()
        assert lines(pane)[1].startswith("gross exposure  1,235/500.0K ")


def test_a_limit_amount_fits_the_usage_column_at_any_size():
    assert [fmt_usage(D(x)) for x in ("999.50", "1000.49", "9999.99", "12345", "43")] == [
        "999.50",
        "1,000",
        "10.0K",
        "12.3K",
        "43",
    ]


# -- health ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_health_pane_shows_feed_lag_and_each_component():
    pane = HealthPane()
    app = PaneApp(pane)
    async with app.run_test(size=(100, 8)) as pilot:
        pane.apply(snapshot())
        await pilot.pause()
        assert lines(pane, 5) == [
            "feed 1,234/s   latency n/a   reconnects 0   loop lag 3.2 ms worst   p99 1.0 ms   "
            "bus errors 0",
            "COMPONENT  STATUS     DETAIL",
            "broker     ● ok       sim",
            "feed       ● degraded ended",
            "journal    ● ok       journal-sim.sqlite",
        ]
        assert is_theme(segment_at(pane.render_line(3), "● degraded").style.color, app, "warning")


@pytest.mark.asyncio
async def test_a_silent_component_is_flagged():
    pane = HealthPane()
    silent = HealthSnapshot(
        (ComponentHealth("broker", Status.OK, "sim", 12.0),), 0.0, None, 1, 0.0, 0.0, 2
    )
    async with PaneApp(pane).run_test(size=(100, 8)) as pilot:
        pane.apply(snapshot(health=silent))
        await pilot.pause()
        assert lines(pane, 3)[2] == "broker     ● ok       silent for more than 5s · sim"


# -- chart ----------------------------------------------------------------------------------

THREE_BARS = (
    bar(0, "102", "110", "100", "108"),  # up
    bar(1, "108", "119", "106", "116"),  # up
    bar(2, "116", "117", "104", "105"),  # down
)


def column(pane: Widget, x: int, rows: range) -> str:
    return "".join(pane.render_line(y).text[x] for y in rows)


def glyphs(strip: Strip, start: int) -> list[tuple[str, Color | None]]:
    """Each visible character from cell ``start`` on, with its colour."""
    found, x = [], 0
    for segment in strip:
        for char in segment.text:
            if x >= start and char != " ":
                found.append((char, segment.style.color))
            x += 1
    return found


@pytest.mark.asyncio
async def test_chart_draws_one_candle_per_bar_with_wicks_and_half_cell_bodies():
    chart = Chart()
    app = PaneApp(chart)
    async with app.run_test(size=(40, 12)) as pilot:
        chart.set_bars("TEST", THREE_BARS)
        await pilot.pause()
        # 10 plot rows = 20 half-cell levels for 100..119: a price's level is price - 100.
        # The y-axis labels are 6 wide, then the axis, then a gap before each candle:
        # candles at x = 8, 10, 12.
        plot = range(1, 11)
        assert column(chart, 8, plot) == "    ╷▄███│"
        assert column(chart, 10, plot) == "│▄████│   "
        assert column(chart, 12, plot) == " ▄█████▀  "
        drawn = glyphs(chart.render_line(6), start=8)
        assert [char for char, _ in drawn] == ["▄", "█", "█"]
        assert [is_theme(colour, app, "success") for _, colour in drawn] == [True, True, False]
        assert is_theme(drawn[2][1], app, "error")


@pytest.mark.asyncio
async def test_chart_labels_prices_and_new_york_times():
    chart = Chart()
    async with PaneApp(chart).run_test(size=(40, 12)) as pilot:
        chart.set_bars("TEST", THREE_BARS)
        await pilot.pause()
        rendered = lines(chart)
        # O: first open, H/L: the day's extremes, C: last close, change (105 - 102) / 102
        # The title at 40 columns: symbol, last, change, then whole fields while they fit.
        assert rendered[0] == "TEST 105.00 +2.94%  1m O 102.00 H 119.00"
        assert [line[:7] for line in rendered[1:11:4]] == ["118.50┤", "110.50┤", "      │"]
        assert rendered[10][:7] == "100.50┤"
        assert rendered[11] == "        09:30"


def test_chart_title_gives_up_open_high_low_before_the_last_price_and_change():
    def title(width: int) -> str:
        return chart_title(
            "AAPL", D("131.00"), D("134.10"), D("130.90"), D("133.20"), D("1.68"), width
        ).plain

    assert title(60) == "AAPL 133.20 +1.68%  1m O 131.00 H 134.10 L 130.90"
    assert title(43) == "AAPL 133.20 +1.68%  1m O 131.00 H 134.10"
    assert title(25) == "AAPL 133.20 +1.68%  1m"
    assert title(20) == "AAPL 133.20 +1.68%"


def test_a_narrow_chart_draws_a_line_of_closes():
    drawn = draw_chart("TEST", THREE_BARS, 25, 12)
    plot = [line.plain[7:10] for line in drawn[1:11]]
    # closes 108, 116, 105 -> levels 8, 16, 5 -> rows 5 (lower half), 1 (lower), 7 (upper)
    assert plot == ["   ", " ▄ ", "   ", "   ", "   ", "▄  ", "   ", "  ▀", "   ", "   "]


class BarsClient:
    """A fake engine client that only serves bars."""

    def __init__(self, bars: dict[str, tuple[Bar, ...]]) -> None:
        self._bars = dict(bars)

    def serve(self, symbol: str, bars: tuple[Bar, ...]) -> None:
        self._bars[symbol] = bars

    async def bars(self, symbol: str) -> list[Bar]:
        return list(self._bars.get(symbol, ()))


@pytest.mark.asyncio
async def test_chart_show_loads_the_symbols_bars_from_the_client():
    chart = Chart()
    async with PaneApp(chart).run_test(size=(40, 12)) as pilot:
        await chart.show(BarsClient({"TEST": THREE_BARS}), "TEST")
        await pilot.pause()
        assert chart.symbol == "TEST"
        assert lines(chart, 1)[0].startswith("TEST 105.00 +2.94%")
        await chart.show(BarsClient({}), "NONE")
        await pilot.pause()
        assert lines(chart, 1) == ["NONE: no bars yet today"]


@pytest.mark.asyncio
async def test_chart_reloads_when_a_new_minute_bar_arrives():
    chart = Chart()
    client = BarsClient({"TEST": THREE_BARS[:2]})
    async with PaneApp(chart).run_test(size=(40, 12)) as pilot:
        await chart.show(client, "TEST")
        await pilot.pause()
        assert column(chart, 12, range(1, 11)) == " " * 10
        client.serve("TEST", THREE_BARS)
        chart.apply(snapshot((quote("TEST", 7, closes=("108", "116", "105")),)))
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert column(chart, 12, range(1, 11)) == " ▄█████▀  "


# -- with a real engine ---------------------------------------------------------------------


class AllPanes(App):
    def compose(self) -> ComposeResult:
        yield QuoteBoard(["AAPL", "MSFT"], id="quotes")
        yield Blotter(id="blotter")
        yield PositionsPane(id="positions")
        yield RiskPane(id="risk")
        yield HealthPane(id="health")
        yield Chart(id="chart")


@pytest.mark.asyncio
async def test_panes_follow_a_real_engine_through_a_fill(client):
    app = AllPanes()
    async with app.run_test(size=(120, 80)) as pilot:
        panes = [app.query_one(f"#{name}") for name in ("quotes", "blotter", "positions")]
        panes += [app.query_one(f"#{name}") for name in ("risk", "health", "chart")]
        outcome = await client.execute("buy 100 AAPL")
        for _ in range(50):
            client.engine.driver.step()
        pulled = await client.snapshot(Cursor())
        for pane in panes:
            pane.apply(pulled)
        await pilot.pause()
        board, blotter, positions = panes[:3]
        position = client.engine.oms.position("AAPL")
        assert board.snapshot_of("AAPL").last == client.engine.market.last_price("AAPL")
        assert blotter.order_ids == [outcome.order_id]
        assert blotter.selected_order.status is OrderStatus.FILLED
        row = lines(positions, 2)[1].split()
        assert row[:3] == ["AAPL", "100", fmt_price(position.avg_cost)]


# -- message line -------------------------------------------------------------------------------


def test_an_alert_that_repeats_its_own_lead_in_is_said_once():
    assert without_echo("kill switch engaged: kill switch engaged by the trader") == (
        "kill switch engaged by the trader"
    )
    assert without_echo("order rejected: MSFT is not shortable") == (
        "order rejected: MSFT is not shortable"
    )


def alert(message: str) -> Alert:
    return Alert(OPEN_NS, Severity.ERROR, message, "oms")


@pytest.mark.asyncio
async def test_an_alert_already_said_by_the_outcome_leaves_the_line_alone():
    line = MessageLine()
    async with PaneApp(line).run_test(size=(100, 3)) as pilot:
        line.show("kill switch engaged by the trader; open orders cancelled")
        line.show_alerts((alert("kill switch engaged: kill switch engaged by the trader"),))
        await pilot.pause()
        assert line.text == "kill switch engaged by the trader; open orders cancelled"


@pytest.mark.asyncio
async def test_a_new_alert_replaces_the_outcome():
    line = MessageLine()
    async with PaneApp(line).run_test(size=(100, 3)) as pilot:
        line.show("buy 10 MSFT sent")
        line.show_alerts((alert("feed disconnected"),))
        await pilot.pause()
        assert line.text == "feed disconnected"
