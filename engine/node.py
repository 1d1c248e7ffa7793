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

from engine.alpaca.broker import AlpacaBroker
from engine.alpaca.endpoints import resolve_endpoints
from engine.alpaca.stream import AlpacaMarketData, StreamState
from engine.backtest.feed import BarFeed
from engine.bots.api import OptionQuote
from engine.bots.options import chain_quotes
from engine.bots.service import BotService
from engine.broker.base import Broker
from engine.broker.sim import SimBroker, SimVenueConfig
from engine.config import Mode, Settings, Source
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_MS, NS_PER_SECOND, Clock, LiveClock, SimClock
from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import Instrument
from engine.core.prices import is_option_symbol
from engine.data.backfill import HistoryService
from engine.data.calibration import DEFAULT_WATCHLIST, SymbolProfile, load_profiles
from engine.data.driver import FeedDriver
from engine.data.intraday import IntradayBars
from engine.data.live import LiveFeed
from engine.data.replay import ReplaySource, open_replay
from engine.data.sim import SimMarket
from engine.data.store_replay import is_store_data, open_store_replay
from engine.execution import ExecutionService
from engine.health import HealthMonitor, Status
from engine.journal import Journal
from engine.oms import OrderManager
from engine.options.alpaca_chain import AlpacaOptionChains, OptionSnapshots
from engine.options.chain import OptionChain, OptionChainService
from engine.options.market import OptionMarket, annual_from_daily
from engine.risk.engine import RiskEngine

