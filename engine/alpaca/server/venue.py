"""The market and the paper venue behind the local Alpaca server.

``SimVenue`` runs tickdeck's own ``SimMarket`` on a ``SimClock`` paced against
the event loop's clock at ``speed``, feeds it to tickdeck's own ``SimBroker``
(in memory), records every minute bar for the REST bar endpoints, and holds the
Alpaca view of every order (UUID ids, client_order_id uniqueness, replace
chains). It speaks engine models only; the HTTP and websocket layers turn them
into Alpaca's wire shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random

from loguru import logger

from engine.alpaca.wire import OrderRecord
from engine.broker.sim import SimBroker, SimVenueConfig
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, SimClock
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import (
    Bar,
    Order,
    OrderStatus,
    OrderUpdate,
    Quote,
    Trade,
    TradeEvent,
)
from engine.core.prices import ZERO
from engine.data.calibration import (
    SymbolProfile,
    bundled_symbols,
    estimate_quote_size,
    estimate_spread_bps,
    load_profiles,
)
from engine.data.driver import TOPIC_OF
from engine.data.sim import NS_PER_MINUTE, MarketEvent, SimMarket

# Symbols without bundled history (an ETF such as SPY) get this synthetic profile.
_FALLBACK_PRICE = Decimal("450.00")
_FALLBACK_VOL = 0.012
_FALLBACK_VOLUME = 60_000_000
_MAX_SLEEP_S = 0.25  # the pacer re-checks at least this often, so stop() is prompt
_YIELD_EVERY = 256
COMMAND_TIMEOUT_S = 5.0
MAX_RECORDED_BARS = 20_000  # per symbol: about fifty regular sessions of minute bars


class VenueRejection(BrokerError):
    """The venue refused an order; ``status`` and ``code`` are Alpaca's HTTP status and code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def profiles_for(symbols: Iterable[str]) -> dict[str, SymbolProfile]:
    """Calibrated profiles, with a synthetic index-ETF profile for symbols without history."""
    wanted = [s.strip().upper() for s in symbols]
    known = set(bundled_symbols())
    bundled = load_profiles([s for s in wanted if s in known]) if known & set(wanted) else {}
    profiles: dict[str, SymbolProfile] = {}
    for symbol in wanted:
        if symbol in bundled:
            profiles[symbol] = bundled[symbol]
            continue
        profiles[symbol] = SymbolProfile(
            symbol=symbol,
            start_price=_FALLBACK_PRICE,
            prev_close=_FALLBACK_PRICE,
            daily_vol=_FALLBACK_VOL,
            avg_daily_volume=_FALLBACK_VOLUME,
            spread_bps=estimate_spread_bps(_FALLBACK_PRICE, _FALLBACK_VOLUME),
            typical_quote_size=estimate_quote_size(_FALLBACK_PRICE),
        )
    return profiles


@dataclass(slots=True)
class RecordedBar:
    """A finished minute bar with the trade count and VWAP Alpaca's bars carry."""

    bar: Bar
    trade_count: int
    vwap: Decimal


@dataclass(slots=True)
class _Minute:
    start_ns: int = 0
    count: int = 0
    notional: Decimal = ZERO
    volume: int = 0


@dataclass(slots=True)
class _Waiter:
    order_ids: frozenset[str]
    future: asyncio.Future[OrderUpdate]


