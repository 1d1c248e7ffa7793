"""End to end: the real ``tickdeck`` console script in a real terminal (a detached tmux pane).

A trader's session in miniature: the console opens on the sim market, the quote
board fills, ``buy 10 AAPL`` is typed and sent, the position appears, ctrl+q
quits, and the shell gets its terminal back (main screen, cursor shown, mouse
reporting off).

tmux runs on its own server socket, in its own socket folder, with no user
config; the console on an isolated data dir with a fresh paper account. A
console still running when a test ends is killed by its pid, never left behind.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

WIDTH, HEIGHT = 120, 40
WAIT_S = 30.0  # the most any one step may take before the test gives up
POLL_S = 0.1
PROMPT = "e2e$"  # the shell's PS1 is this and a space (capture-pane trims trailing spaces)
# What the shell prints after the console exits; the command line itself never matches it.
EXIT_STATUS = re.compile(r"^tickdeck exited with (\d+)$", re.MULTILINE)
TICKDECK = Path(sys.executable).parent / "tickdeck"
# The quote board's AAPL row once it has a two-sided quote: symbol, bid, ask.
PRICED = re.compile(r"AAPL\s+\d+\.\d{2}\s+\d+\.\d{2}")
SYMBOL = re.compile(r"[A-Z][A-Z.]*")
# The pane's terminal modes (tmux format variables): the shell's, and the console's while it runs.
SHELL_MODES = {
    "alternate_on": "0",  # the main screen, not the alternate one
    "cursor_flag": "1",  # the cursor is shown
    "mouse_any_flag": "0",  # no mouse motion reporting
    "mouse_sgr_flag": "0",
}
CONSOLE_MODES = {
    "alternate_on": "1",
    "cursor_flag": "0",
    "mouse_any_flag": "1",
    "mouse_sgr_flag": "1",
}


class Tmux:
    """One private tmux server (its own socket) with one 120x40 session running a bare shell."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"tickdeck-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.consoles: list[int] = []  # pids of the consoles started in the pane

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=True,
        )
        return done.stdout

    def start(self) -> None:
        shell = ["bash", "--norc", "--noprofile", "-i"]
        self("new-session", "-d", "-s", "e2e", "-x", str(WIDTH), "-y", str(HEIGHT), *shell)

    def kill(self) -> None:
        """Stop the server and so every pane's terminal."""
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            env=self.env,
            capture_output=True,
            timeout=WAIT_S,
            check=False,
        )

    def type(self, text: str) -> None:
        self("send-keys", "-t", "e2e", "-l", text)

    def press(self, key: str) -> None:
        self("send-keys", "-t", "e2e", key)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "e2e")

    def pane(self, variable: str) -> str:
        """A tmux format variable of the pane (``alternate_on``, ``pane_current_command``...)."""
        return self("display-message", "-p", "-t", "e2e", f"#{{{variable}}}").strip()

    def note_console(self) -> int:
        """The pid of the program the pane's shell is running now (the console)."""
        shell = int(self.pane("pane_pid"))
        (pid,) = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        self.consoles.append(int(pid))
        return int(pid)


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting to be reaped has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def exits(pid: int) -> bool:
    """Whether ``pid`` exits within ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def wait_for(tmux: Tmux, what: str, ready: Callable[[str], bool]) -> str:
    """Poll the screen until ``ready(screen)``; fail with the last screen after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    screen = tmux.screen()
    while not ready(screen):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT_S:.0f} s; the screen:\n{screen}")
        time.sleep(POLL_S)
        screen = tmux.screen()
    return screen


def positions(screen: str) -> dict[str, str]:
    """Symbol -> quantity, read from the rows of the pane titled Positions."""
    lines = screen.splitlines()
    top = next((i for i, line in enumerate(lines) if "─ Positions " in line), None)
    if top is None:
        return {}
    edge = lines[top].rindex("╭", 0, lines[top].index("─ Positions "))  # the pane's left border
    found: dict[str, str] = {}
    for line in lines[top + 2 :]:  # past the title border and the column header
        if line[edge : edge + 1] != "│":  # the pane's bottom border
            break
        words = line[edge + 1 :].split("│")[0].split()
        if len(words) >= 2 and SYMBOL.fullmatch(words[0]) and words[0] != "TOTAL":
            found[words[0]] = words[1]
    return found


def terminal_modes(tmux: Tmux) -> dict[str, str]:
    return {name: tmux.pane(name) for name in SHELL_MODES}


@pytest.fixture
def tmux(tmp_path: Path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (`make test` installs it when run as root)")
    if not TICKDECK.exists():
        pytest.skip(
            f"the tickdeck console script is not installed at {TICKDECK} (pip install -e .)"
        )
    if not Path("/proc/self/task").is_dir():
        pytest.skip("the end-to-end test reads process ids from /proc (Linux)")
    env = {key: value for key, value in os.environ.items() if key != "TMUX"}
    env |= {"PS1": f"{PROMPT} ", "TERM": "xterm-256color", "HOME": str(tmp_path)}
    with tempfile.TemporaryDirectory(prefix="tickdeck-tmux-") as sockets:
        server = Tmux(env | {"TMUX_TMPDIR": sockets})
        server.start()
        try:
            yield server
        finally:
            server.kill()
            for pid in server.consoles:
                if not exits(pid):
                    os.kill(pid, signal.SIGKILL)


def open_console(tmux: Tmux, data_dir: Path) -> int:
    """Start ``tickdeck`` from the pane's shell and wait for prices; the console's pid."""
    command = [
        str(TICKDECK),
        "--data-dir",
        str(data_dir),
        "--reset-sim",
        "--seed",
        "4",
        "--start",
        "2024-03-15",
        "--symbols",
        "AAPL,MSFT",
        "--speed",
        "5",
    ]
    wait_for(tmux, "the shell prompt", lambda screen: screen.rstrip().endswith(PROMPT))
    tmux.type(f"{shlex.join(command)}; echo tickdeck exited with $?")
    tmux.press("Enter")
    wait_for(tmux, "prices on the quote board", lambda screen: PRICED.search(screen) is not None)
    return tmux.note_console()


@pytest.mark.slow
def test_an_order_typed_in_the_real_console_shows_as_a_position_and_quit_restores_the_terminal(
    tmux: Tmux, tmp_path: Path
):
    open_console(tmux, tmp_path / "data")
    # The console owns the terminal now: what quitting must give back.
    assert terminal_modes(tmux) == CONSOLE_MODES

    tmux.type("buy 10 AAPL")
    tmux.press("Enter")
    screen = wait_for(tmux, "the AAPL position", lambda screen: "AAPL" in positions(screen))
    assert positions(screen) == {"AAPL": "10"}

    tmux.press("C-q")
    screen = wait_for(
        tmux, "the console's exit", lambda screen: EXIT_STATUS.search(screen) is not None
    )
    assert EXIT_STATUS.search(screen).group(1) == "0"
    assert screen.rstrip().endswith(PROMPT)
    assert tmux.pane("pane_current_command") == "bash"
    assert terminal_modes(tmux) == SHELL_MODES