_SIMULATED = (Mode.SIM, Mode.REPLAY)
_STREAM_HEALTH = {
    StreamState.LIVE: Status.OK,
    StreamState.FAILED: Status.DOWN,
    StreamState.STOPPED: Status.DOWN,
}

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
        live_confirmed: bool = False,
        feed: BarFeed | None = None,
    ) -> None:
        """``housekeeping=False`` starts no background timers (deterministic tests).

        Live trading needs ``live_confirmed``: the command line sets it only after the
        trader has typed the confirmation. ``feed`` (sim or replay mode) replaces the market
        with a backtest's bars.
        """
        if settings.mode is Mode.LIVE and not live_confirmed:
            raise InputError("live trading needs --live and a typed confirmation")
        self.settings = settings
        self.paths = default_paths(settings, data_dir)
        self.bus = MessageBus()
        self.market = MarketView(self.bus)
        self.intraday = IntradayBars(self.bus)
        self.alerts: list[Alert] = []
        self.bus.subscribe(Topic.ALERT, self._on_alert)
        self.bus.subscribe(Topic.SESSION, self._on_session)
        self._housekeeping = housekeeping
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.health = HealthMonitor(
            feed_events=lambda: self.driver.stats.events, bus_errors=lambda: self.bus.handler_errors
        )
        if reset_sim and self.paths.journal.exists() and settings.mode in _SIMULATED:
            # A fresh paper account makes the old journal's positions meaningless.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.paths.journal}{suffix}").unlink(missing_ok=True)
        if settings.mode in _SIMULATED:
            self._build_simulated(settings, start_ns, reset_sim, feed)
        else:
            self._build_alpaca(settings)
        self.journal = Journal(self.paths.journal)
        self.risk = RiskEngine(settings.risk, self.clock, self.market)
        self.oms = OrderManager(
            self.bus, self.clock, self.broker, self.risk, self.journal, self.market
        )
        self.health.latency = self.oms.latency
        # Sim underlyings get synthetic chains, built lazily: the first time a console asks for
        # one, so no chain nobody looks at is ever repriced. Paper and live load Alpaca's
        # chains the same way (``load_option_chain``); replay has none.
        self.options = (
            OptionChainService(self.bus, self.clock, self.market)
            if settings.mode is not Mode.REPLAY
            else None
        )
        self._profiles: dict[str, SymbolProfile] = {}
        self.option_market = self._build_option_market()
        self.alpaca_options = self._build_alpaca_options()
        self.bots = self._build_bots()
        self.history = HistoryService(settings, self.health, sim=settings.mode in _SIMULATED)
        # Execution algos: parent orders whose children go through the OMS and risk like any order.
        self.execution = ExecutionService(
            self.bus,
            self.clock,
            self.oms,
            self.risk,
            self.market,
            self.journal,
            settings.execution,
        )
        self.bots.execution = self.execution  # a bot may work its orders through an algo

    def _build_option_market(self) -> OptionMarket | None:
        """Option contracts as instruments, quotes and greeks, where chains exist (all but
        replay)."""
        if self.options is None:
            return None
        options = OptionMarket(
            self.bus,
            self.clock,
            self.market,
            self.options,
            underlyings=lambda: self.instruments,
            chain_of=self.option_chain,
            annual_vol=self._annual_vol,
            positions=self.oms.positions,
            # The sim market maker quotes what anyone trades; Alpaca's snapshots quote the rest.
            quote_contracts=self.settings.mode is Mode.SIM,
        )
        self.risk.option_greeks = options
        if isinstance(self.broker, SimBroker | AlpacaBroker):
            self.broker.list_instruments(options.instrument)
        return options

    def _build_alpaca_options(self) -> AlpacaOptionChains | None:
        """Paper and live: chains from Alpaca's contracts and snapshot quotes, kept fresh; a
        contract starts being quoted on the bus the moment it is watched."""
        if not isinstance(self.broker, AlpacaBroker) or self.option_market is None:
            return None
        market = self.option_market
        chains = AlpacaOptionChains(
            self.broker,
            OptionSnapshots(self.endpoints),
            self.options,
            self.bus,
            self.clock,
            watched=market.watched,
        )
        market.on_watch.append(
            lambda symbol: chains.publish(market.underlying_of(symbol) or "", (symbol,))
        )
        # Held contracts of a chain just loaded are quoted (marked, priced) from then on.
        chains.on_load.append(lambda _chain: market.watch_held())
        return chains

    def _preload_option_chains(self) -> None:
        """Paper and live: load the chains of held options' underlyings in the background."""
        for position in self.oms.positions():
            if position.qty and is_option_symbol(position.symbol):
                underlying = self.option_market.underlying_of(position.symbol)
                if underlying is not None:
                    self.alpaca_options.preload(underlying)

    def _build_bots(self) -> BotService:
        """The bots of ``bots.run`` (``--bot``), started with the engine."""
        return BotService(
            self.bus,
            self.clock,
            self.market,
            self.oms,
            self.journal,
            self.settings.bots,
            storage_dir=self.paths.journal.parent / "bots",
            option_quotes=self._option_quotes,
            default_symbols=sorted(self.instruments)
            or list(self.settings.symbols or DEFAULT_WATCHLIST),
        )

    def _option_quotes(self, underlying: str) -> list[OptionQuote]:
        """The listed options of ``underlying`` a bot may screen (sim chains, or a chain
        already loaded from Alpaca)."""
        chain = self.option_chain(underlying)
        return chain_quotes(chain) if chain is not None else []

    def _annual_vol(self, symbol: str) -> float | None:
        profile = self.profile(symbol)
        return annual_from_daily(profile.daily_vol) if profile is not None else None

    def _until(self, start_ns: int) -> int | None:
        duration = self.settings.duration
        return None if duration is None else start_ns + int(duration * NS_PER_SECOND)

    def _build_simulated(
        self, settings: Settings, start_ns: int, reset_sim: bool, feed: BarFeed | None
    ) -> None:
        if feed is not None:  # a backtest: the market is its bars
            self.source, instruments = feed, feed.instruments()
            references, clock_start = feed.references(), feed.start_ns
        else:
            self.source, instruments, references, clock_start = self._build_source(
                settings, start_ns
            )
        self.clock: Clock = SimClock(clock_start)
        self.clock_start_ns = clock_start
        for symbol, price in references.items():
            self.market.set_reference(symbol, price)
        self.instruments = instruments
        venue = settings.venue
        self.broker: Broker = SimBroker(
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
        self.driver: FeedDriver | LiveFeed = FeedDriver(
            self.source,
            self.clock,
            self.bus,
            speed=settings.speed,
            until_ns=self._until(clock_start),
        )

    def _build_alpaca(self, settings: Settings) -> None:
        """Paper or live: Alpaca's streams and trading API on the wall clock."""
        alpaca = settings.alpaca
        endpoints = resolve_endpoints(
            live=settings.mode is Mode.LIVE,
            feed=alpaca.feed,
            key_id=alpaca.key_id,
            secret_key=alpaca.secret_key,
            trading_url=alpaca.base_url,
            data_url=alpaca.data_url,
            stream_url=alpaca.stream_url,
        )
        self.endpoints = endpoints
        self.clock = LiveClock()
        self.clock_start_ns = self.clock.now_ns()
        self.source = None
        broker = AlpacaBroker(self.bus, self.clock, endpoints, health=self.health)
        self.broker = broker
        self.stream = AlpacaMarketData(
            self.bus, self.clock, endpoints, feed=alpaca.feed, health=self.health
        )
        self.watchlist = list(settings.symbols or DEFAULT_WATCHLIST)
        self.instruments: dict[str, Instrument] = {}
        self.driver = LiveFeed(
            self.stream, self.bus, self.clock, until_ns=self._until(self.clock_start_ns)
        )

    @staticmethod
    def _build_source(settings: Settings, start_ns: int):
        if settings.mode is Mode.REPLAY:
            if not settings.data:
                raise InputError(
                    "replay mode needs --data PATH (a Lean data folder or one zip file)"
                )
            if is_store_data(settings.data):
                source = open_store_replay(settings.data, settings.s3, symbols=settings.symbols)
            else:
                source = open_replay(Path(settings.data), symbols=settings.symbols)
            return source, source.instruments(), source.references(), source.start_ns
        profiles = load_profiles(settings.symbols)
        source = SimMarket(
            profiles, seed=settings.seed, start_ns=start_ns, rate_scale=settings.sim.rate_scale
        )
        return source, source.instruments(), source.references(), start_ns

    def profile(self, symbol: str) -> SymbolProfile | None:
        """The sim calibration of ``symbol``; None outside sim mode or for a symbol not traded."""
        if self.settings.mode is not Mode.SIM or symbol not in self.instruments:
            return None
        if symbol not in self._profiles:
            self._profiles.update(load_profiles([symbol]))
        return self._profiles[symbol]

    def options_unavailable(self, symbol: str) -> str | None:
        """Why ``symbol`` has no option chain here, or None when it has (or can have) one."""
        if symbol not in self.instruments:
            return f"{symbol} is not traded here"
        if self.options is None:
            return f"option chains come from the sim market; {self.settings.mode} mode has none"
        failure = self.alpaca_options.failure(symbol) if self.alpaca_options else None
        if failure is not None:
            return f"the {symbol} option chain could not be loaded from Alpaca: {failure}"
        return None

    def option_chain(self, symbol: str) -> OptionChain | None:
        """``symbol``'s chain, built (and from then on repriced with every tick batch) on the
        first request in sim mode; in paper and live the chain ``load_option_chain`` loaded,
        else None. None where ``options_unavailable`` gives a reason."""
        if self.options_unavailable(symbol) is not None:
            return None
        chain = self.options.chain(symbol)
        if chain is None and self.settings.mode is Mode.SIM:
            profile = self.profile(symbol)
            chain = self.options.add_synthetic(profile)
            logger.info("option chain for {}: {} contracts", symbol, len(chain))
        return chain

    async def load_option_chain(self, symbol: str) -> OptionChain | None:
        """``symbol``'s chain, loaded from Alpaca on the first call in paper and live mode (the
        sim builds its own in ``option_chain``); None where ``options_unavailable`` says why."""
        if self.alpaca_options is not None and symbol in self.instruments:
            await self.alpaca_options.ensure(symbol)
        return self.option_chain(symbol)

    def backfill(self) -> bool:
        """Load recent daily bars for the watchlist and open positions on a worker thread (at
        start, and on demand); False when history is off or a backfill is still running."""
        symbols = sorted(set(self.instruments) | {p.symbol for p in self.oms.positions()})
        return self.history.start(symbols, self.clock.now_ns(), asyncio.get_running_loop())

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
        if isinstance(driver, LiveFeed):
            # The Alpaca clients beat their own components ("alpaca.data", the trade stream).
            state = self.stream.state
            feed_status = _STREAM_HEALTH.get(state, Status.DEGRADED)
            health.beat("feed", feed_status, f"alpaca {self.stream.feed}: {state}")
        else:
            feed_status = Status.OK if not driver.exhausted else Status.DEGRADED
            detail = "ended" if driver.exhausted else f"{self.settings.mode} market"
            health.beat("feed", feed_status, detail)
            health.beat("broker", Status.OK, self.broker.name)
        health.beat("journal", Status.OK, str(self.paths.journal.name))
        health.beat(
            "orders",
            Status.DEGRADED if self.oms.reconciling else Status.OK,
            "reconciling with the broker: orders blocked" if self.oms.reconciling else "accepting",
        )
        for service in (self.broker, getattr(self, "stream", None)):
            circuit = getattr(service, "circuit", None)
            if circuit is not None:
                circuit.report()  # its state, as a heartbeat: breakers only speak on change
        kill = self.risk.kill_switch
        health.beat(
            "risk",
            Status.DEGRADED if kill.engaged else Status.OK,
            "kill switch engaged" if kill.engaged else "",
        )

    async def start(self) -> None:
        await self.broker.start()
        await self.oms.start()
        await self.execution.start()
        if isinstance(self.broker, AlpacaBroker):
            # After every trade-stream reconnect the book must agree with Alpaca again.
            self.broker.on_reconnect = self.oms.reconcile
            self.instruments = {
                symbol: instrument
                for symbol in self.watchlist
                if (instrument := self.broker.instrument(symbol)) is not None
            }
            self.stream.subscribe(self.instruments)
        if self.option_market is not None:
            self.option_market.watch_held()
        if self.alpaca_options is not None:
            self._preload_option_chains()
        self.bots.start()
        self._report_health()
        if self._housekeeping:
            self._housekeeping_task = asyncio.create_task(self._housekeep(), name="housekeeping")
            self._lag_task = asyncio.create_task(self.health.watch_loop_lag(), name="loop-lag")
            self.backfill()
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
        self.bots.stop()
        self.history.stop()
        # Algos stop before the OMS: with cancel_open their parents end too, not just the children.
        self.execution.stop(cancel=cancel_open)
        if self.options is not None:
            self.options.close()
        if self.alpaca_options is not None:
            await self.alpaca_options.stop()
        await self.oms.stop(cancel_open=cancel_open)
        # Cancels are answered after the venue's latency: give simulated time room to deliver them.
        await self.driver.drain(
            max(int(self.settings.venue.latency_ms * NS_PER_MS) * 4, NS_PER_SECOND)
        )
        self.journal.close()
        await self.broker.stop()
