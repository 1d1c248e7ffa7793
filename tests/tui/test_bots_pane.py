"""The bots pane (ctrl+b): the queue's approve, edit and reject keys, and bot start/stop and mode."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.bots.api import BotMode, BotState
from engine.core.models import Side
from tests.bots.conftest import HandBot
from tests.tui.conftest import order_line
from tui.widgets.bots_pane import BotsPane

SIZE = (140, 40)


def build(console):
    """The console with a built-in momentum bot and a hand-driven ``scout`` bot, both advising."""
    app, engine = console(**{"bots.run": ["momentum:advise:symbols=AAPL"]})
    scout = engine.bots.add_bot("scout", HandBot, {"symbols": "AAPL"}, BotMode.ADVISE)
    return app, engine, scout


async def open_bots(pilot) -> BotsPane:
    await pilot.press("ctrl+b")
    await pilot.app.main.pull_bots()
    await pilot.pause()
    return pilot.app.screen.query_one(BotsPane)


def scout_orders(engine):
    return [o for o in engine.oms.orders() if o.source == "bot:scout"]


@pytest.mark.asyncio
async def test_ctrl_b_shows_the_bots_pane_in_place_of_positions(console):
    app, _, _ = build(console)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_bots(pilot)
        assert pane.display and not app.screen.query_one("#positions").display
        assert app.focused is pane
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert not pane.display and app.screen.query_one("#positions").display


@pytest.mark.asyncio
async def test_a_approves_the_selected_opportunity_as_the_bots_order(console):
    app, engine, scout = build(console)
    async with app.run_test(size=SIZE) as pilot:
        scout.propose(Side.BUY, 10)
        pane = await open_bots(pilot)
        assert pane.selected.kind == "opportunity"
        await pilot.press("a")
        await pilot.pause()
        assert [(o.side, o.qty) for o in scout_orders(engine)] == [(Side.BUY, Decimal(10))]
        assert engine.bots.opportunities() == []
        assert app.main.message_line.text.startswith("td-")


@pytest.mark.asyncio
async def test_e_puts_the_opportunity_on_the_order_line_to_edit(console):
    app, engine, scout = build(console)
    async with app.run_test(size=SIZE) as pilot:
        scout.propose(Side.SELL, 7)
        (queued,) = engine.bots.opportunities()
        await open_bots(pilot)
        await pilot.press("e")
        await pilot.pause()
        assert order_line(app).value == f"sell 7 AAPL lmt {queued.limit} "
        assert engine.bots.opportunities() == []
        assert scout_orders(engine) == []


@pytest.mark.asyncio
async def test_r_rejects_the_opportunity_and_sends_nothing(console):
    app, engine, scout = build(console)
    async with app.run_test(size=SIZE) as pilot:
        scout.propose(Side.BUY, 3)
        await open_bots(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert engine.bots.opportunities() == []
        assert scout_orders(engine) == []
        assert app.main.message_line.text.startswith("rejected buy 3 AAPL")


@pytest.mark.asyncio
async def test_m_cycles_and_s_stops_the_selected_bot(console):
    app, engine, _ = build(console)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_bots(pilot)
        assert pane.selected.key == "momentum"  # no opportunity queued: the first bot
        await pilot.press("m")
        await pilot.pause()
        assert engine.bots.view("momentum").mode is BotMode.AUTO
        await pilot.press("s")
        await pilot.pause()
        assert engine.bots.view("momentum").state is BotState.STOPPED
        await pilot.press("s")
        await pilot.pause()
        assert engine.bots.view("momentum").state is BotState.RUNNING


def test_the_bots_pane_with_a_queued_opportunity(console, snap_compare):
    app, _, scout = build(console)

    async def run_before(pilot) -> None:
        scout.propose(Side.BUY, 25)
        await open_bots(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.asyncio
async def test_p_pauses_the_selected_bot_and_s_resumes_it(console):
    app, engine, _ = build(console)
    async with app.run_test(size=SIZE) as pilot:
        await open_bots(pilot)
        await pilot.press("p")
        await pilot.pause()
        assert engine.bots.view("momentum").state is BotState.PAUSED
        await pilot.press("s")
        await pilot.pause()
        assert engine.bots.view("momentum").state is BotState.RUNNING
        assert app.main.message_line.text == "bot momentum resumed (advise)"
