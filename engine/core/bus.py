"""Synchronous in-loop publish/subscribe.

Dispatch is a plain function call on the event loop (as in NautilusTrader's
MessageBus): no queue per hop, no task per message. A subscriber may listen to
a whole topic or to one symbol of it. A handler that raises is logged and
counted; it never stops delivery to the others. Queues exist only at IO
boundaries (see ``BoundedQueue``), and they are bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from loguru import logger

Handler = Callable[[Any], None]


class Topic(StrEnum):
    QUOTE = "quote"  # Quote
    TRADE = "trade"  # Trade
    BAR = "bar"  # Bar
    ORDER_UPDATE = "order.update"  # OrderUpdate, broker -> OMS
    ORDER = "order"  # Order, the OMS's record after every change
    FILL = "fill"  # Fill, after the OMS has applied it
    POSITION = "position"  # Position, after a fill changed it
    ACCOUNT = "account"  # Account
    RISK_REJECT = "risk.reject"  # RiskDecision of a rejected request
    KILL_SWITCH = "risk.kill"  # KillSwitchState
    ALERT = "alert"  # Alert: a sentence for the trader
    SESSION = "session"  # SessionEvent: market open/close in the sim and replay feeds
    STATUS = "status"  # TradingStatus: a halt, resumption or other status from the feed
    LULD = "luld"  # Luld: limit up/limit down price bands
    BAR_UPDATE = "bar.update"  # Bar: a late correction of a minute bar already published on BAR


class MessageBus:
    def __init__(self) -> None:
        self._topic_handlers: dict[str, list[Handler]] = {}
        self._symbol_handlers: dict[tuple[str, str], list[Handler]] = {}
        self.published = 0
        self.handler_errors = 0

    def subscribe(self, topic: str, handler: Handler, symbol: str | None = None) -> None:
        if symbol is None:
            self._topic_handlers.setdefault(topic, []).append(handler)
        else:
            self._symbol_handlers.setdefault((topic, symbol), []).append(handler)

    def unsubscribe(self, topic: str, handler: Handler, symbol: str | None = None) -> None:
        handlers = (
            self._topic_handlers.get(topic)
            if symbol is None
            else self._symbol_handlers.get((topic, symbol))
        )
        if handlers and handler in handlers:
            handlers.remove(handler)

    def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to the topic's handlers, then to handlers of its symbol."""
        self.published += 1
        handlers = self._topic_handlers.get(topic)
        if handlers:
            for handler in tuple(handlers) if len(handlers) > 1 else handlers:
                try:
                    handler(message)
                except Exception:
                    self._on_handler_error(topic, handler)
        if self._symbol_handlers:
            symbol = getattr(message, "symbol", None)
            if symbol is not None:
                for handler in self._symbol_handlers.get((topic, symbol), ()):
                    try:
                        handler(message)
                    except Exception:
                        self._on_handler_error(topic, handler)

    def _on_handler_error(self, topic: str, handler: Handler) -> None:
        self.handler_errors += 1
        logger.exception(
            "bus handler {} failed on topic {}", getattr(handler, "__qualname__", handler), topic
        )


class BoundedQueue(asyncio.Queue):
    """An IO-boundary queue that never grows without limit.

    When full, the oldest item is dropped and counted: a slow consumer loses
    stale data, the producer (a socket reader) never blocks.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize <= 0:
            raise ValueError("a bounded queue needs maxsize > 0")
        super().__init__(maxsize)
        self.dropped = 0

    def put_nowait(self, item: Any) -> None:
        if self.full():
            self.get_nowait()
            self.dropped += 1
        super().put_nowait(item)
