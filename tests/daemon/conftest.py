"""Shared builders for the daemon tests: short socket paths, free ports, a daemon subprocess,
and an attach server in process over the deterministic engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from engine.attach.server import AttachServer
from engine.client import LocalClient
from engine.node import Engine
from tests.conftest import REPO
from tests.tui.conftest import WARM_UP, deterministic_engine, step

XDG = ("CONFIG", "DATA", "STATE", "CACHE")
START_TIMEOUT_S = 60.0  # a cold interpreter on a busy 2-core box imports numba and scipy


def short_dir() -> Path:
    """A fresh directory with a short path: a unix socket path must fit in ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = short_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def get(url: str) -> tuple[int, bytes]:
    """Status and body of ``GET url`` (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    socket: Path
    pid_file: Path
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def journal(self) -> Path:
        return self.data_dir / "journal-sim.sqlite"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def daemon_command(root: Path, port: int, *extra: str, config: Path | None = None) -> list[str]:
    """``tickdeck [--config PATH] engine --daemon ...`` with everything under ``root``."""
    return [
        sys.executable,
        "-m",
        "tui",
        *(["--config", str(config)] if config is not None else []),
        "engine",
        "--daemon",
        "--symbols",
        "AAPL,MSFT",
        "--seed",
        "4",
        "--start",
        "2024-03-15",
        "--data-dir",
        str(root / "data"),
        "--socket",
        str(root / "run" / "engine.sock"),
        "--pid-file",
        str(root / "run" / "engine.pid"),
        "--health",
        f"127.0.0.1:{port}",
        *extra,
    ]


def start_daemon(root: Path, *extra: str, config: Path | None = None) -> DaemonProcess:
    """Start ``tickdeck engine --daemon`` and wait until its health API answers."""
    port = free_port()
    log = root / "daemon.log"
    # Its own user dirs, whoever starts it (a module-scoped fixture runs before the
    # per-test isolation in tests/conftest.py does).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKDECK_", "APCA_"))}
    env.update({f"XDG_{name}_HOME": str(root / "home" / name.lower()) for name in XDG})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            daemon_command(root, port, *extra, config=config),
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    daemon = DaemonProcess(
        process,
        root / "run" / "engine.sock",
        root / "run" / "engine.pid",
        root / "data",
        port,
        log,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the daemon exited early:\n{daemon.output()}")
        with contextlib.suppress(OSError):
            if daemon.socket.exists() and get(f"{daemon.url}/health")[0] in (200, 503):
                return daemon
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the daemon did not come up:\n{daemon.output()}")


def stop_daemon(daemon: DaemonProcess) -> None:
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
        try:
            daemon.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    """A running daemon (sim, AAPL and MSFT, real-time market) shared by a module's tests;
    SIGTERMed afterwards."""
    root = short_dir()
    running = start_daemon(root)
    yield running
    stop_daemon(running)
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class InProcess:
    engine: Engine
    server: AttachServer


@pytest_asyncio.fixture
async def attach_server(tmp_path: Path, sock_dir: Path) -> AsyncIterator[InProcess]:
    """An attach server over the deterministic engine, in this test's event loop."""
    engine = deterministic_engine(tmp_path)
    local = LocalClient(engine, run_feed=False)
    await local.start()
    step(engine, WARM_UP)
    server = AttachServer(local, sock_dir / "run" / "engine.sock", health=engine.health)
    await server.start()
    yield InProcess(engine, server)
    await server.stop()
    await local.stop()


async def eventually(check, timeout_s: float = 20.0, every_s: float = 0.05):
    """Await ``check()`` until it returns something truthy (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        await asyncio.sleep(every_s)
