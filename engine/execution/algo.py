"""The algo base: one child working at a time, sent when the algo's target runs ahead of fills.

An algo only decides *how much* should have been sent by now (``target``) and
*when* to look again (its timers, trades). The base turns that into children:
when no child is working and the target exceeds what has filled, it asks the
host (the ``ExecutionService``) to send a child for the difference, clipped by
the algo, never more than the parent's unfilled quantity and never through the
parent's limit. A child still working when a new slice is due is cancelled
first, and its unfilled rest goes out with the next child. Children are spaced
at least ``child_interval_ms`` apart, so a thin book never turns into a storm of
orders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from engine.core.clock import NS_PER_MS, Clock, TimerHandle
from engine.core.models import Order, Quote, Side
from engine.core.prices import ZERO
from engine.execution.config import ChildPricing, ExecutionConfig
from engine.execution.parent import Parent, ParentState


class AlgoHost(Protocol):
    """What an algo may ask of the service that runs it."""

    clock: Clock

    def send_child(self, algo: Algo, qty: Decimal, limit_price: Decimal | None) -> None: ...

    def cancel_child(self, order_id: str) -> None: ...

    def quote(self, symbol: str) -> Quote | None: ...


def whole(qty: Decimal) -> Decimal:
    """``qty`` rounded down to whole shares."""
    return qty.to_integral_value(rounding=ROUND_FLOOR)


def cap_to_limit(side: Side, price: Decimal, limit: Decimal | None) -> Decimal:
    """``price``, but never worse for the parent than its ``limit``."""
    if limit is None:
        return price
    return min(price, limit) if side is Side.BUY else max(price, limit)


class Algo(ABC):
    """Base of every algo. Subclasses set ``target`` and call ``work()`` when it may have grown."""

    follows_volume = False  # True: the service calls work() whenever the symbol trades

    def __init__(self, parent: Parent, host: AlgoHost, config: ExecutionConfig) -> None:
        self.parent = parent
        self.host = host
        self.config = config
        self.working: Order | None = None  # the child at the broker, if any
        self.cancelling = False
        self._last_sent_ns: int | None = None
        self._retry: TimerHandle | None = None
        self._interval_ns = config.child_interval_ms * NS_PER_MS

    # -- what subclasses define --------------------------------------------------------------

    def start(self) -> None:
        """Arm timers; called when the algo starts and again after an engine restart."""
        self.work()

    @abstractmethod
    def target(self) -> Decimal:
        """Cumulative quantity that should have been sent by now (capped at the parent's qty)."""

    def clip(self, wanted: Decimal) -> Decimal:
        """How much of ``wanted`` to send as one child (0: wait)."""
        return wanted

    def child_price(self) -> Decimal | None:
        """The child's limit price; None sends a market order."""
        return self.parent.limit_price

    def stop(self) -> None:
        """Drop every timer: the parent is paused or over."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    # -- the shared mechanics ----------------------------------------------------------------

    def wanted(self) -> Decimal:
        """What the target is ahead of the fills (whole shares for a whole-share parent)."""
        parent = self.parent
        parent.scheduled_qty = min(self.target(), parent.qty)
        ahead = parent.scheduled_qty - parent.filled_qty
        return whole(ahead) if parent.qty == whole(parent.qty) else ahead

    def work(self) -> None:
        """Send a child if the target is ahead of the fills and nothing is working."""
        parent = self.parent
        if parent.state is not ParentState.WORKING:
            return
        wanted = self.wanted()
        if self.working is not None or wanted <= ZERO:
            return
        qty = min(self.clip(wanted), parent.leaves_qty)
        if qty <= ZERO:
            return
        now = self.host.clock.now_ns()
        if self._last_sent_ns is not None and now < self._last_sent_ns + self._interval_ns:
            if self._retry is None:
                self._retry = self.host.clock.call_at(
                    self._last_sent_ns + self._interval_ns, self._retry_due
                )
            return
        self._last_sent_ns = now
        self.host.send_child(self, qty, self.child_price())

    def _retry_due(self) -> None:
        self._retry = None
        self.work()

    def reslice(self) -> None:
        """A new slice is due: cancel a child still working (its rest rolls over), else send."""
        if self.working is not None:
            if not self.cancelling:
                self.cancelling = True
                self.host.cancel_child(self.working.id)
            return
        self.work()

    def child_ended(self) -> None:
        """The working child reached a terminal status."""
        self.working = None
        self.cancelling = False
        self.work()


class SlicedAlgo(Algo):
    """A schedule of (time, cumulative quantity) slices: TWAP and VWAP.

    At each slice time the target becomes that slice's cumulative quantity. After a
    restart, slices already due are caught up at once in one child.
    """

    def __init__(self, parent: Parent, host: AlgoHost, config: ExecutionConfig) -> None:
        super().__init__(parent, host, config)
        self.slices: list[tuple[int, Decimal]] = self.schedule()
        self._due = 0  # slices whose time has come
        self._timer: TimerHandle | None = None

    @abstractmethod
    def schedule(self) -> list[tuple[int, Decimal]]:
        """Every slice as (time, cumulative quantity), in time order; the last is the whole qty."""

    def start(self) -> None:
        self._tick()

    def target(self) -> Decimal:
        return self.slices[self._due - 1][1] if self._due else ZERO

    def child_price(self) -> Decimal | None:
        parent, config = self.parent, self.config
        quote = self.host.quote(parent.symbol)
        if config.child_pricing is ChildPricing.MARKET or quote is None or not quote.is_two_sided:
            return parent.limit_price
        if parent.side is Side.BUY:
            price = min(quote.bid + config.touch_offset, quote.ask)
        else:
            price = max(quote.ask - config.touch_offset, quote.bid)
        return cap_to_limit(parent.side, price, parent.limit_price)

    def _tick(self) -> None:
        self._timer = None
        now = self.host.clock.now_ns()
        due = self._due
        while due < len(self.slices) and self.slices[due][0] <= now:
            due += 1
        changed = due != self._due
        self._due = due
        if due < len(self.slices):
            self._timer = self.host.clock.call_at(self.slices[due][0], self._tick)
        if changed:
            self.reslice()

    def stop(self) -> None:
        super().stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def cumulative(qty: Decimal, weights: list[float] | list[int]) -> list[Decimal]:
    """Cumulative whole-share targets in proportion to ``weights``; the last is exactly ``qty``.

    Each is ``floor(qty × weights so far / total)``, so no slice is ever negative and
    rounding never sends more than the parent's quantity.
    """
    total = sum(Decimal(repr(w)) for w in weights)
    running = ZERO
    out: list[Decimal] = []
    for weight in weights[:-1]:
        running += Decimal(repr(weight))
        out.append(whole(qty * running / total))
    out.append(qty)
    return out
