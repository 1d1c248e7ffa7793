"""The Broker protocol: what the OMS asks of any venue (the sim venue, Alpaca).

Commands (``submit``, ``cancel``, ``replace``) return at once; the outcome
arrives later as ``OrderUpdate`` messages published on the bus under
``Topic.ORDER_UPDATE``, exactly like Alpaca's ``trade_updates`` stream. Queries
are coroutines because a real broker answers over the network.
"""

from __future__ import annotations

from typing import Protocol

from engine.core.models import Account, Fill, Instrument, Order, Position


class Broker(Protocol):
    name: str

    async def start(self) -> None:
        """Connect (and, for the sim venue, load its persistent paper account)."""

    async def stop(self) -> None:
        """Disconnect and persist whatever must survive a restart."""

    def submit(self, order: Order) -> None:
        """Send a new order. ``order.id`` is the client_order_id."""

    def cancel(self, order_id: str) -> None:
        """Ask to cancel an open order by client_order_id."""

    def replace(self, order_id: str, new_order: Order) -> None:
        """Replace an open order with ``new_order`` (a new client_order_id; qty/prices changed).

        Success is a ``replaced`` update on the old order followed by ``new`` on the new one.
        """

    async def account(self) -> Account: ...

    async def positions(self) -> list[Position]: ...

    async def open_orders(self) -> list[Order]: ...

    async def get_order(self, order_id: str) -> Order | None:
        """The broker's record of one order (open or closed) by client_order_id, for reconciliation."""

    async def fills_since(self, ts_ns: int) -> list[Fill]:
        """Every execution at or after ``ts_ns``, for reconciliation after a restart or reconnect."""

    def instrument(self, symbol: str) -> Instrument | None:
        """What the broker knows of a symbol, or None if it does not trade it."""
