"""Execution algos' scheduling overhead: 100 concurrent algos on 50 symbols at market rate.

The recorded Lean data has six equity symbols, fewer than the 50 this needs, so the
market is the sim market: the 20 bundled Pooksoft calibrations, each cloned under
new names (S01..S50) with its own seeded path. Ten minutes of regular-session
market (about 320k quotes, trades and bars) are generated first, so generation is
not measured, then replayed twice through the same engine path (bus, market view,
sim venue, risk, OMS with its SQLite journal, execution service):

* reference: no algos;
* measured: 100 algos started ten seconds in (every symbol has quoted), two per symbol (TWAP, VWAP, POV
  and Iceberg in turn), whose children trade through risk and the venue.

Figures: this thread's CPU time per market event with algos, beside the same without;
their difference (the algos' whole cost per event, their children's orders included);
the scheduling part of it (that difference less the CPU time on the children's order
path: OMS submit/cancel with risk, journal and venue acceptance, and the OMS applying
the venue's updates); and CPU % of one core at the replayed market rate (CPU seconds
per second of market time), beside the same without algos.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_SECOND, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.models import Instrument, OrderRequest, OrderType, Side
from engine.data.calibration import load_profiles
from engine.data.driver import TOPIC_OF
from engine.data.sim import SimMarket
from engine.execution import (
    ExecutionService,
    IcebergSpec,
    ParentState,
    PovSpec,
    TwapSpec,
    VwapSpec,
)
from engine.journal import Journal
from engine.oms import OrderManager
from engine.risk.config import RiskConfig
from engine.risk.engine import RiskEngine
from tests.bench.results import Figure, record

SYMBOLS = 50
ALGOS = 100
MARKET_SECONDS = 600
START_NS = datetime_to_ns(datetime(2024, 3, 15, 10, 0, tzinfo=NEW_YORK))
ALGOS_START_NS = START_NS + 10 * NS_PER_SECOND
D = Decimal


def _market():
    bundled = list(load_profiles(None).values()) + list(
        load_profiles(
            ["AMZN", "CSCO", "DIS", "HD", "KO", "PEP", "PG", "UNH", "WMT", "XOM"]
        ).values()
    )
    profiles = {}
    for i in range(SYMBOLS):
        name = f"S{i + 1:02d}"
        profiles[name] = dataclasses.replace(bundled[i % len(bundled)], symbol=name)
    market = SimMarket(profiles, seed=11, start_ns=START_NS)
    end = START_NS + MARKET_SECONDS * NS_PER_SECOND
    events = []
    for event in market:
        if event.ts_ns > end:
            break
        events.append(event)
    return events, {name: Instrument(name) for name in profiles}, market.references()


def _engine(tmp: Path, instruments, references):
    bus = MessageBus()
    clock = SimClock(START_NS)
    view = MarketView(bus)
    for symbol, price in references.items():
        view.set_reference(symbol, price)
    broker = SimBroker(
        bus,
        clock,
        view,
        SimVenueConfig(starting_cash=D(1_000_000_000)),
        state_path=tmp / "venue.sqlite",
        instruments=instruments,
    )
    risk = RiskEngine(
        RiskConfig(
            max_order_qty=None,
            max_order_notional=None,
            max_position_qty=None,
            max_position_notional=None,
            max_gross_exposure=None,
            max_open_orders=None,
            max_orders_per_second=None,
            daily_loss_limit=None,
        ),
        clock,
        view,
    )
    journal = Journal(tmp / "journal.sqlite")
    oms = OrderManager(bus, clock, broker, risk, journal, view)
    service = ExecutionService(bus, clock, oms, risk, view, journal)

    async def start():
        await broker.start()
        await oms.start()
        await service.start()

    asyncio.run(start())
    return bus, clock, service, oms


def _specs(i: int, reference: Decimal):
    match i % 4:
        case 0:
            return TwapSpec(MARKET_SECONDS, 20), None
        case 1:
            return VwapSpec(duration_s=MARKET_SECONDS), None
        case 2:
            return PovSpec(D(5), D(10)), None
        case _:
            return IcebergSpec(D(100)), reference.quantize(D("0.01"))


class _OrderPathTimer:
    """CPU time spent on the children's order path: OMS submit and cancel (risk, journal, venue
    acceptance) and the OMS applying the venue's updates. The rest of what the algos add is
    their scheduling: bus handlers, timers, parent bookkeeping and journaling."""

    def __init__(self, bus: MessageBus, oms: OrderManager) -> None:
        self.cpu = 0.0
        oms.submit = self._timed(oms.submit)
        oms.cancel = self._timed(oms.cancel)
        bus.unsubscribe(Topic.ORDER_UPDATE, oms.on_order_update)
        bus.subscribe(Topic.ORDER_UPDATE, self._timed(oms.on_order_update))
        self._depth = 0

    def _timed(self, call):
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:  # nested calls (an update sending a child) count once
                    self.cpu += time.thread_time() - start

        return timed


def _replay(events, tmp: Path, instruments, references, algos: int):
    bus, clock, service, oms = _engine(tmp, instruments, references)
    order_path = _OrderPathTimer(bus, oms)
    topics = [TOPIC_OF[type(e)] for e in events]
    names = sorted(instruments)
    started = False
    cpu = time.thread_time()
    wall = time.perf_counter()
    for event, topic in zip(events, topics, strict=True):
        clock.advance_to(event.ts_ns)
        bus.publish(topic, event)
        if not started and event.ts_ns >= ALGOS_START_NS:
            # Every symbol has quoted by now: market children have a touch to trade at.
            started = True
            for i in range(algos):
                symbol = names[i % len(names)]
                spec, limit = _specs(i, references[symbol])
                side = Side.BUY if i % 2 else Side.SELL
                request = OrderRequest(
                    symbol=symbol,
                    side=side,
                    qty=D(2000),
                    type=OrderType.LIMIT if limit else OrderType.MARKET,
                    limit_price=limit,
                )
                assert service.submit(request, spec).accepted
    cpu = time.thread_time() - cpu
    wall = time.perf_counter() - wall
    return cpu, wall, service, oms, order_path.cpu


def test_execution_algos_scheduling_overhead(tmp_path):
    events, instruments, references = _market()
    assert len(events) > 50_000
    (tmp_path / "none").mkdir()
    (tmp_path / "algos").mkdir()
    base_cpu, base_wall, _, _, _ = _replay(events, tmp_path / "none", instruments, references, 0)
    cpu, wall, service, oms, order_cpu = _replay(
        events, tmp_path / "algos", instruments, references, ALGOS
    )

    parents = service.parents()
    children = sum(len(p.children) for p in parents)
    working = sum(p.state in (ParentState.WORKING, ParentState.COMPLETED) for p in parents)
    assert len(parents) == ALGOS and working == ALGOS, {p.reason for p in parents if p.reason}
    assert children > ALGOS
    n = len(events)
    per_event = cpu / n * 1e6
    base_per_event = base_cpu / n * 1e6
    scheduling = (cpu - base_cpu - order_cpu) / n * 1e6
    print(
        f"\n{n:,} market events over {MARKET_SECONDS} s of market time, {len(instruments)} "
        f"symbols; {ALGOS} algos sent {children:,} children ({len(oms.fills()):,} fills); "
        f"wall {wall:.2f} s with algos, {base_wall:.2f} s without"
    )
    record(
        Figure(
            "execution.cpu_per_event_100_algos",
            per_event,
            "us",
            "the same replay with no algos",
            base_per_event,
            per_event / base_per_event,
        )
    )
    record(
        Figure(
            "execution.algo_overhead_per_event",
            per_event - base_per_event,
            "us",
            "engine cost per event without algos",
            base_per_event,
            (per_event - base_per_event) / base_per_event,
        )
    )
    record(
        Figure(
            "execution.scheduling_overhead_per_event",
            scheduling,
            "us",
            "engine cost per event without algos",
            base_per_event,
            scheduling / base_per_event,
        )
    )
    record(
        Figure(
            "execution.cpu_pct_at_market_rate_100_algos",
            cpu / MARKET_SECONDS * 100,
            "% of a core",
            "the same replay with no algos",
            base_cpu / MARKET_SECONDS * 100,
            cpu / base_cpu,
        )
    )
