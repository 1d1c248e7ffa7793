"""The console under load: 50 symbols ticking at 1,000 updates/s in total.

A synthetic, time-ordered tape (quotes and trades, 50 symbols, one update
every millisecond) goes through a real ``Engine`` (bus, market view, intraday
bars, sim venue, risk, OMS, housekeeping) whose feed driver is swapped for one
over the tape. The console is the real app, headless at 120x40, pulling
snapshots at its configured rate and drawing at its configured frame cap.

Figures, each beside a reference measured in the same run:

* frame time p99: one frame is ``Screen._on_timer_update`` (layout, widget
  renders, the compositor's update) plus turning the update into terminal
  bytes, which headless Textual skips and a terminal run does not;
  reference: the median frame.
* event-loop lag p99: how late a 10 ms sleep wakes; reference: the same probe
  with the engine alone on the same tape.
* CPU %: process CPU time over wall time; reference: the engine alone.
* engine throughput with the console on: the tape unpaced (speed 0), the same
  events with and without the app in the loop, best of two runs each;
  reference: the engine alone.

Only that the runs happened is asserted, never a timing.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import textual.screen
from loguru import logger
from textual._compositor import CompositorUpdate
from textual.app import App
from textual.screen import Screen

from engine.cli import sim_start_ns
from engine.client import LocalClient
from engine.config import load_settings
from engine.core.clock import NS_PER_SECOND
from engine.core.models import Quote, Trade
from engine.data.driver import FeedDriver
from engine.node import Engine
from tests.bench.results import Figure, record
from tui.app import TickdeckApp, make_app

SYMBOLS = tuple(f"SYM{n:02d}" for n in range(50))
RATE = 1_000  # updates per second, all symbols together
TRADE_SHARE = 0.2  # the rest are quotes
SIZE = (120, 40)
SETTLE_S = 1.0  # the app mounts and the feed gets going before anything is measured
CONSOLE_S = 12.0  # measured wall time with the console on
ALONE_S = 5.0  # measured wall time of the engine alone (the reference)
UNPACED_EVENTS = 500_000
LAG_SLEEP_S = 0.010
START_NS = sim_start_ns("2024-03-15", date(2024, 3, 15))


class SyntheticTape:
    """Updates one millisecond apart, each for a random symbol: a quote, or a trade at the touch.

    Iterating makes the events as they are consumed (a paced feed holds no
    backlog, so neither does the console's heap); ``tuple(tape)`` builds them
    first, for runs that must not count their making. Prices are shared
    ``Decimal``s, one per cent value, as a feed's parser would hand them out.
    """

    def __init__(self, count: int, *, seed: int = 7) -> None:
        self.count = count
        self.seed = seed
        self._prices: dict[int, Decimal] = {}
        # Each symbol's first mid: its change % is measured from it.
        opening = self._opening_mids(random.Random(seed))
        self.references = {symbol: self._price(cents) for symbol, cents in opening.items()}

    @staticmethod
    def _opening_mids(rng: random.Random) -> dict[str, int]:
        """Each symbol's first mid price, in cents: the first draws of the tape's generator."""
        return {symbol: rng.randint(2_000, 50_000) for symbol in SYMBOLS}

    def _price(self, cents: int) -> Decimal:
        price = self._prices.get(cents)
        if price is None:
            price = self._prices[cents] = Decimal(cents).scaleb(-2)
        return price

    def __iter__(self) -> Iterator[Quote | Trade]:
        rng = random.Random(self.seed)
        mids = self._opening_mids(rng)
        price = self._price
        step_ns = NS_PER_SECOND // RATE
        for n in range(1, self.count + 1):
            symbol = rng.choice(SYMBOLS)
            mid = mids[symbol] = mids[symbol] + rng.choice((-1, 0, 0, 1))
            ts_ns = START_NS + n * step_ns
            if rng.random() < TRADE_SHARE:
                yield Trade(symbol, ts_ns, price(mid + rng.choice((-1, 1))), rng.randint(1, 500))
            else:
                bid, ask = mid - rng.randint(1, 2), mid + rng.randint(1, 2)
                yield Quote(
                    symbol,
                    ts_ns,
                    price(bid),
                    rng.randrange(100, 2_000, 100),
                    price(ask),
                    rng.randrange(100, 2_000, 100),
                )


def engine_over(
    tape: SyntheticTape, events: Iterable[Quote | Trade], data_dir: Path, *, speed: float
) -> Engine:
    """A real engine (default settings, fresh paper account) whose feed is ``events`` at ``speed``."""
    engine = Engine(load_settings(env={}, cli={}), start_ns=START_NS, data_dir=data_dir)
    for symbol, price in tape.references.items():
        engine.market.set_reference(symbol, price)
    engine.driver = FeedDriver(events, engine.clock, engine.bus, speed=speed)
    return engine


def console_over(client: LocalClient, engine: Engine) -> TickdeckApp:
    """The console as ``tickdeck`` runs it: blinking cursor, animations, the wall clock shown."""
    return make_app(client, engine.settings, symbols=SYMBOLS, clock_text=True, deterministic=False)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


@dataclass(slots=True)
class LoopProbe:
    """How late a 10 ms sleep wakes, for as long as it runs."""

    lags_ms: list[float] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_SLEEP_S)
            self.lags_ms.append((time.perf_counter() - started - LAG_SLEEP_S) * 1_000)


@dataclass(slots=True)
class FrameTimer:
    """Times each frame the console's main screen paints (see the module docstring)."""

    frames_ms: list[float] = field(default_factory=list)
    screen: Screen | None = None
    _painted: bool = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        update = Screen._on_timer_update
        display = App._display

        def timed_update(screen: Screen) -> None:
            self._painted = False
            started = time.perf_counter_ns()
            update(screen)
            if self._painted and screen is self.screen:
                self.frames_ms.append((time.perf_counter_ns() - started) / 1e6)

        def serialized_display(app: App, screen: Screen, renderable) -> None:
            display(app, screen, renderable)
            if isinstance(renderable, CompositorUpdate) and app.is_headless:
                renderable.render_segments(app.console)
                self._painted = True

        monkeypatch.setattr(Screen, "_on_timer_update", timed_update)
        monkeypatch.setattr(App, "_display", serialized_display)


@dataclass(slots=True, frozen=True)
class Window:
    """What one measured stretch of wall time saw."""

    lag_p99_ms: float
    cpu_pct: float
    events: int
    frames_ms: tuple[float, ...] = ()


async def measure(engine: Engine, seconds: float, frames: FrameTimer | None = None) -> Window:
    """Run the loop probe for ``seconds`` and read CPU, events and frames over the same span."""
    probe = LoopProbe()
    task = asyncio.create_task(probe.run())
    first_frame = len(frames.frames_ms) if frames is not None else 0
    events, cpu, wall = engine.driver.stats.events, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    events = engine.driver.stats.events - events
    task.cancel()
    drawn = tuple(frames.frames_ms[first_frame:]) if frames is not None else ()
    return Window(p99(probe.lags_ms), 100 * cpu / wall, events, drawn)


async def engine_alone_paced(tape: SyntheticTape, data_dir: Path) -> Window:
    engine = engine_over(tape, tape, data_dir, speed=1.0)
    client = LocalClient(engine)
    await client.start()
    try:
        await asyncio.sleep(SETTLE_S)
        return await measure(engine, ALONE_S)
    finally:
        await client.stop()


async def console_paced(tape: SyntheticTape, data_dir: Path, frames: FrameTimer) -> Window:
    engine = engine_over(tape, tape, data_dir, speed=1.0)
    app = console_over(LocalClient(engine), engine)
    async with app.run_test(size=SIZE):
        frames.screen = app.main
        await asyncio.sleep(SETTLE_S)
        window = await measure(engine, CONSOLE_S, frames)
        assert engine.bus.handler_errors == 0
        return window


async def _unpaced_rate(engine: Engine) -> float:
    started = time.perf_counter()
    await engine.driver.run()
    return engine.driver.stats.events / (time.perf_counter() - started)


async def unpaced(
    tape: SyntheticTape, events: tuple[Quote | Trade, ...], data_dir: Path, *, with_console: bool
) -> float:
    """Events/s of the whole tape at speed 0, with or without the console in the same loop."""
    engine = engine_over(tape, events, data_dir, speed=0)
    client = LocalClient(engine, run_feed=False)
    if not with_console:
        await client.start()
        try:
            return await _unpaced_rate(engine)
        finally:
            await client.stop()
    app = console_over(client, engine)
    async with app.run_test(size=SIZE):
        await asyncio.sleep(SETTLE_S)
        return await _unpaced_rate(engine)


@pytest.fixture(autouse=True)
def _quiet_engine() -> Iterator[None]:
    """The engine's and console's info lines (started, stopped) would bury the figures."""
    for package in ("engine", "tui"):
        logger.disable(package)
    yield
    for package in ("engine", "tui"):
        logger.enable(package)


@pytest.fixture
def frame_cap(monkeypatch) -> int:
    """Frames are capped as the console caps them (``console.fps``, or ``TEXTUAL_FPS``).

    Textual reads ``TEXTUAL_FPS`` once, at import; the console sets it before
    importing Textual, which a test cannot, so the screens' update period is set here.
    """
    fps = int(os.environ.get("TEXTUAL_FPS", load_settings(env={}, cli={}).console.fps))
    monkeypatch.setattr(textual.screen, "UPDATE_PERIOD", 1 / fps)
    return fps


def test_console_frame_time_loop_lag_and_cpu_at_1000_updates_per_s(
    tmp_path, monkeypatch, frame_cap
):
    tape = SyntheticTape(int((SETTLE_S + max(CONSOLE_S, ALONE_S) + 5) * RATE))
    frames = FrameTimer()
    frames.install(monkeypatch)
    alone = asyncio.run(engine_alone_paced(tape, tmp_path / "alone"))
    console = asyncio.run(console_paced(tape, tmp_path / "console", frames))

    assert console.frames_ms and console.events > 0 and alone.events > 0
    frame_p99, frame_p50 = p99(list(console.frames_ms)), statistics.median(console.frames_ms)
    print(
        f"\nconsole: {len(console.frames_ms)} frames in {CONSOLE_S:.0f} s (cap {frame_cap} fps), "
        f"{console.events / CONSOLE_S:,.0f} updates/s dispatched; "
        f"engine alone: {alone.events / ALONE_S:,.0f} updates/s"
    )
    record(
        Figure(
            "console.frame_p99",
            frame_p99,
            "ms",
            "frame p50",
            frame_p50,
            frame_p99 / frame_p50,
            "<= 16 ms",
        )
    )
    record(
        Figure(
            "console.loop_lag_p99",
            console.lag_p99_ms,
            "ms",
            "engine alone, loop lag p99",
            alone.lag_p99_ms,
            console.lag_p99_ms / alone.lag_p99_ms,
            "<= 10 ms",
        )
    )
    record(
        Figure(
            "console.cpu",
            console.cpu_pct,
            "%",
            "engine alone, CPU",
            alone.cpu_pct,
            console.cpu_pct / alone.cpu_pct,
        )
    )


@pytest.mark.usefixtures("frame_cap")
def test_engine_throughput_with_the_console_on_and_off(tmp_path):
    tape = SyntheticTape(UNPACED_EVENTS)
    events = tuple(tape)
    rates: dict[bool, list[float]] = {False: [], True: []}
    # Alternated, so that drift in the machine's speed falls on both sides.
    for run, with_console in enumerate((False, True, True, False)):
        rate = asyncio.run(unpaced(tape, events, tmp_path / f"run{run}", with_console=with_console))
        rates[with_console].append(rate)

    off, on = max(rates[False]), max(rates[True])
    assert off > 0 and on > 0
    record(
        Figure(
            "console.engine_events_per_s_ui_on",
            on,
            "events/s",
            "engine alone (console off)",
            off,
            on / off,
            "drop <= 20% (ratio >= 0.80)",
        )
    )
