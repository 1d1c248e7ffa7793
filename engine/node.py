"""The Engine: builds and wires the components for one mode, and starts and stops them.

Wiring order matters for synchronous dispatch: the market view subscribes
first, so every later subscriber (the venue, bots, risk) reads an up-to-date
NBBO from it when a quote arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from loguru import logger
from platformdirs import user_data_dir

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.config import Mode, Settings, Source
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_MS, NS_PER_SECOND, SimClock
from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.data.calibration import load_profiles
from engine.data.driver import FeedDriver
from engine.data.intraday import IntradayBars
from engine.data.replay import ReplaySource, open_replay
from engine.data.sim import SimMarket
from engine.health import HealthMonitor, Status
from engine.journal import Journal
from engine.oms import OrderManager
from engine.risk.engine import RiskEngine

# How often, in wall seconds, the engine checkpoints its journal and re-checks the daily loss.
HOUSEKEEPING_S = 1.0


@dataclass(slots=True)
class Paths:
    journal: Path
    sim_account: Path


def default_paths(settings: Settings, data_dir: Path | None = None) -> Paths:
    """Journal and sim account paths; ``data_dir`` moves both unless the journal path was configured."""
    base = data_dir or Path(user_data_dir("tickdeck", appauthor=False))
    base.mkdir(parents=True, exist_ok=True)
    journal_configured = settings.source_of("journal.path").source is not Source.DEFAULT
    if journal_configured or data_dir is None:
        journal = Path(settings.journal.path)
    else:
        journal = base / f"journal-{settings.mode}.sqlite"
    journal.parent.mkdir(parents=True, exist_ok=True)
    return Paths(journal=journal, sim_account=base / f"sim-account-{settings.mode}.sqlite")


class Engine:
    """One engine: market source, bus, market view, sim venue, risk and OMS on one simulated clock."""

    def __init__(
        self,
        settings: Settings,
        *,
        start_ns: int,
        data_dir: Path | None = None,
        reset_sim: bool = False,
        housekeeping: bool = True,
    ) -> None:
        """``housekeeping=False`` starts no background timers (deterministic tests)."""
        if settings.mode not in (Mode.SIM, Mode.REPLAY):
            raise InputError(
                f"mode '{settings.mode}' needs the Alpaca adapter, which this build does not have yet"
            )
        self.settings = settings
        self.paths = default_paths(settings, data_dir)
        self.bus = MessageBus()
        self.market = MarketView(self.bus)
        self.intraday = IntradayBars(self.bus)
        self.source, instruments, references, clock_start = self._build_source(settings, start_ns)
        self.clock = SimClock(clock_start)
        self.clock_start_ns = clock_start
        for symbol, price in references.items():
            self.market.set_reference(symbol, price)
        self.instruments = instruments
        self.alerts: list[Alert] = []
        self.bus.subscribe(Topic.ALERT, self._on_alert)
        self.bus.subscribe(Topic.SESSION, self._on_session)

        venue = settings.venue
        self.broker = SimBroker(
            self.bus,
            self.clock,
            self.market,
            SimVenueConfig(
                latency_ms=venue.latency_ms,
                fee_per_share=venue.fee_per_share,
                fee_per_order=venue.fee_per_order,
                walk_ticks=venue.walk_ticks,
                starting_cash=venue.starting_cash,
                multiplier=venue.multiplier,
            ),
            state_path=self.paths.sim_account,
            instruments=instruments,
            reset=reset_sim,
        )
        if reset_sim and self.paths.journal.exists():
            # A fresh paper account makes the old journal's positions meaningless.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.paths.journal}{suffix}").unlink(missing_ok=True)
        self.journal = Journal(self.paths.journal)
        self.risk = RiskEngine(settings.risk, self.clock, self.market)
        self.oms = OrderManager(
            self.bus, self.clock, self.broker, self.risk, self.journal, self.market
        )
        until_ns = None
        if settings.duration is not None:
            until_ns = clock_start + int(settings.duration * NS_PER_SECOND)
        self._housekeeping = housekeeping
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.health = HealthMonitor(
            feed_events=lambda: self.driver.stats.events, bus_errors=lambda: self.bus.handler_errors
        )
        self.driver = FeedDriver(
            self.source, self.clock, self.bus, speed=settings.speed, until_ns=until_ns
        )

    @staticmethod
    def _build_source(settings: Settings, start_ns: int):
        if settings.mode is Mode.REPLAY:
            if not settings.data:
                raise InputError(
                    "replay mode needs --data PATH (a Lean data folder or one zip file)"
                )
            source = open_replay(Path(settings.data), symbols=settings.symbols)
            return source, source.instruments(), source.references(), source.start_ns
        profiles = load_profiles(settings.symbols)
        source = SimMarket(
            profiles, seed=settings.seed, start_ns=start_ns, rate_scale=settings.sim.rate_scale
        )
        return source, source.instruments(), source.references(), start_ns

    def bad_rows(self) -> int:
        """Corrupt data rows the source skipped (replay); 0 for the sim market."""
        report = getattr(self.source, "report", None)
        return report.bad_count if report is not None else 0

    def _on_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        log = logger.warning if alert.severity is not Severity.INFO else logger.info
        log("{}", alert.message)

    def _on_session(self, event: SessionEvent) -> None:
        if event.phase is SessionPhase.OPEN:
            # A new trading day: volume and sparklines restart, change % is measured from the last close.
            day = date.fromisoformat(event.session_date)
            references = (
                self.source.references(day)
                if isinstance(self.source, ReplaySource)
                else self.source.references()
            )
            for symbol, price in references.items():
                self.market.reset_session(symbol, price)
        logger.info(
            "market {} ({})",
            "open" if event.phase is SessionPhase.OPEN else "closed",
            event.session_date,
        )

    async def _housekeep(self) -> None:
        """Work kept off the order path: WAL checkpoints, and the daily loss as marks move."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            self.journal.flush()
            self.oms.check_daily_loss()
            self._report_health()

    def _report_health(self) -> None:
        self.health.sample_rate()
        self.refresh_health()

    def refresh_health(self) -> None:
        """Components report their state (cheap; the console calls it with every snapshot)."""
        health = self.health
        driver = self.driver
        feed_status = Status.OK if not driver.exhausted else Status.DEGRADED
        health.beat(
            "feed", feed_status, "ended" if driver.exhausted else f"{self.settings.mode} market"
        )
        health.beat("journal", Status.OK, str(self.paths.journal.name))
        health.beat("broker", Status.OK, self.broker.name)
        kill = self.risk.kill_switch
        health.beat(
            "risk",
            Status.DEGRADED if kill.engaged else Status.OK,
            "kill switch engaged" if kill.engaged else "",
        )

    async def start(self) -> None:
        await self.broker.start()
        await self.oms.start()
        self._report_health()
        if self._housekeeping:
            self._housekeeping_task = asyncio.create_task(self._housekeep(), name="housekeeping")
            self._lag_task = asyncio.create_task(self.health.watch_loop_lag(), name="loop-lag")
        logger.info(
            "engine started: mode {}, {} symbols, journal {}",
            self.settings.mode,
            len(self.instruments),
            self.paths.journal,
        )

    async def stop(self, *, cancel_open: bool) -> None:
        """Cancel (or keep) open orders, let the venue answer, then persist everything."""
        for task in (self._housekeeping_task, self._lag_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.oms.stop(cancel_open=cancel_open)
        # Cancels are answered after the venue's latency: give simulated time room to deliver them.
        await self.driver.drain(
            max(int(self.settings.venue.latency_ms * NS_PER_MS) * 4, NS_PER_SECOND)
        )
        self.journal.close()
        await self.broker.stop()
