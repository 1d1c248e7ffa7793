"""The console attached to an engine in another event loop, over the attach socket.

The engine (deterministic, from ``conftest.py``) runs with its attach server in a
thread of its own, as a daemon would in its own process; the console talks to it
only through a ``RemoteClient``. The same steps draw the same screen.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.attach.remote import RemoteClient
from engine.attach.server import AttachServer
from engine.client import LocalClient
from engine.node import Engine
from tests.tui.conftest import WARM_UP, deterministic_engine, put_line, step
from tui.app import make_app

WIDE = (120, 40)


@pytest.fixture(autouse=True)
def _colour_on(monkeypatch):
    """Snapshots are of the coloured console, whatever the runner's environment says."""
    monkeypatch.delenv("NO_COLOR", raising=False)


class EngineThread:
    """An engine and its attach server on an event loop in another thread (built there too:
    the journal's SQLite connection belongs to the thread that opened it)."""

    def __init__(self, data_dir: Path, socket_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="engine", daemon=True)
        self.thread.start()
        self.engine: Engine
        self.local: LocalClient
        self.server: AttachServer
        self.call(self._start(data_dir, socket_path))

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def _start(self, data_dir: Path, socket_path: Path) -> None:
        self.engine = deterministic_engine(data_dir)
        self.local = LocalClient(self.engine, run_feed=False)
        self.server = AttachServer(self.local, socket_path, health=self.engine.health)
        await self.local.start()
        step(self.engine, WARM_UP)
        await self.server.start()

    async def _step(self, events: int) -> None:
        step(self.engine, events)

    def step(self, events: int) -> None:
        """Dispatch market events on the engine's own loop."""
        self.call(self._step(events))

    def close(self) -> None:
        self.call(self.server.stop())
        self.call(self.local.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def engine_thread(tmp_path: Path) -> Iterator[EngineThread]:
    sockets = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    running = EngineThread(tmp_path, sockets / "run" / "engine.sock")
    yield running
    running.close()
    shutil.rmtree(sockets, ignore_errors=True)


def test_an_attached_console_shows_its_order_and_the_health_of_the_engine(
    engine_thread: EngineThread, snap_compare
):
    client = RemoteClient(engine_thread.server.path)
    settings = engine_thread.engine.settings
    app = make_app(client, settings, symbols=["AAPL", "MSFT"], auto_pull=False)

    async def run_before(pilot) -> None:
        await pilot.app.pull()
        await put_line(pilot, "buy 100 AAPL")
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        engine_thread.step(1)
        await pilot.app.pull()
        pilot.app.main.focus_pane("health")
        await pilot.press("f10")  # the health pane, maximized
        await pilot.app.pull()
        await pilot.pause()

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


@pytest.mark.asyncio
async def test_an_attached_console_leaves_with_a_reason_when_the_engine_goes_away(
    engine_thread: EngineThread,
):
    client = RemoteClient(engine_thread.server.path)
    app = make_app(client, engine_thread.engine.settings, symbols=["AAPL"], auto_pull=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.app.pull()
        await asyncio.to_thread(engine_thread.call, engine_thread.server.stop())
        await pilot.app.pull()
        await pilot.pause()
    assert app.return_code == 1
