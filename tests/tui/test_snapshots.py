"""Snapshots of the console: every pane and the key flows, as SVGs under ``__snapshots__/``.

Each test builds the deterministic engine from ``conftest.py`` (seed 4, the
2024-03-15 session, a market that moves only when stepped, no background
timers) and the app with ``make_app(deterministic=True)``: no cursor blink, no
animations, no wall clock on screen, health readings that do not depend on
timing. The same steps therefore draw the same screen, byte for byte.

Regenerate with ``pytest tests/tui/test_snapshots.py --snapshot-update`` (serially,
never under xdist) and look at every changed SVG before accepting it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.core.clock import NS_PER_SECOND
from engine.core.models import OrderStatus
from engine.node import Engine
from tests.tui.conftest import put_line, step, type_line
from tui.app import TickdeckApp
from tui.screens.confirm import ConfirmKill, ConfirmOrder
from tui.screens.help import HelpScreen

WATCHLIST = "AAPL,AMZN,GOOGL,JPM,KO,MSFT,NVDA,TSLA,WMT,XOM"
# A fifth of the calibrated tick rate: twenty minutes of session (sparklines, a chart with
# twenty candles) in a fifth of the events, so stepping them takes a fraction of a second.
SLOW_TAPE = {"symbols": WATCHLIST, "sim.rate_scale": 0.2}
SESSION_MINUTES = 20
TICKS_AFTER = 40  # events after the first pull, so some rows show an up or down tick
WIDE = (120, 40)
SMALL = (80, 24)
THEMES = ("tickdeck-dark", "tickdeck-light", "tickdeck-amber")


@pytest.fixture(autouse=True)
def _colour_on(monkeypatch):
    """Snapshots are of the coloured console, whatever the runner's environment says."""
    monkeypatch.delenv("NO_COLOR", raising=False)


def run_market(engine: Engine, minutes: int = SESSION_MINUTES) -> None:
    """Step the market until ``minutes`` of the session have passed."""
    until = engine.clock_start_ns + minutes * 60 * NS_PER_SECOND
    while engine.clock.now_ns() < until and engine.driver.step():
        pass


async def tick(pilot, engine: Engine, events: int = TICKS_AFTER) -> None:
    """Move the market a little and pull, so the board shows ticks and flashes."""
    step(engine, events)
    await pilot.app.pull()
    await pilot.pause()


async def send(pilot, line: str) -> None:
    """Type ``line`` on the order line and press Enter, as a trader would send it."""
    await put_line(pilot, line)
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def ask(engine: Engine, symbol: str) -> Decimal:
    return engine.market.quote(symbol).ask


async def trade_the_morning(pilot, engine: Engine) -> None:
    """Orders in every state: filled, partially filled, working, cancelled.

    All but the last go straight to the client (the pilot tests cover typing them);
    the last is sent from the order line, so the message line shows its outcome.
    """
    client = pilot.app.client
    await client.execute("buy 100 AAPL")  # market: filled at once
    await client.execute("sell 20 NVDA mkt")  # market, short: filled
    await client.execute("buy 50 MSFT lmt 250.00 gtc")  # far under the ask: working
    await client.execute("buy 40 TSLA lmt 700.00 day")  # working, then cancelled
    step(engine, 1)
    await client.execute("cancel #4")
    step(engine, 1)
    # More than the ask shows, at the ask: the touch fills, the rest works.
    await send(pilot, f"buy 1000 XOM lmt {ask(engine, 'XOM')}")
    step(engine, 1)
    await pilot.app.pull()
    await pilot.app.main.pull_portfolio()  # the pull the console makes every few seconds
    await pilot.pause()
    assert {order.status for order in engine.oms.orders()} == {
        OrderStatus.FILLED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.NEW,
        OrderStatus.CANCELED,
    }


def opened(console, **settings: object) -> tuple[TickdeckApp, Engine]:
    """The console over twenty minutes of the watchlist's session."""
    app, engine = console(**SLOW_TAPE, **settings)
    run_market(engine)
    return app, engine


# -- the main screen ----------------------------------------------------------------------------


def test_main_screen_after_twenty_minutes_of_market(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await tick(pilot, engine)

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_main_screen_at_80x24_shows_the_quotes_and_one_pane(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await tick(pilot, engine)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_blotter_after_fills_at_80x24(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await trade_the_morning(pilot, engine)
        await pilot.press("f7", "home")

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


# -- order entry ------------------------------------------------------------------------------


def test_order_entry_shows_the_live_preview_of_the_typed_line(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await type_line(pilot, f"b 300 msft lmt {ask(engine, 'MSFT') + Decimal('0.05')}")

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_a_risk_rejection_shows_its_reasons_in_the_maximized_risk_pane(console, snap_compare):
    app, _ = opened(console)

    async def run_before(pilot) -> None:
        await send(pilot, "buy 100000 AAPL")
        await pilot.press("f9", "f10")

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_a_soft_collar_breach_asks_for_confirmation(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        price = (ask(engine, "MSFT") * Decimal("1.03")).quantize(Decimal("0.01"))
        await send(pilot, f"buy 10 MSFT lmt {price}")
        assert isinstance(pilot.app.screen, ConfirmOrder)

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_blotter_and_positions_after_fills(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await trade_the_morning(pilot, engine)
        await pilot.press("f7", "home")

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


# -- the kill switch ------------------------------------------------------------------------------


def test_the_kill_dialog(console, snap_compare):
    app, _ = opened(console)

    async def run_before(pilot) -> None:
        await pilot.press("f12")
        assert isinstance(pilot.app.screen, ConfirmKill)

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_the_kill_switch_engaged(console, snap_compare):
    app, engine = opened(console)

    async def run_before(pilot) -> None:
        await send(pilot, "buy 50 MSFT lmt 250.00 gtc")
        step(engine, 1)
        await pilot.press("f12", "y")
        await pilot.app.workers.wait_for_complete()
        step(engine, 1)
        await pilot.app.pull()
        await pilot.press("f9")

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


# -- other screens --------------------------------------------------------------------------------


def test_the_help_screen(console, snap_compare):
    app, _ = opened(console)

    async def run_before(pilot) -> None:
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_the_chart_of_the_selected_symbol(console, snap_compare):
    app, _ = opened(console)

    async def run_before(pilot) -> None:
        await pilot.press("f4")
        await pilot.app.workers.wait_for_complete()

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
def test_each_theme(console, snap_compare, theme):
    app, engine = opened(console, **{"console.theme": theme})

    async def run_before(pilot) -> None:
        await trade_the_morning(pilot, engine)
        await tick(pilot, engine)
        await put_line(pilot, "sell 100 AAPL lmt 140.00")

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)
