"""The options pane (F11) and the risk pane's portfolio section, over a real sim engine."""

from __future__ import annotations

from datetime import date

import pytest

from tests.tui.conftest import put_line, step
from tui.widgets.options_pane import ATM_STYLE, OptionsPane
from tui.widgets.order_line import OrderLine
from tui.widgets.risk_pane import RiskPane

SIZE = (160, 50)
NEXT, PREVIOUS = "right_square_bracket", "left_square_bracket"


async def open_options(pilot) -> OptionsPane:
    await pilot.press("f11")
    await settle(pilot)
    return pilot.app.screen.query_one(OptionsPane)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def lines(pane: OptionsPane) -> list[str]:
    return str(pane.render()).splitlines()


def strike_row(pane: OptionsPane, strike: str) -> list[str]:
    """The table row of ``strike`` as its cells (the strike is the middle one)."""
    for line in lines(pane)[3:]:
        cells = line.split()
        if len(cells) % 2 and cells[len(cells) // 2] == strike:
            return cells
    raise AssertionError(f"no row for strike {strike}")


@pytest.mark.asyncio
async def test_f11_shows_the_chain_of_the_selected_symbol_in_place_of_positions(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        selected = app.main.quote_board.selected_symbol
        pane = await open_options(pilot)
        assert pane.display and not app.screen.query_one("#positions").display
        assert pane.symbol == selected
        assert lines(pane)[0].startswith(f"{selected} ")
        assert app.focused is pane


@pytest.mark.asyncio
async def test_f11_again_puts_positions_and_risk_back(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        await pilot.press("f11")
        await pilot.pause()
        assert not pane.display
        assert app.screen.query_one("#positions").display and app.screen.query_one("#risk").display


@pytest.mark.asyncio
async def test_the_first_expiry_shown_is_the_nearest_after_today(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        assert pane.expiry == date(2024, 3, 22)  # the session is Friday 2024-03-15
        assert "exp 2024-03-22 (7d)  2/17" in lines(pane)[0]


@pytest.mark.asyncio
async def test_the_next_expiry_key_moves_one_expiry_out_and_redraws_it(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        await pilot.press(NEXT)
        await settle(pilot)
        assert pane.expiry == date(2024, 3, 29)
        assert "exp 2024-03-29 (14d)  3/17" in lines(pane)[0]


@pytest.mark.asyncio
async def test_ctrl_left_moves_one_expiry_nearer_and_stops_at_the_first(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        await pilot.press("ctrl+left", "ctrl+left")
        await settle(pilot)
        assert pane.expiry == date(2024, 3, 15)
        assert "exp 2024-03-15 (0d)  1/17" in lines(pane)[0]


@pytest.mark.asyncio
async def test_expiry_keys_type_into_the_order_line_when_it_has_focus(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        await pilot.press("f5", NEXT)
        await settle(pilot)
        assert app.screen.query_one(OrderLine).value == "]"
        assert pane.expiry == date(2024, 3, 22)


@pytest.mark.asyncio
async def test_the_rendered_atm_row_shows_the_engine_contract_values(console):
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        # Maximized (F10) the pane has room for every column; 2024-04-19 is about a month out.
        await pilot.press("f10", NEXT, NEXT, NEXT, NEXT)
        await settle(pilot)
        chain = engine.options.chain(pane.symbol)
        views = chain.views(date(2024, 4, 19))
        strikes = [float(v.contract.symbol.strike) for v in views[0::2]]
        atm = min(range(len(strikes)), key=lambda i: abs(strikes[i] - chain.spot))
        call, put = views[2 * atm], views[2 * atm + 1]
        strike = f"{strikes[atm]:g}"
        cells = strike_row(pane, strike)

    def side(v) -> list[str]:
        return [
            f"{v.bid:.2f}",
            f"{v.ask:.2f}",
            f"{v.iv * 100:.1f}",
            f"{v.delta:.3f}",
            f"{v.edge:+.2f}",
            f"{v.theo:.2f}",
            f"{v.mid:.2f}",
            f"{v.vega / 100:.3f}",  # $ per vol point
            f"{v.theta / 365:.3f}",  # $ per calendar day
            f"{v.gamma:.4f}",
        ]

    assert cells == [*reversed(side(call)), strike, *side(put)]


@pytest.mark.asyncio
async def test_the_atm_strike_is_highlighted(console):
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        content = pane.render()
        chain = engine.options.chain(pane.symbol)
        strikes = [float(v.contract.symbol.strike) for v in chain.views(pane.expiry)[0::2]]
        atm = min(strikes, key=lambda s: abs(s - chain.spot))
        highlighted = [
            content.plain[span.start : span.end].strip()
            for span in content.spans
            if span.style == ATM_STYLE
        ]
        assert highlighted == [f"{atm:g}"]


@pytest.mark.asyncio
async def test_the_pane_keeps_its_chain_until_the_engine_reprices_it(console):
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        shown = pane.chain
        await app.pull()
        await settle(pilot)
        assert pane.chain is shown
        step(engine, 300)
        await app.pull()
        await settle(pilot)
        assert pane.chain.version > shown.version
        assert pane.chain.version == engine.options.chain(pane.symbol).version


@pytest.mark.asyncio
async def test_the_smile_plot_draws_market_dots_and_the_fit_under_the_table(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_options(pilot)
        text = lines(pane)
        caption = next(i for i, line in enumerate(text) if line.startswith("SMILE"))
        assert f"rmse {pane.smile.rmse * 100:.2f} vol pts" in text[caption]
        plot = text[caption + 1 :]
        assert len(plot) == 8
        top = f"{max(pane.smile.market_vol + pane.smile.fitted_vol) * 100:.1f}%"
        assert plot[0].startswith(top + "┤")
        assert all(any("\u2800" < ch <= "\u28ff" for ch in row) for row in plot[:1])


# -- the risk pane's portfolio section ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_flat_book_shows_zero_greeks_and_no_var(console):
    app, _ = console()
    async with app.run_test(size=(120, 50)):
        text = str(app.screen.query_one(RiskPane).render())
        assert "PORTFOLIO  Δ $0  Γ/1% $0  vega $0  θ/d $0\nVaR 99% 1d no open positions" in text


@pytest.mark.asyncio
async def test_a_stock_position_shows_its_dollar_delta_and_var(console):
    app, engine = console(**{"risk.collar_soft_pct": "none"})
    async with app.run_test(size=(120, 50)) as pilot:
        await put_line(pilot, "buy 100 AAPL")
        await pilot.press("enter")
        await settle(pilot)
        step(engine, 50)
        await app.main.pull_portfolio()
        await pilot.pause()
        risk = await app.client.portfolio_risk()
        text = str(app.screen.query_one(RiskPane).render())
    spot = risk.greeks.by_underlying[0].spot
    assert f"Δ ${100 * spot / 1000:.1f}K  Γ/1% $0" in text
    assert f"VaR 99% 1d ${risk.var.var:,.2f}  ES ${risk.var.expected_shortfall:,.2f}" in text
