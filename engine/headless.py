"""Running the engine without a console: status line, order scripts, clean shutdown, exit report."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from engine.core.clock import NS_PER_SECOND
from engine.core.prices import cents
from engine.node import Engine
from engine.orders.script import OrderScript
from engine.report import build_report, write_report

if TYPE_CHECKING:
    from engine.daemon import Daemon

# After a script's last line, how much market time to let run so its orders can fill.
SCRIPT_TAIL_NS = 5 * NS_PER_SECOND

DEMO_SCRIPT = """\
# Welcome to tickdeck. This tour runs on the simulated market: no keys, no network.
# 1. A market order fills at the ask (watch the fill lines).
buy 100 AAPL
# 2. An IOC limit at the ask for more than the ask shows: a partial fill, and the rest is cancelled.
buy 2000 BAC lmt {{BAC.ask}} ioc
# 3. A passive limit order rests on the book ...
buy 50 NVDA lmt {nvda_low} gtc
# ... and is cancelled.
cancel all
# 4. Risk stops an order that is far too large (max order notional), with the reason.
buy 100000 AAPL
# 5. Sell half the AAPL back: realized P&L appears in the report.
sell 50 AAPL
# That's the flow. Run `make run` for the live sim, or `tickdeck engine --help` for more.
"""


def demo_lines(engine: Engine) -> list[str]:
    """The demo script: the passive bid sits 20% under NVDA's reference price, so it never fills."""
    snapshot = engine.market.snapshot("NVDA")
    nvda = snapshot.reference if snapshot and snapshot.reference else Decimal("100")
    return DEMO_SCRIPT.format(nvda_low=cents(nvda * Decimal("0.8"))).splitlines()


class HeadlessRunner:
    def __init__(
        self,
        engine: Engine,
        *,
        script: OrderScript | None,
        stdin_script: bool,
        report_path: Path | None,
        status_interval: float,
        daemon: Daemon | None = None,
    ) -> None:
        """``daemon`` serves consoles and the health API while the engine runs (daemon mode)."""
        self.engine = engine
        self.daemon = daemon
        self._stopped = asyncio.Event()
        self.script = script
        self._stdin_script = stdin_script
        self.report_path = report_path
        self.status_interval = status_interval
        self._stop_requested = False
        self._tail_until: int | None = None
        if script is not None:
            engine.driver._after_event = self._after_event

    def _after_event(self) -> None:
        script = self.script
        assert script is not None
        script.pump()
        if script.done and self.engine.settings.duration is None:
            now = self.engine.clock.now_ns()
            if self._tail_until is None:
                self._tail_until = now + SCRIPT_TAIL_NS
            elif now >= self._tail_until:
                self.engine.driver.stop()

    def request_stop(self, why: str) -> None:
        if not self._stop_requested:
            logger.info("stopping: {}", why)
        self._stop_requested = True
        self._stopped.set()
        self.engine.driver.stop()

    async def run(self) -> int:
        engine = self.engine
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        await engine.start()
        if self.daemon is not None:
            await self._start_daemon(self.daemon)
        # Startup objects live for the whole run: keep them out of full GC passes, which
        # would otherwise stall the event loop (and an order's path) for tens of milliseconds.
        gc.freeze()
        if self._stdin_script and self.script is not None:
            self._start_stdin_reader(loop)
        self._started_wall = time.monotonic()
        status = asyncio.create_task(self._status_loop())
        try:
            await engine.driver.run()
            if self.daemon is not None and engine.settings.duration is None:
                # A daemon outlives its data (a replay that ended): it stops when told to.
                await self._stopped.wait()
        finally:
            status.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            cancel_open = engine.settings.cancel_on_exit
            if self.daemon is not None:
                cancel_open = self.daemon.cancel_open
                await self.daemon.stop()
            await engine.stop(cancel_open=cancel_open)
        self._print_status(final=True)
        self._print_bots()
        if self.report_path is not None:
            write_report(build_report(engine, self.script), self.report_path)
            logger.info("report written to {}", self.report_path)
        return 0

    async def _start_daemon(self, daemon: Daemon) -> None:
        try:
            await daemon.start(self)
        except BaseException:
            # Nothing is served (a port in use, a bad socket path): leave the book as it was.
            await self.engine.stop(cancel_open=False)
            raise

    def _start_stdin_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        script = self.script
        assert script is not None

        def read() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(script.feed, line)
            loop.call_soon_threadsafe(script.close)

        # A daemon thread: a blocked read of a terminal must not keep the process alive at exit.
        threading.Thread(target=read, name="stdin-orders", daemon=True).start()

    async def _status_loop(self) -> None:
        last_events, last_wall = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.status_interval)
            now = time.monotonic()
            events = self.engine.driver.stats.events
            self._rate = (events - last_events) / max(now - last_wall, 1e-9)
            last_events, last_wall = events, now
            self._print_status()

    _rate = 0.0
    _started_wall = 0.0

    def _print_status(self, *, final: bool = False) -> None:
        engine = self.engine
        oms = engine.oms
        orders = oms.orders()
        open_orders = sum(1 for o in orders if o.is_open)
        pnl = oms.day_pnl()
        if final:
            self._rate = engine.driver.stats.events / max(
                time.monotonic() - self._started_wall, 1e-9
            )
        logger.info(
            "{} feed {:,.0f} msg/s ({:,} events) | orders {} ({} open) | fills {} | P&L {} | bad rows {}{}",
            "final:" if final else "status:",
            self._rate,
            engine.driver.stats.events,
            len(orders),
            open_orders,
            len(oms.fills()),
            cents(pnl),
            engine.bad_rows(),
            " | KILL SWITCH ENGAGED" if engine.risk.kill_switch.engaged else "",
        )

    def _print_bots(self) -> None:
        """One line per bot at exit: state, mode, P&L, trades and win rate."""
        for view in self.engine.bots.views():
            perf = view.performance
            win = "n/a" if perf.win_rate is None else f"{perf.win_rate:.0%}"
            sharpe = "n/a" if perf.sharpe is None else f"{perf.sharpe:.2f}"
            logger.info(
                "bot {} ({}, {}): realized {} unrealized {} | trades {} | win rate {} | sharpe {}{}",
                view.name,
                view.kind,
                f"{view.state}/{view.mode}",
                cents(perf.realized_pnl),
                cents(perf.unrealized_pnl),
                perf.trades,
                win,
                sharpe,
                f" | error: {view.error}" if view.error else "",
            )
        advised = self.engine.bots.advised
        if advised:
            logger.info("{} opportunities advised (listed in the report)", len(advised))