@dataclass(slots=True)
class SimVenue:
    """The sim market, the sim venue and the Alpaca order book on one ``SimClock``."""

    seed: int
    symbols: tuple[str, ...]
    speed: float
    latency_ms: float
    start_ns: int
    clock: SimClock = field(init=False)
    bus: MessageBus = field(init=False)
    view: MarketView = field(init=False)
    market: SimMarket = field(init=False)
    broker: SimBroker = field(init=False)
    bars: dict[str, deque[RecordedBar]] = field(init=False)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    trade_ids: int = 0
    last_trades: dict[str, tuple[Trade, int]] = field(default_factory=dict)
    _by_client: dict[str, str] = field(default_factory=dict)
    _minutes: dict[str, _Minute] = field(default_factory=dict)
    _waiters: list[_Waiter] = field(default_factory=list)
    _listeners: list[Callable[[OrderUpdate, OrderRecord], None]] = field(default_factory=list)
    _ids: Random = field(init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("the Alpaca server's speed must be positive")
        self.clock = SimClock(self.start_ns)
        self.bus = MessageBus()
        self.view = MarketView(self.bus)
        self.market = SimMarket(profiles_for(self.symbols), seed=self.seed, start_ns=self.start_ns)
        self.symbols = tuple(self.market.symbols)
        self.broker = SimBroker(
            self.bus,
            self.clock,
            self.view,
            # The REST API here has no legs to show: bracket orders are refused.
            SimVenueConfig(latency_ms=self.latency_ms, emulate_legs=False),
            state_path=None,
            instruments=self.market.instruments(),
        )
        self.bars = {symbol: deque(maxlen=MAX_RECORDED_BARS) for symbol in self.symbols}
        self._ids = Random(f"alpaca-server:{self.seed}")
        self.bus.subscribe(Topic.TRADE, self._on_trade)
        self.bus.subscribe(Topic.BAR, self._on_bar)
        self.bus.subscribe(Topic.ORDER_UPDATE, self._on_update)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the first session (so every symbol has a quote) and start pacing the market."""
        await self.broker.start()
        events = iter(self.market)
        pending = set(self.symbols)
        while pending:
            event = next(events)
            self._dispatch(event)
            if isinstance(event, Quote):
                pending.discard(event.symbol)
        self._task = asyncio.get_running_loop().create_task(self._pace(events))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.broker.stop()
        for waiter in self._waiters:
            waiter.future.cancel()
        self._waiters.clear()

    def on_update(self, listener: Callable[[OrderUpdate, OrderRecord], None]) -> None:
        """Call ``listener`` with every order update and the order's Alpaca record, in order."""
        self._listeners.append(listener)

    def _dispatch(self, event: MarketEvent) -> None:
        self.clock.advance_to(event.ts_ns)
        self.bus.publish(TOPIC_OF[type(event)], event)

    async def _pace(self, events: Iterator[MarketEvent]) -> None:
        """Publish the market's events when they are due at ``speed``; venue timers (command
        latency) fire when due too, between events."""
        loop = asyncio.get_running_loop()
        origin_wall, origin_ns = loop.time(), self.clock.now_ns()
        event = next(events)
        dispatched = 0
        while True:
            ts_ns = event.ts_ns
            if isinstance(event, SessionEvent) and event.phase is SessionPhase.OPEN:
                # Overnight is skipped: the next session opens as soon as it is reached.
                origin_wall, origin_ns = loop.time(), ts_ns
            deadline = self.clock.next_timer_ns()
            target = ts_ns if deadline is None or deadline > ts_ns else deadline
            wait = origin_wall + (target - origin_ns) / NS_PER_SECOND / self.speed - loop.time()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait, _MAX_SLEEP_S))
                continue
            if target < ts_ns:
                self.clock.advance_to(target)
                continue
            self._dispatch(event)
            event = next(events)
            dispatched += 1
            if dispatched % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    # -- market data -------------------------------------------------------------------

    def _on_trade(self, trade: Trade) -> None:
        self.trade_ids += 1
        self.last_trades[trade.symbol] = (trade, self.trade_ids)
        minute = self._minutes.get(trade.symbol)
        start = trade.ts_ns - trade.ts_ns % NS_PER_MINUTE
        if minute is None or minute.start_ns != start:
            minute = self._minutes[trade.symbol] = _Minute(start_ns=start)
        minute.count += 1
        minute.volume += trade.size
        minute.notional += trade.price * trade.size

    def _on_bar(self, bar: Bar) -> None:
        minute = self._minutes.get(bar.symbol)
        if minute is not None and minute.start_ns == bar.ts_ns and minute.volume:
            count, vwap = (
                minute.count,
                (minute.notional / minute.volume).quantize(Decimal("0.0001")),
            )
        else:
            count, vwap = 1, bar.close
        self.bars[bar.symbol].append(RecordedBar(bar, count, vwap))

    def recorded_bar(self, bar: Bar) -> RecordedBar:
        """The recorded form of ``bar`` (it was recorded when published)."""
        for recorded in reversed(self.bars[bar.symbol]):
            if recorded.bar is bar:
                return recorded
        return RecordedBar(bar, 1, bar.close)

    # -- orders ------------------------------------------------------------------------

    def new_id(self) -> str:
        """A random-looking but seeded UUID4."""
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def record(self, order_id: str) -> OrderRecord | None:
        """The order with Alpaca id ``order_id``."""
        return self.orders.get(order_id)

    def record_by_client(self, client_order_id: str) -> OrderRecord | None:
        alpaca_id = self._by_client.get(client_order_id)
        return self.orders.get(alpaca_id) if alpaca_id is not None else None

    def _add(self, order: Order, replaces: OrderRecord | None) -> OrderRecord:
        record = OrderRecord(order=order, alpaca_id=self.new_id(), submitted_ns=self.clock.now_ns())
        if replaces is not None:
            record.replaces_id = replaces.alpaca_id
            order.replaces = replaces.order.id
        self.orders[record.alpaca_id] = record
        self._by_client[order.id] = record.alpaca_id
        return record

    def _forget(self, record: OrderRecord) -> None:
        del self.orders[record.alpaca_id]
        del self._by_client[record.order.id]

    def check_client_id(self, client_order_id: str) -> None:
        if client_order_id in self._by_client:
            raise VenueRejection(422, 42210000, "client_order_id must be unique")

    async def submit(self, order: Order) -> OrderRecord:
        """Send ``order`` to the venue and wait for its acceptance; a rejection raises."""
        self.check_client_id(order.id)
        record = self._add(order, None)
        waiter = self._wait_for({order.id})
        self.broker.submit(order)
        self._wake.set()
        update = await self._outcome(waiter)
        if update.event is TradeEvent.REJECTED:
            raise _rejection(update.reason)
        return record

    async def cancel(self, record: OrderRecord) -> None:
        """Cancel an open order and wait for the venue's answer."""
        if not record.order.status.is_open:
            raise VenueRejection(422, 42210000, "order is not cancelable")
        waiter = self._wait_for({record.order.id})
        self.broker.cancel(record.order.id)
        self._wake.set()
        update = await self._outcome(waiter)
        if update.event is TradeEvent.ORDER_CANCEL_REJECTED:
            raise VenueRejection(422, 42210000, update.reason or "order is not cancelable")

    async def replace(self, old: OrderRecord, new_order: Order) -> OrderRecord:
        """Replace ``old`` with ``new_order`` (a new order with a new id); a refusal raises."""
        status = old.order.status
        if not status.is_open:
            raise VenueRejection(422, 42210000, f"cannot replace order in {status.value} status")
        self.check_client_id(new_order.id)
        record = self._add(new_order, old)
        waiter = self._wait_for({old.order.id, new_order.id})
        self.broker.replace(old.order.id, new_order)
        self._wake.set()
        update = await self._outcome(waiter)
        if update.event is TradeEvent.ORDER_REPLACE_REJECTED:
            self._forget(record)
            raise VenueRejection(422, 42210000, update.reason or "the order cannot be replaced")
        return record

    def _wait_for(self, order_ids: set[str]) -> _Waiter:
        future: asyncio.Future[OrderUpdate] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(frozenset(order_ids), future)
        self._waiters.append(waiter)
        return waiter

    async def _outcome(self, waiter: _Waiter) -> OrderUpdate:
        try:
            return await asyncio.wait_for(waiter.future, COMMAND_TIMEOUT_S)
        except TimeoutError:
            raise VenueRejection(504, 50410000, "the sim venue did not answer in time") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _on_update(self, update: OrderUpdate) -> None:
        record = self.record_by_client(update.order_id)
        if record is None:
            logger.warning("alpaca server: update for unknown order {}", update.order_id)
            return
        order = record.order
        order.status = update.status
        order.filled_qty = update.filled_qty
        order.filled_avg_price = update.filled_avg_price
        order.updated_ns = update.ts_ns
        order.broker_order_id = update.broker_order_id or order.broker_order_id
        order.reason = update.reason
        status = update.status
        if status is OrderStatus.FILLED:
            record.filled_ns = update.ts_ns
        elif status is OrderStatus.CANCELED:
            record.canceled_ns = update.ts_ns
        elif status is OrderStatus.EXPIRED:
            record.expired_ns = update.ts_ns
        elif status is OrderStatus.REJECTED:
            record.failed_ns = update.ts_ns
        elif status is OrderStatus.REPLACED:
            record.replaced_ns = update.ts_ns
            successor = self.record_by_client(update.replaced_by or "")
            record.replaced_by_id = successor.alpaca_id if successor is not None else None
            order.replaced_by = update.replaced_by
        for listener in self._listeners:
            listener(update, record)
        for waiter in tuple(self._waiters):
            if update.order_id in waiter.order_ids and not waiter.future.done():
                waiter.future.set_result(update)


def _rejection(reason: str) -> VenueRejection:
    """Alpaca answers buying-power and short-sale refusals with 403, the rest with 422."""
    if "buying power" in reason or "short" in reason:
        return VenueRejection(403, 40310000, reason)
    return VenueRejection(422, 42210000, reason)
