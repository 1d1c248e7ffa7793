"""A snapshot of the console working algos: parents in the orders pane, children nested under.

Built like ``test_snapshots.py`` (the deterministic engine from ``conftest.py``); regenerate
with ``pytest tests/tui/test_execution_snapshot.py --snapshot-update`` and look at the SVG.
"""

from __future__ import annotations

import pytest

from engine.core.clock import NS_PER_SECOND
from engine.node import Engine
from tests.tui.test_snapshots import SLOW_TAPE, WIDE, run_market


@pytest.fixture(autouse=True)
def _colour_on(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


def run_for(engine: Engine, seconds: int) -> None:
    until = engine.clock.now_ns() + seconds * NS_PER_SECOND
    while engine.clock.now_ns() < until and engine.driver.step():
        pass


def test_algos_nested_in_the_orders_pane(console, snap_compare):
    app, engine = console(**SLOW_TAPE)
    run_market(engine)

    async def run_before(pilot) -> None:
        client = pilot.app.client
        await client.execute("buy 300 AAPL twap 3m slices 3")
        await client.execute("sell 200 MSFT twap 10m slices 4")
        await client.execute("buy 100 KO lmt 40 tp 45 sl 38")
        run_for(engine, 200)
        await client.execute("pause algo-2")
        run_for(engine, 1)
        await pilot.app.pull()
        await pilot.press("f7", "f10")
        await pilot.pause()

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)
