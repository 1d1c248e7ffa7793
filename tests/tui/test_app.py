"""The console app over a real in-process engine: what the trader types is what the engine gets.

Every test builds a deterministic engine (fixed seed, a fixed session date, the
market stepped by hand, no background timers) behind a ``LocalClient`` and
drives the real app with Textual's Pilot.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from textual.binding import Binding
from textual.color import Color
from textual.widgets._footer import FooterKey

from engine.cli import main as cli_main
from engine.client import Cursor
from engine.config import load_settings
from engine.core.models import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from tests.tui.conftest import order_line, put_line, send_line, type_line
from tui.__main__ import open_console
from tui.app import TickdeckApp
from tui.screens.confirm import ConfirmKill, ConfirmOrder
from tui.screens.help import HelpScreen, class_bindings
from tui.screens.main import MainScreen
from tui.themes import ThemeError, load_themes, parse_theme
from tui.widgets.blotter import Blotter
from tui.widgets.order_line import OrderLine, OrderPreview, symbol_completion
from tui.widgets.quote_board import QuoteBoard

D = Decimal
NO_COLLARS = {"risk.collar_soft_pct": "none", "risk.collar_hard_pct": "none"}
ORDER_FIELDS = (
    "symbol",
    "side",
    "qty",
    "type",
    "tif",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "extended_hours",
    "source",
    "parent_id",
)


def request_of(order) -> OrderRequest:
    """The request an order was made from, as the OMS recorded it."""
    return OrderRequest(**{name: getattr(order, name) for name in ORDER_FIELDS})


# -- order entry ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_order_line_has_focus_when_the_console_opens(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)):
        assert isinstance(app.focused, OrderLine)


@pytest.mark.asyncio
async def test_the_engine_receives_exactly_the_order_typed(console):
    app, engine = console(**NO_COLLARS)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_line(pilot, "buy 100 AAPL lmt 187.50 gtc")
        await pilot.press("enter")
        (order,) = engine.oms.orders()
    assert request_of(order) == OrderRequest(
        symbol="AAPL",
        side=Side.BUY,
        qty=D(100),
        type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        limit_price=D("187.50"),
    )


@pytest.mark.asyncio
async def test_a_sent_order_clears_the_line_and_says_so(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 10 MSFT lmt 1.00 gtc")
        await pilot.press("enter")
        (order,) = engine.oms.orders()
        assert order_line(app).value == ""
        assert app.main.message_line.text == f"{order.id} sent: buy 10 MSFT limit 1.00"


@pytest.mark.asyncio
async def test_bad_input_points_at_the_bad_token_and_sends_nothing(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 10x AAPL")
        preview = app.screen.query_one(OrderPreview)
        shown = app.main.order_entry.preview
        await pilot.press("enter")
        assert (shown.error_token, shown.error_position) == ("10x", 4)
        assert "'10x'" in str(preview.render())
        assert engine.oms.orders() == []
        assert order_line(app).value == "buy 10x AAPL"
        assert "'10x'" in app.main.message_line.text


@pytest.mark.asyncio
async def test_the_preview_shows_notional_distance_from_the_touch_and_buying_power_after(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        ask = engine.market.quote("MSFT").ask
        buying_power = engine.oms.buying_power()
        await put_line(pilot, f"buy 100 msft lmt {ask + D('0.05')}")
        text = str(app.screen.query_one(OrderPreview).render())
    notional = 100 * (ask + D("0.05"))
    pct = (D("0.05") / ask * 100).quantize(D("0.01"))
    assert f"buy 100 MSFT lmt {ask + D('0.05')}" in text
    assert f"notional ${notional:,.2f}" in text
    assert f"+{pct}% +5 ticks vs ask {ask}" in text
    assert f"buying power after ${buying_power - notional:,.2f}" in text
    assert "✔ passes every risk check" in text


@pytest.mark.asyncio
async def test_the_preview_lists_each_check_that_would_fail_on_its_own_line(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 100000 AAPL")
        text = str(app.screen.query_one(OrderPreview).render())
        violations = app.main.order_entry.preview.violations
    checks = text.splitlines()[1:]
    assert {"max_order_qty", "max_order_notional"} <= {v.check.value for v in violations}
    if len(violations) <= 3:
        assert checks == [f"✗ {v.message}" for v in violations]
    else:
        assert checks == [
            *(f"✗ {v.message}" for v in violations[:2]),
            f"… and {len(violations) - 2} more",
        ]


@pytest.mark.asyncio
async def test_on_a_short_terminal_the_preview_says_how_many_checks_it_leaves_out(console):
    app, _ = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await put_line(pilot, "buy 100000 AAPL")
        preview = app.screen.query_one(OrderPreview)
        text = str(preview.render())
        violations = app.main.order_entry.preview.violations
        height = preview.size.height
    assert len(violations) >= 2
    assert text.splitlines()[1:] == [
        f"✗ {violations[0].message}",
        f"… and {len(violations) - 1} more",
    ]
    assert height == 3


@pytest.mark.asyncio
async def test_a_risk_rejection_keeps_the_line_and_shows_the_reason(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 100000 AAPL")
        await pilot.press("enter")
        assert engine.oms.orders() == []
        assert order_line(app).value == "buy 100000 AAPL"
        assert app.main.message_line.text.startswith("rejected by risk:")
        assert app.main.message_line.tone == "error"


@pytest.mark.asyncio
async def test_a_soft_collar_breach_opens_the_confirmation_dialog(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        price = (engine.market.quote("MSFT").ask * D("1.03")).quantize(D("0.01"))
        await put_line(pilot, f"buy 10 MSFT lmt {price}")
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmOrder)
        assert any("collar" in reason for reason in app.screen.reasons)
        assert engine.oms.orders() == []


@pytest.mark.asyncio
async def test_confirming_a_soft_collar_breach_sends_the_order(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        price = (engine.market.quote("MSFT").ask * D("1.03")).quantize(D("0.01"))
        await put_line(pilot, f"buy 10 MSFT lmt {price}")
        await pilot.press("enter")
        await pilot.press("y")
        await pilot.pause()
        (order,) = engine.oms.orders()
        assert isinstance(app.screen, MainScreen)
    assert (order.symbol, order.qty, order.limit_price) == ("MSFT", D(10), price)


@pytest.mark.asyncio
async def test_declining_the_confirmation_sends_nothing_and_keeps_the_line(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        price = (engine.market.quote("MSFT").ask * D("1.03")).quantize(D("0.01"))
        await put_line(pilot, f"buy 10 MSFT lmt {price}")
        await pilot.press("enter")
        await pilot.press("n")
        await pilot.pause()
        assert engine.oms.orders() == []
        assert order_line(app).value == f"buy 10 MSFT lmt {price}"


@pytest.mark.asyncio
async def test_enter_on_the_dialog_cancels_rather_than_confirms(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        price = (engine.market.quote("MSFT").ask * D("1.03")).quantize(D("0.01"))
        await put_line(pilot, f"buy 10 MSFT lmt {price}")
        await pilot.press("enter")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert engine.oms.orders() == []


@pytest.mark.asyncio
async def test_tab_completes_the_symbol_being_typed(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await type_line(pilot, "b 1 ms")
        await pilot.press("tab")
        assert order_line(app).value == "b 1 MSFT "


@pytest.mark.asyncio
async def test_tab_names_the_other_matching_symbols_on_the_message_line(console):
    app, _ = console(symbols="AAPL,AMZN,MSFT")
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "b 1 a")
        await pilot.press("tab")
        assert order_line(app).value == "b 1 AAPL "
        assert app.main.message_line.text == "A also matches AMZN"


@pytest.mark.asyncio
async def test_tab_with_nothing_to_complete_moves_focus_on(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 100 MSFT ")
        await pilot.press("tab")
        assert not isinstance(app.focused, OrderLine)


def test_completion_applies_to_the_symbol_of_an_order_or_a_flatten_only():
    symbols = ["AAPL", "AMZN", "MSFT"]
    assert symbol_completion("b 5 a", symbols) == (4, "AAPL")
    assert symbol_completion("flatten am", symbols) == (8, "AMZN")
    assert symbol_completion("buy 5 aapl lmt", symbols) is None
    assert symbol_completion("buy 5 ", symbols) is None
    assert symbol_completion("cancel a", symbols) is None


@pytest.mark.asyncio
async def test_up_recalls_the_previous_line_and_down_returns_to_the_draft(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 10 MSFT lmt 1.00 gtc")
        await pilot.press("enter")
        await put_line(pilot, "sell 5")
        await pilot.press("up")
        recalled = order_line(app).value
        await pilot.press("down")
        assert (recalled, order_line(app).value) == ("buy 10 MSFT lmt 1.00 gtc", "sell 5")


@pytest.mark.asyncio
async def test_letters_typed_on_the_order_line_never_fire_pane_keys(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await type_line(pilot, "yfnq")
        assert isinstance(app.screen, MainScreen)
        assert order_line(app).value == "yfnq"
        assert engine.oms.orders() == []


# -- hotkeys ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_f2_prefills_a_buy_ticket_at_the_ask_of_the_selected_quote(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.pull()
        await pilot.press("f2")
        ask = engine.market.quote("AAPL").ask
        assert app.screen.query_one(QuoteBoard).selected_symbol == "AAPL"
        assert order_line(app).value == f"buy 100 AAPL lmt {ask:.2f} "
        assert isinstance(app.focused, OrderLine)


@pytest.mark.asyncio
async def test_f3_prefills_a_sell_ticket_at_the_bid(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.pull()
        app.screen.query_one(QuoteBoard).selected_symbol = "MSFT"
        await pilot.press("f3")
        bid = engine.market.quote("MSFT").bid
        assert order_line(app).value == f"sell 100 MSFT lmt {bid:.2f} "


@pytest.mark.asyncio
async def test_the_ticket_size_comes_from_the_config(console):
    app, _ = console(**{"console.ticket_qty": 25})
    async with app.run_test(size=(120, 40)) as pilot:
        await app.pull()
        await pilot.press("f2")
        assert order_line(app).value.startswith("buy 25 AAPL lmt ")


@pytest.mark.asyncio
async def test_the_kill_switch_key_and_confirmation_engage_it(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f12")
        assert isinstance(app.screen, ConfirmKill)
        await pilot.press("y")
        snapshot = await app.client.snapshot(Cursor())
    assert snapshot.risk.kill_engaged


@pytest.mark.asyncio
async def test_cancelling_the_kill_dialog_leaves_trading_on(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f12")
        await pilot.press("n")
        await pilot.pause()
        snapshot = await app.client.snapshot(Cursor())
    assert not snapshot.risk.kill_engaged


@pytest.mark.asyncio
async def test_the_palette_resets_the_kill_switch(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.client.kill()
        await pilot.press("ctrl+p", *"reset")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        assert not engine.risk.kill_switch.engaged


@pytest.mark.asyncio
async def test_every_app_key_is_also_a_palette_command(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)):
        titles = {command.title for command in app.palette_commands()}
    keyed = {b.tooltip for b in class_bindings(TickdeckApp) if b.id and b.id.startswith("app.")}
    assert keyed - {"Open the command palette: every action by name"} <= titles


@pytest.mark.asyncio
async def test_cancel_from_the_blotter_cancels_the_selected_order(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await send_line(pilot, engine, "buy 10 MSFT lmt 1.00 gtc")
        await pilot.press("f7")
        await pilot.press("ctrl+x")
        engine.driver.step()
        (order,) = engine.oms.orders()
    assert order.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)


@pytest.mark.asyncio
async def test_replace_from_the_blotter_prefills_the_order_line(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await send_line(pilot, engine, "buy 10 MSFT lmt 1.00 gtc")
        await pilot.press("f7")
        await pilot.press("ctrl+r")
        (order,) = engine.oms.orders()
        assert order_line(app).value == f"replace {order.id} px "
        assert isinstance(app.focused, OrderLine)


@pytest.mark.asyncio
async def test_quitting_stops_the_engine_and_cancels_working_orders(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 10 MSFT lmt 1.00 gtc")
        await pilot.press("enter")
        engine.driver.step()
        await pilot.press("ctrl+q")
    (order,) = engine.oms.orders()
    assert (app.return_code, order.status) == (0, OrderStatus.CANCELED)


# -- panes and layout -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_f10_fills_the_screen_with_the_current_pane_and_puts_it_back(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6", "f10")
        maximized = app.screen.maximized
        await pilot.press("f10")
        assert (maximized.id, app.screen.maximized) == ("quotes", None)


@pytest.mark.asyncio
async def test_f9_focuses_risk_then_health_then_risk(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        seen = []
        for _ in range(3):
            await pilot.press("f9")
            seen.append(app.main.current_pane)
        assert seen == ["risk", "health", "risk"]


@pytest.mark.asyncio
async def test_a_maximized_pane_keeps_the_status_bar_at_the_top(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f9", "f10")
        status, risk = app.screen.query_one("#status"), app.screen.pane("risk")
        assert (status.region.y, risk.region.y) == (0, 1)


@pytest.mark.asyncio
async def test_the_order_line_text_starts_one_cell_in(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await put_line(pilot, "buy 10 MSFT")
        line = order_line(app)
        assert (line.region.x, line.content_region.x) == (0, 1)


@pytest.mark.asyncio
async def test_at_80_columns_the_footer_fits_and_keeps_kill_and_quit(console):
    app, _ = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.client.execute("buy 50 MSFT lmt 1.00 gtc")
        await pilot.app.pull()
        await pilot.press("f7")
        await pilot.pause()
        keys = [key for key in app.screen.query(FooterKey) if key.display]
        assert max(key.region.right for key in keys) <= 80
        assert {"f12", "ctrl+q", "ctrl+x"} <= {key.key for key in keys}


@pytest.mark.asyncio
async def test_at_80x24_the_quotes_share_the_screen_with_one_secondary_pane(console):
    app, _ = console()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        shown = [p for p in ("blotter", "positions", "risk", "health") if screen.pane(p).display]
        await pilot.press("f8")
        after = [p for p in ("blotter", "positions", "risk", "health") if screen.pane(p).display]
        assert screen.pane("quotes").region.height > 0
    assert (shown, after) == (["blotter"], ["positions"])


@pytest.mark.asyncio
async def test_at_120x40_every_pane_is_on_screen(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        heights = {
            p: app.screen.pane(p).region.height
            for p in ("quotes", "blotter", "positions", "risk", "health")
        }
    assert all(height >= 8 for height in heights.values()), heights


@pytest.mark.asyncio
async def test_f4_shows_the_chart_of_the_selected_symbol(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        chart = app.screen.pane("chart")
        assert (chart.display, chart.symbol) == (True, "AAPL")
        assert not app.screen.pane("positions").display


@pytest.mark.asyncio
async def test_f4_again_charts_the_daily_history_and_a_third_time_hides_it(console):
    app, engine = console()
    async with app.run_test(size=(120, 40)) as pilot:
        assert engine.backfill()  # the sim backfills from the bundled daily sample
        await asyncio.to_thread(engine.history.done.wait, 60)
        await pilot.press("f4", "f4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        chart = app.screen.pane("chart")
        lines = [str(line) for line in chart.render().split("\n")]
        assert chart.daily and lines[0].startswith("AAPL ") and "1D" in lines[0]
        assert "04-" in lines[-1]  # dates on the axis: the sample's last April days
        assert [b.timeframe for b in await app.client.history("AAPL")][-1] == "1Day"
        await pilot.press("f4")
        await pilot.pause()
        assert not chart.display and app.screen.pane("positions").display


@pytest.mark.asyncio
async def test_the_status_bar_shows_engine_time_and_no_wall_clock(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)):
        text = str(app.screen.query_one("#status").render())
    assert "Fri 2024-03-15 09:30:" in text and "local" not in text


@pytest.mark.asyncio
async def test_engine_alerts_reach_the_message_line(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)):
        await app.client.kill()
        await app.pull()
        assert app.main.message_line.text.startswith("kill switch engaged")


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_help_screen_lists_every_binding_id(console):
    app, _ = console()
    classes = (TickdeckApp, MainScreen, OrderLine, QuoteBoard, Blotter, ConfirmOrder, ConfirmKill)
    expected = {b.id for cls in (*classes, HelpScreen) for b in class_bindings(cls) if b.id}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        listed = {row.binding_id for row in app.screen.rows}
    assert expected <= listed


def test_every_console_binding_has_an_id_and_a_description():
    for cls in (TickdeckApp, MainScreen, OrderLine, ConfirmOrder, ConfirmKill, HelpScreen):
        for binding in Binding.make_bindings(cls.BINDINGS):
            assert binding.id and binding.tooltip and binding.description, binding


@pytest.mark.asyncio
async def test_a_keymap_from_the_config_moves_a_key(console):
    app, _ = console(**{"console.keymap": "app.buy_ticket=ctrl+b"})
    async with app.run_test(size=(120, 40)) as pilot:
        await app.pull()
        await pilot.press("f2")
        before = order_line(app).value
        await pilot.press("ctrl+b")
        assert (before, order_line(app).value.startswith("buy 100 AAPL")) == ("", True)


@pytest.mark.asyncio
async def test_the_help_screen_shows_keys_after_the_keymap(console):
    app, _ = console(**{"console.keymap": "app.buy_ticket=ctrl+b"})
    async with app.run_test(size=(120, 40)):
        (row,) = [r for r in app.key_rows() if r.binding_id == "app.buy_ticket"]
    assert row.keys == "^b"


@pytest.mark.asyncio
async def test_an_unknown_keymap_id_is_reported_on_the_message_line(console):
    app, _ = console(**{"console.keymap": "app.no_such_thing=f11"})
    async with app.run_test(size=(120, 40)):
        assert "'app.no_such_thing'" in app.main.message_line.text


# -- themes -------------------------------------------------------------------------------------


def test_three_themes_ship_as_data():
    themes = load_themes()
    assert set(themes) == {"tickdeck-dark", "tickdeck-light", "tickdeck-amber"}
    assert [themes[name].dark for name in sorted(themes)] == [True, True, False]


def test_a_theme_file_with_an_unknown_key_is_refused():
    with pytest.raises(ThemeError, match="unknown key 'primry'"):
        parse_theme('name = "x"\nprimary = "#000000"\nprimry = "#111111"\n', "x.toml")


def test_a_theme_colour_textual_cannot_parse_is_refused():
    with pytest.raises(ThemeError, match=r"success in theme x\.toml is not a colour"):
        parse_theme('name = "x"\nprimary = "#000000"\nsuccess = "greenish"\n', "x.toml")


@pytest.mark.asyncio
async def test_the_config_chooses_the_theme(console):
    app, _ = console(**{"console.theme": "tickdeck-amber"})
    async with app.run_test(size=(120, 40)):
        assert app.theme == "tickdeck-amber"


@pytest.mark.asyncio
async def test_ctrl_t_switches_to_the_next_tickdeck_theme(console):
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        first = app.theme
        await pilot.press("ctrl+t")
        assert (first, app.theme) == ("tickdeck-dark", "tickdeck-light")


@pytest.mark.asyncio
async def test_no_color_turns_the_screen_grey_ticks_included(console, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.pull()
        await pilot.pause()
        board = app.screen.query_one(QuoteBoard)
        strips = [board.render_line(y) for y in range(board.size.height)]
        for line_filter in app.get_line_filters():
            strips = [strip.apply_filter(line_filter, Color(0, 0, 0)) for strip in strips]
    colours = {
        colour
        for strip in strips
        for segment in strip
        if segment.style is not None
        for colour in (segment.style.color, segment.style.bgcolor)
        if colour is not None and colour.triplet is not None
    }
    assert colours
    assert all(len(set(colour.triplet)) == 1 for colour in colours), colours


# -- the command line -------------------------------------------------------------------------


def test_the_console_options_reach_the_settings():
    seen = []

    def console(settings, make_client) -> int:
        seen.append(settings)
        return 0

    argv = [
        "--replay",
        "data.zip",
        "--speed",
        "4",
        "--theme",
        "tickdeck-light",
        "--refresh-hz",
        "15",
    ]
    assert cli_main([*argv, "--no-mouse", "--fps", "20"], console=console) == 0
    (settings,) = seen
    assert (settings.mode.value, settings.data, settings.speed) == ("replay", "data.zip", 4.0)
    assert (settings.console.theme, settings.console.refresh_hz) == ("tickdeck-light", 15)
    assert (settings.console.mouse, settings.console.fps) == (False, 20)


def test_an_unknown_theme_is_one_sentence_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setenv("TEXTUAL_FPS", "30")
    built = []
    status = open_console(
        load_settings(env={}, cli={"console.theme": "neon"}), lambda: built.append(1)
    )
    assert (status, built) == (2, [])
    assert capsys.readouterr().err.startswith("tickdeck: there is no theme 'neon'")
