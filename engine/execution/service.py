"""The execution service: starts, pauses, resumes and cancels algos, and keeps their parents.

The Engine owns one. It listens on the bus: ``Topic.ORDER`` for its children
(their fills make the parent's progress; a refused child pauses the parent with
the reason, or fails it once its schedule has ended), ``Topic.TRADE`` and ``Topic.BAR`` for the market volume POV follows
and the interval VWAP, and ``Topic.KILL_SWITCH``: the kill switch cancels every
algo (the OMS cancels every open order, children included, in the same step).

Children go through ``OrderManager.submit`` with ``confirmed=True``: the trader
confirmed the parent, so soft warnings (a double-Enter duplicate, a soft collar)
do not stop each slice, while every hard limit and the kill switch still apply.

Every parent is journaled (schema v3 ``parents`` table) when it starts, when its
state changes and when the service stops, and each state change adds an ``algo``
event with its execution quality. Its children and their fills are not copied
there: on a restart they are rebuilt from the OMS's reconciled orders. On start the service loads the parents still working
or paused and, per ``execution.on_restart``, resumes them (a schedule that fell
behind while the engine was down is caught up at once) or cancels them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_SECOND, Clock, datetime_to_ns, ns_to_datetime
from engine.core.conflate import MarketView
from engine.core.events import Alert, Severity
from engine.core.models import (
    Bar,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    TimeInForce,
    Trade,
)
from engine.core.prices import ZERO
from engine.execution.algo import Algo
from engine.execution.config import ExecutionConfig, RestartPolicy
from engine.execution.curve import UShapeCurve, VolumeCurve
from engine.execution.iceberg import Iceberg
from engine.execution.parent import Parent, ParentState, parent_from_json
from engine.execution.pov import Pov
from engine.execution.quality import ExecutionQuality, measure
from engine.execution.spec import AlgoSpec, IcebergSpec, PovSpec, TwapSpec, VwapSpec
from engine.execution.twap import Twap
from engine.execution.vwap import Vwap
from engine.journal import EventKind, Journal, JournalError
from engine.risk.kill_switch import KillSwitchState

if TYPE_CHECKING:
    # Types only: the OMS imports engine.execution.brackets, so a runtime import would cycle.
    from engine.oms import OrderManager
    from engine.risk.engine import RiskEngine

ID_PREFIX = "algo-"
SOURCE_PREFIX = "algo:"
_THREE = Decimal(3)
_PRICE = Decimal("0.0001")


@dataclass(slots=True, frozen=True)
class ParentResult:
    """The outcome of starting or controlling an algo: one sentence, and the parent if any."""

    accepted: bool
    parent: Parent | None
    message: str


class ExecutionService:
    """Every parent order of this journal, and the running algos of the non-terminal ones."""

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        oms: OrderManager,
        risk: RiskEngine,
        market: MarketView,
        journal: Journal,
        config: ExecutionConfig | None = None,
        *,
        curve: VolumeCurve | None = None,
    ) -> None:
        self.clock = clock
        self.config = config or ExecutionConfig()
        self._bus = bus
        self._oms = oms
        self._risk = risk
        self._market = market
        self._journal = journal
        self._curve = curve or UShapeCurve()
        self._parents: dict[str, Parent] = {}
        self._algos: dict[str, Algo] = {}  # non-terminal parents only
        self._by_symbol: dict[str, list[Algo]] = {}
        self._child_fills: dict[str, tuple[Decimal, Decimal]] = {}  # child id: (qty, notional)
        self._cancel_requested: set[str] = set()
        self._printing: set[str] = set()  # symbols with trade prints: their bars are not volume
        self._seq = 0
        self.version = 0  # grows with every change to any parent, for consoles

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, then load the journal's parents and resume or cancel the unfinished ones.

        Call it after ``OrderManager.start()``: the children's fills are rebuilt from the
        OMS's reconciled book.
        """
        bus = self._bus
        bus.subscribe(Topic.ORDER, self.on_order)
        bus.subscribe(Topic.TRADE, self.on_trade)
        bus.subscribe(Topic.BAR, self.on_bar)
        bus.subscribe(Topic.KILL_SWITCH, self.on_kill_switch)
        bus.subscribe(Topic.FILL, self.on_fill)
        for record in self._journal.load_parents():
            try:
                parent = parent_from_json(record)
            except (ValueError, KeyError, TypeError, ArithmeticError) as error:
                logger.error("a journaled algo parent is damaged and was skipped: {}", error)
                continue
            # Fills are counted again from the OMS's reconciled book below.
            parent.filled_qty = parent.notional = parent.fees = ZERO
            self._parents[parent.id] = parent
            tail = parent.id.removeprefix(ID_PREFIX)
            if tail.isdigit():
                self._seq = max(self._seq, int(tail))
        for order in self._oms.orders():
            parent = self._parents.get(order.parent_id or "")
            if parent is not None:
                # The OMS journal is the truth about children (one may have been sent after
                # the parent was last saved).
                if order.id not in parent.children:
                    parent.children.append(order.id)
                self._count_fills(parent, order)
        for fill in self._oms.fills():
            self.on_fill(fill)
        for parent in list(self._parents.values()):
            if not parent.state.is_terminal:
                self._restore(parent)

    def _restore(self, parent: Parent) -> None:
        if self._risk.kill_switch.engaged:
            self._cancel(parent, "canceled at restart: the kill switch is engaged")
            return
        if self.config.on_restart is RestartPolicy.CANCEL:
            self._cancel(parent, "canceled at restart (execution.on_restart = cancel)")
            return
        algo = self._run(parent)
        for child_id in parent.children:
            child = self._oms.order(child_id)
            if child is not None and child.is_open:
                algo.working = child
        logger.info("algo {} resumed after the restart: {}", parent.id, parent.describe())
        if parent.state is ParentState.WORKING:
            if self._market.quote(parent.symbol) is None:
                # A child sent before the feed has quoted the symbol would be refused.
                self._start_on_quote(algo)
            else:
                algo.start()
                algo.work()
        self._save(parent, "resumed after a restart")

    def _start_on_quote(self, algo: Algo) -> None:
        symbol = algo.parent.symbol

        def first_quote(_quote: Quote) -> None:
            self._bus.unsubscribe(Topic.QUOTE, first_quote, symbol)
            if algo.parent.state is ParentState.WORKING and self._algos.get(algo.parent.id) is algo:
                algo.start()
                algo.work()

        self._bus.subscribe(Topic.QUOTE, first_quote, symbol)

    def stop(self, *, cancel: bool) -> None:
        """Stop every algo's timers; with ``cancel``, end every unfinished parent as canceled.

        The children are left to the OMS: the engine stops it with ``cancel_open`` in the
        same step, and a second cancel of each child would only be refused.
        """
        for parent_id in list(self._algos):
            parent = self._parents[parent_id]
            if cancel:
                self._finish(parent, ParentState.CANCELED, "canceled when the engine stopped")
            else:
                self._algos[parent_id].stop()
                self._save(parent, "")  # its market volume so far, for participation

    # -- commands ----------------------------------------------------------------------------

    def submit(self, request: OrderRequest, spec: AlgoSpec) -> ParentResult:
        """Start an algo working ``request`` (side, qty, symbol, optional limit and tif)."""
        problem = self._refusal(request, spec)
        if problem:
            return ParentResult(False, None, problem)
        now = self.clock.now_ns()
        end_ns = self._end_ns(spec, now)
        if isinstance(end_ns, str):
            return ParentResult(False, None, end_ns)
        self._seq += 1
        parent = Parent(
            id=f"{ID_PREFIX}{self._seq}",
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            spec=spec,
            created_ns=now,
            start_ns=now,
            end_ns=end_ns,
            limit_price=request.limit_price,
            tif=request.tif,
            updated_ns=now,
            arrival_price=self._arrival(request.symbol),
            owner=request.source,
        )
        parent.last_price = parent.arrival_price
        self._parents[parent.id] = parent
        self._save(parent, "started")
        algo = self._run(parent)
        algo.start()
        return ParentResult(True, parent, f"{parent.id} started: {parent.describe()}")

    def _refusal(self, request: OrderRequest, spec: AlgoSpec) -> str:
        if not self._oms.ready:
            return "the order manager is not ready; no algo was started"
        if self._risk.kill_switch.engaged:
            return "the kill switch is engaged; no algo was started"
        if request.type not in (OrderType.MARKET, OrderType.LIMIT):
            return "an algo works a market or limit order, not a stop or trailing stop"
        if request.qty <= ZERO:
            return "the algo's quantity must be more than zero"
        if isinstance(spec, IcebergSpec) and request.limit_price is None:
            return "an iceberg needs a limit price (lmt PRICE)"
        return ""

    def _end_ns(self, spec: AlgoSpec, now: int) -> int | str | None:
        """When a TWAP or VWAP must be done, or a sentence saying why it cannot run."""
        if isinstance(spec, TwapSpec) or (isinstance(spec, VwapSpec) and spec.duration_s):
            duration = spec.duration_s or 0
            if duration <= 0:
                return "the algo's duration must be more than zero"
            return now + duration * NS_PER_SECOND
        if isinstance(spec, VwapSpec) and spec.until is not None:
            today = ns_to_datetime(now, NEW_YORK).date()
            end = datetime_to_ns(datetime.combine(today, spec.until, tzinfo=NEW_YORK))
            if end <= now:
                return f"{spec.until.strftime('%H:%M')} has already passed today"
            return end
        if isinstance(spec, VwapSpec):
            return "a VWAP needs a duration or an end time"
        return None

    def _arrival(self, symbol: str) -> Decimal | None:
        quote = self._market.quote(symbol)
        if quote is not None and quote.is_two_sided:
            return quote.mid
        return self._market.last_price(symbol)

    def _run(self, parent: Parent) -> Algo:
        spec, config = parent.spec, self.config
        algo: Algo
        if isinstance(spec, TwapSpec):
            algo = Twap(parent, self, config)
        elif isinstance(spec, VwapSpec):
            algo = Vwap(parent, self, config, self._curve)
        elif isinstance(spec, PovSpec):
            algo = Pov(parent, self, config)
        else:
            algo = Iceberg(parent, self, config)
        self._algos[parent.id] = algo
        self._by_symbol.setdefault(parent.symbol, []).append(algo)
        return algo

    def resolve(self, ref: str) -> Parent | None:
        """The parent with id ``ref`` ("algo-3"), or with that number ("3", "#3")."""
        ref = ref.strip()
        parent = self._parents.get(ref) or self._parents.get(ref.lower())
        if parent is None:
            digits = ref.removeprefix("#")
            if digits.isdigit():
                parent = self._parents.get(f"{ID_PREFIX}{int(digits)}")
        return parent

    def pause(self, ref: str) -> ParentResult:
        """Stop sending children and cancel the working one; ``resume`` carries on."""
        parent = self.resolve(ref)
        if parent is None:
            return ParentResult(False, None, f"no algo matches '{ref}'")
        if parent.state is not ParentState.WORKING:
            return ParentResult(False, parent, f"{parent.id} is {parent.state.value}, not working")
        self._pause(parent, "paused by the trader")
        return ParentResult(True, parent, f"{parent.id} paused")

    def resume(self, ref: str) -> ParentResult:
        """Work a paused parent again, catching up with its schedule."""
        parent = self.resolve(ref)
        if parent is None:
            return ParentResult(False, None, f"no algo matches '{ref}'")
        if parent.state is not ParentState.PAUSED:
            return ParentResult(False, parent, f"{parent.id} is {parent.state.value}, not paused")
        if self._risk.kill_switch.engaged:
            return ParentResult(False, parent, "the kill switch is engaged; nothing was resumed")
        parent.state = ParentState.WORKING
        parent.reason = ""
        self._save(parent, "resumed")
        algo = self._algos[parent.id]
        algo.start()
        algo.work()
        return ParentResult(True, parent, f"{parent.id} resumed")

    def cancel(self, ref: str) -> ParentResult:
        """Cancel the parent and every open child of it."""
        parent = self.resolve(ref)
        if parent is None:
            return ParentResult(False, None, f"no algo matches '{ref}'")
        if parent.state.is_terminal:
            return ParentResult(False, parent, f"{parent.id} is already {parent.state.value}")
        self._cancel(parent, "canceled by the trader")
        return ParentResult(True, parent, f"{parent.id} canceled")

    # -- queries -----------------------------------------------------------------------------

    def parents(self) -> list[Parent]:
        """Every parent of this journal, oldest first (live records: read, never change)."""
        return list(self._parents.values())

    def parent(self, parent_id: str) -> Parent | None:
        return self._parents.get(parent_id)

    def children(self, parent_id: str) -> list[Order]:
        """The parent's children as the OMS holds them, oldest first."""
        parent = self._parents.get(parent_id)
        if parent is None:
            return []
        found = (self._oms.order(child_id) for child_id in parent.children)
        return [order for order in found if order is not None]

    def quality(self, parent_id: str) -> ExecutionQuality | None:
        parent = self._parents.get(parent_id)
        return None if parent is None else measure(parent)

    # -- AlgoHost ----------------------------------------------------------------------------

    def quote(self, symbol: str) -> Quote | None:
        return self._market.quote(symbol)

    def send_child(self, algo: Algo, qty: Decimal, limit_price: Decimal | None) -> None:
        parent = algo.parent
        request = OrderRequest(
            symbol=parent.symbol,
            side=parent.side,
            qty=qty,
            type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            # A market child is a day order whatever the parent's tif: it never rests.
            tif=parent.tif if limit_price is not None else TimeInForce.DAY,
            limit_price=limit_price,
            source=f"{SOURCE_PREFIX}{parent.id}",
            parent_id=parent.id,
        )
        result = self._oms.submit(request, confirmed=True)
        if not result.accepted or result.order is None:
            if parent.state is ParentState.WORKING:  # a broker refusal has paused it already
                self._pause(parent, f"child refused: {result.message}")
            return
        if result.order.is_open:
            algo.working = result.order

    def cancel_child(self, order_id: str) -> None:
        self._cancel_requested.add(order_id)
        result = self._oms.cancel(order_id)
        if not result.accepted:
            logger.warning("algo child {} not cancelled: {}", order_id, result.message)

    # -- bus ---------------------------------------------------------------------------------

    def on_order(self, order: Order) -> None:
        """A child changed: count its fills, and let its algo go on when it has ended."""
        parent_id = order.parent_id
        if parent_id is None:
            return
        parent = self._parents.get(parent_id)
        if parent is None:
            return
        if order.id not in parent.children:
            parent.children.append(order.id)
        self._count_fills(parent, order)
        self.version += 1
        if order.is_open:
            return
        requested = order.id in self._cancel_requested
        self._cancel_requested.discard(order.id)
        algo = self._algos.get(parent_id)
        if algo is None:
            return
        if algo.working is not None and algo.working.id == order.id:
            algo.working = None
            algo.cancelling = False
        if parent.filled_qty >= parent.qty:
            self._finish(parent, ParentState.COMPLETED, "")
            return
        problem = _child_problem(order, requested)
        if problem and parent.state is ParentState.WORKING:
            if parent.end_ns is not None and self.clock.now_ns() >= parent.end_ns:
                # The schedule is over: nothing is left for a resume to do.
                reason = f"{problem} after the schedule ended"
                self._finish(parent, ParentState.FAILED, reason)
                self._alert(Severity.ERROR, f"{parent.id} failed: {reason}")
            else:
                self._pause(parent, problem)
            return
        if algo.working is None:
            algo.child_ended()

    def _count_fills(self, parent: Parent, order: Order) -> None:
        before_qty, before_notional = self._child_fills.get(order.id, (ZERO, ZERO))
        qty = order.filled_qty
        if qty == before_qty:
            return
        notional = qty * order.filled_avg_price if order.filled_avg_price is not None else ZERO
        self._child_fills[order.id] = (qty, notional)
        parent.filled_qty += qty - before_qty
        parent.notional += notional - before_notional
        if order.filled_avg_price is not None:
            parent.last_price = order.filled_avg_price

    def on_fill(self, fill: Fill) -> None:
        """A child's fee goes on its parent (the quantity and price come with the order)."""
        if not fill.fee:
            return
        order = self._oms.order(fill.order_id)
        parent = self._parents.get(order.parent_id or "") if order is not None else None
        if parent is not None:
            parent.fees += fill.fee

    def on_trade(self, trade: Trade) -> None:
        symbol = trade.symbol
        self._printing.add(symbol)
        algos = self._by_symbol.get(symbol)
        if algos:
            self._traded(algos, trade.ts_ns, trade.size, trade.price)

    def on_bar(self, bar: Bar) -> None:
        """Minute bars carry the volume of feeds without trade prints (Lean minute replay)."""
        symbol = bar.symbol
        if symbol in self._printing:
            return
        algos = self._by_symbol.get(symbol)
        if algos:
            typical = (bar.high + bar.low + bar.close) / _THREE
            self._traded(algos, bar.ts_ns, bar.volume, typical)

    def _traded(self, algos: Iterable[Algo], ts_ns: int, size: int, price: Decimal) -> None:
        for algo in algos:
            parent = algo.parent
            if ts_ns < parent.start_ns:
                continue
            parent.market_volume += size
            parent.market_notional += price * size
            parent.last_price = price
        self.version += 1
        for algo in tuple(algos):
            if algo.follows_volume:
                algo.work()

    def on_kill_switch(self, state: KillSwitchState) -> None:
        """The kill switch cancels every algo; the OMS cancels their open children with the rest."""
        if not state.engaged:
            return
        for parent_id in list(self._algos):
            self._finish(
                self._parents[parent_id], ParentState.CANCELED, f"kill switch: {state.reason}"
            )

    # -- state changes -----------------------------------------------------------------------

    def _pause(self, parent: Parent, reason: str) -> None:
        parent.state = ParentState.PAUSED
        parent.reason = reason
        algo = self._algos.get(parent.id)
        if algo is not None:
            algo.stop()
            if algo.working is not None and not algo.cancelling:
                algo.cancelling = True
                self.cancel_child(algo.working.id)
        self._save(parent, reason)
        severity = Severity.INFO if reason == "paused by the trader" else Severity.WARNING
        self._alert(severity, f"{parent.id} paused: {reason}")

    def _cancel(self, parent: Parent, reason: str) -> None:
        for child in self.children(parent.id):
            if child.is_open and child.id not in self._cancel_requested:
                self.cancel_child(child.id)
        self._finish(parent, ParentState.CANCELED, reason)

    def _finish(self, parent: Parent, state: ParentState, reason: str) -> None:
        parent.state = state
        parent.reason = reason
        algo = self._algos.pop(parent.id, None)
        if algo is not None:
            algo.stop()
            algos = self._by_symbol[parent.symbol]
            algos.remove(algo)
            if not algos:
                del self._by_symbol[parent.symbol]
        self._save(parent, reason or state.value)
        logger.info("algo {} {}: {}", parent.id, state.value, reason or parent.describe())
        if state is ParentState.COMPLETED:
            self._alert(Severity.INFO, f"{parent.id} completed: {summary(parent)}")

    def _save(self, parent: Parent, what: str) -> None:
        """Journal the parent; a state change (``what`` given) also logs an event with quality."""
        now = self.clock.now_ns()
        parent.updated_ns = now
        self.version += 1
        try:
            with self._journal.transaction():
                self._journal.save_parent(parent.id, parent.state.value, now, parent.to_json())
                if what:
                    payload = {"state": parent.state, "what": what, "quality": measure(parent)}
                    self._journal.add_event(now, EventKind.ALGO, parent.id, payload)
        except JournalError as error:
            logger.error("{} (algo {})", error, parent.id)
            self._alert(Severity.ERROR, f"{error} (algo {parent.id})")

    def _alert(self, severity: Severity, message: str) -> None:
        self._bus.publish(
            Topic.ALERT, Alert(self.clock.now_ns(), severity, message, source="execution")
        )


