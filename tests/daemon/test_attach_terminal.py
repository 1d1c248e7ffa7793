"""``tickdeck attach`` in a real terminal (a private tmux server): the full console opens on a
running daemon, sends an order, and quitting it only detaches."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.attach.remote import RemoteClient
from engine.client import Cursor
from tests.daemon.conftest import XDG, DaemonProcess, get, start_daemon, stop_daemon

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

WAIT_S = 30.0
EXIT_WAIT_S = 60.0  # a loaded 2-core box can be slow to tear an interpreter down
TICKDECK = Path(sys.executable).parent / "tickdeck"


class Tmux:
    """A private tmux server with one 120x40 session running ``command``."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"tickdeck-attach-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env
        self("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", *command)
        self("set-option", "-t", "t", "remain-on-exit", "on")

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=True,
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")

    def wait_for(self, found: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT_S
        while True:
            text = self.screen()
            if found(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"never shown; the screen was:\n{text}")
            time.sleep(0.1)

    def dead(self) -> bool:
        return self("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def stack_dump(self) -> str:
        """Where the pane's console is stuck: SIGABRT makes its faulthandler print every
        thread's stack into the pane, which is then captured."""
        pid = int(self("display-message", "-p", "-t", "t", "#{pane_pid}").strip())
        os.kill(pid, signal.SIGABRT)
        time.sleep(2)
        return self("capture-pane", "-p", "-t", "t", "-S", "-300")

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True
        )


@pytest.fixture
def engine_daemon(sock_dir: Path) -> Iterator[DaemonProcess]:
    running = start_daemon(sock_dir)
    yield running
    stop_daemon(running)


def test_the_attached_console_trades_and_quitting_leaves_the_engine_running(
    engine_daemon: DaemonProcess,
):
    root = engine_daemon.socket.parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKDECK_", "TMUX"))}
    env.update({f"XDG_{name}_HOME": str(root / "console" / name.lower()) for name in XDG})
    env["TERM"] = "xterm-256color"
    env["PYTHONFAULTHANDLER"] = "1"  # a console stuck at exit can be made to say where
    tmux = Tmux([str(TICKDECK), "attach", "--socket", str(engine_daemon.socket)], env)
    try:
        tmux.wait_for(lambda text: "1 console(s) attached" in text)
        tmux("send-keys", "-t", "t", "-l", "buy 10 AAPL")
        tmux("send-keys", "-t", "t", "Enter")
        tmux.wait_for(lambda text: "sent: buy 10 AAPL market" in text)
        tmux("send-keys", "-t", "t", "C-q")
        deadline = time.monotonic() + EXIT_WAIT_S
        while not tmux.dead() and time.monotonic() < deadline:
            time.sleep(0.1)
        console_quit = tmux.dead()
        last_screen = "" if console_quit else tmux.stack_dump()
    finally:
        tmux.kill()

    async def book():
        client = RemoteClient(engine_daemon.socket)
        snapshot = await client.snapshot(Cursor())
        await client.stop()
        return snapshot.book.orders

    orders = asyncio.run(book())
    assert console_quit, last_screen
    assert engine_daemon.process.poll() is None
    assert [(o.symbol, o.qty) for o in orders] == [("AAPL", 10)]
    assert _attached(engine_daemon) == "0 console(s) attached"


def _attached(daemon: DaemonProcess) -> str:
    """The attach component's detail once no console is left (a detach lands a moment after
    the client's close)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        detail = json.loads(get(f"{daemon.url}/health/components/attach")[1])["detail"]
        if detail.startswith("0 ") or time.monotonic() > deadline:
            return detail
        time.sleep(0.1)
