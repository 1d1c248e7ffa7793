"""Daemon mode: the engine running until stopped, with consoles attaching and detaching.

``tickdeck engine --daemon`` adds, around the headless runner:

* a pid file: a second engine refuses to start while a live one holds it; a stale
  one (its process gone) is removed;
* the attach socket (``engine.attach``) and the health API (``engine.health_api``);
* signals: SIGTERM (and SIGINT) stop gracefully — open orders cancelled or kept per
  ``daemon.on_stop``, the venue's answers journaled, the journal flushed and closed;
  SIGHUP reopens the log files (after logrotate) and reloads the safe parts of the
  config (``RELOADABLE``); everything else needs a restart, and the log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from engine.attach.peer import PID_NAME, default_socket_path, runtime_dir
from engine.attach.server import AttachServer
from engine.client import LocalClient
from engine.config import OnStop, Settings, parse_host_port
from engine.core.errors import InputError, TickdeckError
from engine.health import Status
from engine.health_api import HealthApi
from engine.node import Engine

if TYPE_CHECKING:
    from engine.headless import HeadlessRunner

BEAT_S = 1.0  # the daemon's own components report this often

RELOADABLE = ("log", "risk", "status_interval", "daemon.on_stop", "daemon.token")
"""What SIGHUP re-reads from the config: log sinks and level, risk limits, the status-line
interval, what happens to open orders at stop, and the attach token. Mode, symbols, data,
venue, Alpaca keys, the journal, the socket, the pid file and the health address need a
restart."""


def default_pid_path() -> Path:
    return runtime_dir() / PID_NAME


def process_alive(pid: int) -> bool:
    """True while process ``pid`` exists (even if it belongs to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PidFile:
    """``path`` holds this process's id while the daemon runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = False

    def holder(self) -> int | None:
        """The pid written in the file, or None if there is none (or it is unreadable)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> None:
        """Write our pid; ``InputError`` if a live engine holds the file. A stale one is removed."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        holder = self.holder()
        if holder is not None and holder != os.getpid() and process_alive(holder):
            raise InputError(
                f"an engine is already running (pid {holder}, pid file {self.path}); "
                "stop it first or attach to it with `tickdeck attach`"
            )
        if self.path.exists():
            logger.warning("removing a stale pid file {} (pid {} is gone)", self.path, holder)
            self.path.unlink(missing_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise InputError(
                f"another engine took the pid file {self.path} just now; nothing was started"
            ) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        self._held = True

    def release(self) -> None:
        """Remove the file if it is still ours."""
        if self._held and self.holder() == os.getpid():
            self.path.unlink(missing_ok=True)
        self._held = False


class Daemon:
    """The services around a daemon's engine, started and stopped by the headless runner."""

    def __init__(
        self,
        engine: Engine,
        *,
        socket_path: Path | None = None,
        reload_settings: Callable[[], Settings] | None = None,
        reopen_logs: Callable[[Settings], None] | None = None,
    ) -> None:
        """``reload_settings`` re-reads the config (file, environment, the same flags) on
        SIGHUP; ``reopen_logs`` reinstalls the log sinks for the given settings."""
        self.engine = engine
        settings = engine.settings.daemon
        self.socket_path = socket_path or (
            Path(settings.socket) if settings.socket else default_socket_path()
        )
        self._reload_settings = reload_settings
        self._reopen_logs = reopen_logs
        self.client = LocalClient(engine, run_feed=False)
        self.attach = AttachServer(
            self.client, self.socket_path, token=settings.token, health=engine.health
        )
        self.health_api: HealthApi | None = None
        if settings.health is not None:
            host, port = parse_host_port(settings.health)
            self.health_api = HealthApi(engine, host, port)
        self._runner: HeadlessRunner | None = None
        self._beats: asyncio.Task[None] | None = None
        self.reloads = 0

    @property
    def cancel_open(self) -> bool:
        """Whether stopping cancels open orders: ``daemon.on_stop`` (and ``--keep-open``)."""
        settings = self.engine.settings
        return settings.cancel_on_exit and settings.daemon.on_stop is OnStop.CANCEL

    async def start(self, runner: HeadlessRunner | None = None) -> None:
        self._runner = runner
        engine = self.engine
        engine.health.watch_queue("asyncio.tasks", lambda: len(asyncio.all_tasks()))
        await self.attach.start()
        if self.health_api is not None:
            try:
                await self.health_api.start()
            except InputError:
                await self.attach.stop()
                raise
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)
        self._beats = asyncio.create_task(self._beat(), name="daemon-beats")
        logger.info(
            "daemon running (pid {}): attach with `tickdeck attach --socket {}`",
            os.getpid(),
            self.socket_path,
        )

    async def stop(self) -> None:
        """Stop serving consoles and the health API (the engine is stopped by the runner)."""
        with contextlib.suppress(ValueError, RuntimeError):  # loop already closing
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
        await self.attach.stop()
        if self.health_api is not None:
            await self.health_api.stop()

    async def _beat(self) -> None:
        health = self.engine.health
        while True:
            health.beat("daemon", Status.OK, f"pid {os.getpid()}")
            self.attach.beat()
            await asyncio.sleep(BEAT_S)

    def reload(self) -> None:
        """SIGHUP: reopen the logs and apply the reloadable settings; a bad config changes
        nothing and says why in the log."""
        self.reloads += 1
        if self._reload_settings is None:
            logger.info("SIGHUP: nothing to reload")
            return
        try:
            fresh = self._reload_settings()
        except TickdeckError as error:
            logger.error("SIGHUP: the config was not reloaded: {}", error)
            return
        engine = self.engine
        old = engine.settings
        merged = dataclasses.replace(
            old,
            log=fresh.log,
            risk=fresh.risk,
            status_interval=fresh.status_interval,
            daemon=dataclasses.replace(
                old.daemon, on_stop=fresh.daemon.on_stop, token=fresh.daemon.token
            ),
        )
        engine.settings = merged
        engine.risk.config = fresh.risk
        self.attach.set_token(fresh.daemon.token)
        if self._runner is not None:
            self._runner.status_interval = fresh.status_interval
        if self._reopen_logs is not None:
            self._reopen_logs(merged)
        ignored = _needs_restart(old, fresh)
        logger.info(
            "SIGHUP: logs reopened; reloaded {}{}",
            ", ".join(RELOADABLE),
            f"; needs a restart to change: {', '.join(ignored)}" if ignored else "",
        )


def _needs_restart(old: Settings, fresh: Settings) -> list[str]:
    """Top-level settings and sections that differ but are not reloadable."""
    changed = []
    for field in dataclasses.fields(Settings):
        name = field.name
        if name in ("sources", "log", "risk", "status_interval"):
            continue
        before, after = getattr(old, name), getattr(fresh, name)
        if name == "daemon":
            before = dataclasses.replace(before, on_stop=OnStop.CANCEL, token=None)
            after = dataclasses.replace(after, on_stop=OnStop.CANCEL, token=None)
        if before != after:
            changed.append(name)
    return changed