def summary(parent: Parent) -> str:
    """One line of a parent's result: "5000 AAPL at 187.5210, 3.10 bps vs arrival, ..."."""
    quality = measure(parent)
    avg = parent.avg_price
    text = f"{parent.filled_qty} {parent.symbol}"
    if avg is not None:
        text += f" at {avg.quantize(_PRICE)}"
    figures = (
        (quality.arrival_slippage_bps, " bps vs arrival"),
        (quality.vwap_slippage_bps, " bps vs interval VWAP"),
        (quality.participation_pct, "% participation"),
    )
    text += "".join(f", {value}{unit}" for value, unit in figures if value is not None)
    if quality.shortfall is not None:
        text += f", shortfall ${quality.shortfall}"
    return text


def _child_problem(order: Order, requested: bool) -> str:
    """Why a child's end should pause its parent, or "" when the algo just goes on.

    A rejected child, an expired one, and a resting limit child cancelled by someone
    other than the algo all need the trader; a market child's unfilled rest being
    cancelled is how market orders end at the venue.
    """
    if order.status is OrderStatus.REJECTED:
        return f"child {order.id} rejected: {order.reason or 'by the broker'}"
    if order.status is OrderStatus.EXPIRED:
        return f"child {order.id} expired"
    if order.status is OrderStatus.CANCELED and not requested and order.type is OrderType.LIMIT:
        return f"child {order.id} was canceled outside the algo"
    return ""
