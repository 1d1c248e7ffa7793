"""The backtest screen (ctrl+o): a run from the form, its results, and form errors."""

from __future__ import annotations

import pytest
from textual.widgets import Input, ProgressBar, Static

from tui.screens.backtest import BacktestScreen

SIZE = (120, 40)


async def open_backtest(pilot) -> BacktestScreen:
    await pilot.press("ctrl+o")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, BacktestScreen)
    return screen


async def fill(pilot, screen: BacktestScreen, **fields: str) -> None:
    for name, value in fields.items():
        screen.query_one(f"#{name}", Input).value = value
    await pilot.pause()


async def run(pilot, screen: BacktestScreen) -> None:
    screen.query_one("#symbols", Input).focus()
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def text(screen: BacktestScreen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}", Static).render())


@pytest.mark.asyncio
async def test_enter_runs_the_backtest_and_shows_metrics_plot_and_trades(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_backtest(pilot)
        await fill(pilot, screen, symbols="AAPL,MSFT", params="fast=5 slow=20")
        await run(pilot, screen)
        assert "bars" in text(screen, "status") and "AAPL: bundled" in text(screen, "status")
        assert "Sharpe / Sortino" in text(screen, "metrics")
        assert "equity" in text(screen, "plot") and "drawdown" in text(screen, "plot")
        assert text(screen, "trades").startswith("trades (")
        bar = screen.query_one(ProgressBar)
        assert bar.progress == bar.total == 506


@pytest.mark.asyncio
async def test_a_bad_date_is_one_sentence_and_runs_nothing(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_backtest(pilot)
        await fill(pilot, screen, start="2020-02-30")
        await run(pilot, screen)
        assert text(screen, "status") == "'2020-02-30' in 'from' is not a date (YYYY-MM-DD)"
        assert text(screen, "metrics") == ""


@pytest.mark.asyncio
async def test_a_bad_bot_parameter_says_which(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_backtest(pilot)
        await fill(pilot, screen, params="fast=50 slow=10")
        await run(pilot, screen)
        assert text(screen, "status") == (
            "momentum bot: fast (50) must be at least 1 and below slow (10)."
        )


@pytest.mark.asyncio
async def test_escape_goes_back_to_the_trading_screen(console):
    app, _ = console()
    async with app.run_test(size=SIZE) as pilot:
        await open_backtest(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, BacktestScreen)


def test_the_backtest_screen_after_a_run(console, snap_compare):
    app, _ = console()

    async def run_before(pilot) -> None:
        screen = await open_backtest(pilot)
        await fill(pilot, screen, symbols="AAPL,MSFT", params="fast=5 slow=20")
        await run(pilot, screen)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
