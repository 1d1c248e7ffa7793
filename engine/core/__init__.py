"""Core types every part of the engine shares: models, prices, bus, clocks, errors."""

from engine.core.bus import BoundedQueue, MessageBus, Topic
from engine.core.clock import Clock, LiveClock, SimClock
from engine.core.conflate import MarketView, SymbolSnapshot
from engine.core.errors import BrokerError, ConfigError, DataError, InputError, TickdeckError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import (
    Account,
    Bar,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Quote,
    Side,
    TimeInForce,
    Trade,
    TradeEvent,
)

__all__ = [
    "Account",
    "Alert",
    "Bar",
    "BoundedQueue",
    "BrokerError",
    "Clock",
    "ConfigError",
    "DataError",
    "Fill",
    "InputError",
    "Instrument",
    "LiveClock",
    "MarketView",
    "MessageBus",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Position",
    "Quote",
    "SessionEvent",
    "SessionPhase",
    "Severity",
    "Side",
    "SimClock",
    "SymbolSnapshot",
    "TickdeckError",
    "TimeInForce",
    "Topic",
    "Trade",
    "TradeEvent",
]
