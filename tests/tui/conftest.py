"""Shared builders for the console tests: a deterministic engine, the app over it, order-line helpers.

The engine has a fixed seed and session date, no background timers, and a
market that moves only when a test steps ``engine.driver``: the same steps
give the same screens.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from engine.cli import sim_start_ns
from engine.client import LocalClient
from engine.config import load_settings
from engine.node import Engine
from tui.app import TickdeckApp, make_app
from tui.widgets.order_line import OrderLine

SYMBOLS = "AAPL,MSFT"
SESSION = "2024-03-15"  # a Friday; the sim session opens at 09:30 New York time
WARM_UP = 300  # market events stepped before the app opens: both symbols have a two-sided quote


def deterministic_engine(data_dir: Path, **overrides: object) -> Engine:
    """A sim engine on ``SESSION`` with seed 4 and no venue latency; ``overrides`` are settings."""
    cli = {"seed": 4, "symbols": SYMBOLS, "venue.latency_ms": 0, "speed": 0, **overrides}
    return Engine(
        load_settings(env={}, cli=cli),
        start_ns=sim_start_ns(SESSION, date.fromisoformat(SESSION)),
        data_dir=data_dir,
        housekeeping=False,
    )


def step(engine: Engine, events: int) -> None:
    """Dispatch the next ``events`` market events."""
    for _ in range(events):
        engine.driver.step()


@pytest.fixture
def console(tmp_path: Path):
    """Build the console over a fresh deterministic engine: ``app, engine = console(**settings)``."""

    def build(**overrides: object) -> tuple[TickdeckApp, Engine]:
        engine = deterministic_engine(tmp_path, **overrides)
        step(engine, WARM_UP)
        client = LocalClient(engine, run_feed=False)
        app = make_app(client, engine.settings, symbols=sorted(engine.instruments), auto_pull=False)
        return app, engine

    return build


@pytest.fixture
def client(tmp_path: Path):
    """A started ``LocalClient`` over a deterministic engine, warmed up; stopped afterwards."""
    engine = deterministic_engine(tmp_path)
    client = LocalClient(engine, run_feed=False)
    asyncio.run(client.start())
    step(engine, WARM_UP)
    yield client
    asyncio.run(client.stop())


def order_line(app: TickdeckApp) -> OrderLine:
    return app.screen.query_one(OrderLine)


async def type_line(pilot, text: str) -> None:
    """Type ``text`` key by key, as a trader would, and wait for its preview."""
    await pilot.press(*text)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def put_line(pilot, text: str) -> None:
    """Put ``text`` on the order line at once (Pilot spends ~0.1 s a key waiting for idle)."""
    line = order_line(pilot.app)
    line.value = text
    line.cursor_position = len(text)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()


async def send_line(pilot, engine: Engine, text: str) -> None:
    """Put ``text`` on the order line, press Enter, let the venue answer, and pull the result."""
    await put_line(pilot, text)
    await pilot.press("enter")
    engine.driver.step()
    await pilot.app.pull()
