"""A desk for execution tests: real bus, SimClock, market view, sim venue, risk, journal and OMS.

Quotes and trades are published by the test; time moves only when the test
advances the clock. ``restart()`` builds a new desk on the same journal and venue
files, as an engine restart would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_MS, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.events import Alert
from engine.core.models import Instrument, Order, OrderRequest, Quote, Side, Trade
from engine.execution import ExecutionConfig, ExecutionService
from engine.journal import Journal
from engine.oms import OrderManager
from engine.risk.config import RiskConfig
from engine.risk.engine import RiskEngine

D = Decimal
SYMBOL = "XYZ"
START_NS = datetime_to_ns(datetime(2024, 3, 15, 10, 0, tzinfo=NEW_YORK))
LATENCY_NS = 5 * NS_PER_MS
INSTRUMENTS = {SYMBOL: Instrument(SYMBOL), "ABC": Instrument("ABC")}
ROOMY_RISK = RiskConfig(
    max_order_qty=D(100_000),
    max_order_notional=D(10_000_000),
    max_position_qty=D(1_000_000),
    max_position_notional=D(100_000_000),
    max_gross_exposure=D(100_000_000),
    check_buying_power=False,
    daily_loss_limit=None,
)


@dataclass
class Desk:
    tmp: Path
    risk_config: RiskConfig = field(default_factory=lambda: ROOMY_RISK)
    config: ExecutionConfig = field(default_factory=ExecutionConfig)
    start_ns: int = START_NS
    venue_cash: Decimal = Decimal(100_000_000)
    instruments: dict[str, Instrument] = field(default_factory=lambda: dict(INSTRUMENTS))

    def __post_init__(self) -> None:
        self.bus = MessageBus()
        self.clock = SimClock(self.start_ns)
        self.market = MarketView(self.bus)
        self.broker = SimBroker(
            self.bus,
            self.clock,
            self.market,
            SimVenueConfig(starting_cash=self.venue_cash),
            state_path=self.tmp / "venue.sqlite",
            instruments=self.instruments,
        )
        self.journal = Journal(self.tmp / "journal.sqlite")
        self.risk = RiskEngine(self.risk_config, self.clock, self.market)
        self.oms = OrderManager(
            self.bus, self.clock, self.broker, self.risk, self.journal, self.market
        )
        self.service = ExecutionService(
            self.bus, self.clock, self.oms, self.risk, self.market, self.journal, self.config
        )
        self.alerts: list[Alert] = []
        self.bus.subscribe(Topic.ALERT, self.alerts.append)
        asyncio.run(self._start())

    async def _start(self) -> None:
        await self.broker.start()
        await self.oms.start()
        await self.service.start()

    def restart(self, *, config: ExecutionConfig | None = None, at_ns: int | None = None) -> Desk:
        """Stop this desk (keeping orders open) and build a new one on the same files."""
        self.service.stop(cancel=False)
        self.journal.close()
        asyncio.run(self.broker.stop())
        return Desk(
            self.tmp,
            self.risk_config,
            config or self.config,
            at_ns if at_ns is not None else self.clock.now_ns(),
            self.venue_cash,
            self.instruments,
        )

    def quote(self, bid: str, ask: str, size: int = 100_000, symbol: str = SYMBOL) -> None:
        self.bus.publish(
            Topic.QUOTE, Quote(symbol, self.clock.now_ns(), D(bid), size, D(ask), size)
        )

    def trade(self, price: str, size: int, symbol: str = SYMBOL) -> None:
        self.bus.publish(Topic.TRADE, Trade(symbol, self.clock.now_ns(), D(price), size))

    def advance(self, ns: int) -> None:
        self.clock.advance_by(ns)

    def settle(self) -> None:
        """Let the venue's latency pass twice: commands arrive and their answers come back."""
        self.clock.advance_by(2 * LATENCY_NS)

    def children(self, parent_id: str) -> list[Order]:
        return self.service.children(parent_id)


def request(
    side: str = "buy", qty: str = "1000", limit: str | None = None, symbol: str = SYMBOL
) -> OrderRequest:
    from engine.core.models import OrderType

    return OrderRequest(
        symbol=symbol,
        side=Side(side),
        qty=D(qty),
        type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=None if limit is None else D(limit),
    )


def config(**changes) -> ExecutionConfig:
    return dataclasses.replace(
        ExecutionConfig(twap_jitter_pct=D(0), child_interval_ms=0), **changes
    )
