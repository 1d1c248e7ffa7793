"""The order manager: the order state machine, positions and P&L, journaled before the broker.

Every order, from the keyboard, a bot or an algo, enters through ``submit`` (or
``replace``/``flatten``, which build a request and call the same path): risk
checks it, the journal commits it, and only then does the broker hear of it.
Broker answers come back as ``OrderUpdate`` messages on the bus.

Two truths, and which one wins:

* **Status** follows ``TRANSITIONS``, a table of Alpaca's order lifecycle. An
  update whose status is not a legal successor is logged, journaled as an
  ``illegal_transition`` event and changes nothing on the order.
* **Money** follows fills. A fill whose execution id was already applied is
  ignored (brokers re-send after reconnects). A new fill is always applied to
  the portfolio, even when it rides on an illegal status update (a late fill
  on an order we already hold as cancelled): the shares moved whatever the
  status says. That anomaly is logged and journaled as ``fill_anomaly``.

On ``start()`` the book is rebuilt from the journal and reconciled with the
broker; no order is accepted before that has finished.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from loguru import logger

from engine.broker.base import Broker
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, Clock, ns_to_datetime
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
    TimeInForce,
    TradeEvent,
)
from engine.core.prices import ZERO, contract_multiplier
from engine.execution import brackets
from engine.journal import EventKind, Journal, JournalError, to_json
from engine.latency import LatencyBook, OrderLatency
from engine.portfolio import Portfolio
from engine.risk.engine import RiskEngine
from engine.risk.types import RiskDecision

# Each status and the statuses an update may move it to, in Alpaca's words (wire values).
_LIFECYCLE = {
    "pending_new": "accepted new partially_filled filled rejected canceled expired"
    " pending_cancel pending_replace",
    "accepted": "pending_new new partially_filled filled rejected canceled expired"
    " pending_cancel pending_replace",
    "new": "partially_filled filled canceled expired done_for_day pending_cancel pending_replace"
    " replaced stopped suspended calculated rejected",
    "partially_filled": "partially_filled filled canceled expired done_for_day pending_cancel"
    " pending_replace replaced stopped calculated",
    # order_cancel_rejected returns the order to new or partially_filled.
    "pending_cancel": "canceled partially_filled filled new expired",
    # order_replace_rejected returns it to new or partially_filled; Alpaca refuses
    # cancel requests while a replace is pending, so no pending_cancel.
    "pending_replace": "replaced new partially_filled filled canceled expired",
    # A GTC order wakes up next session, or ends.
    "done_for_day": "new partially_filled filled canceled expired",
    # A price is guaranteed; the execution follows.
    "stopped": "filled partially_filled canceled",
    # Not eligible to trade until it is resumed, or it ends.
    "suspended": "new canceled expired pending_cancel",
    # Done for the day, settlement calculations pending.
    "calculated": "filled done_for_day canceled expired",
    "filled": "",
    "canceled": "",
    "replaced": "",
    "rejected": "",
    "expired": "",
}

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        OrderStatus(current): frozenset(map(OrderStatus, successors.split()))
        | (frozenset() if OrderStatus(current).is_terminal else {OrderStatus(current)})
        for current, successors in _LIFECYCLE.items()
    }
)
"""Legal order status transitions: ``TRANSITIONS[current]`` is every status an update may set.

It follows Alpaca's lifecycle (alpaca-protocol.md §2.4, §3.3). Any non-terminal
status may also repeat: Alpaca sends ``pending_new`` for an order we already
hold as pending_new, ``pending_replace`` after we marked it so ourselves, and
restates orders after a reconnect. Terminal statuses (filled, canceled,
replaced, rejected, expired) go nowhere.
"""


def is_legal_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """True when an order in ``current`` may move to ``new``."""
    return new in TRANSITIONS[current]


NEVER_REACHED_BROKER = "never reached the broker before the restart"
REJECTION_HISTORY = 200

_KV_ACCOUNT = "account"
_KV_SEQUENCE = "order_seq"
_COMMAND_REFUSED = frozenset({TradeEvent.ORDER_CANCEL_REJECTED, TradeEvent.ORDER_REPLACE_REJECTED})
_KV_KILL = "kill_switch"
_KV_SESSION = "session"


@dataclass(slots=True, frozen=True)
class SubmitResult:
    """The outcome of ``submit``/``replace``/``flatten``.

    ``decision`` is risk's verdict; it is None when the request never reached
    risk (an idempotent resubmission, an unknown or closed order, an engine
    still starting). ``message`` is always one sentence for the trader.
    """

    accepted: bool
    order: Order | None
    decision: RiskDecision | None
    message: str


@dataclass(slots=True, frozen=True)
class CommandResult:
    """The outcome of ``cancel``/``cancel_all``: sent or not, and one sentence saying so."""

    accepted: bool
    message: str


def _money(amount: Decimal) -> str:
    return f"-${-amount:,.2f}" if amount < ZERO else f"${amount:,.2f}"


def _describe(order: Order) -> str:
    text = f"{order.side.value} {order.qty} {order.symbol} {order.type.value}"
    if order.limit_price is not None:
        text += f" {order.limit_price}"
    if order.stop_price is not None:
        text += f" stop {order.stop_price}"
    return text


class OrderManager:
    """Owns every order and the book: the only path from a request to a broker.

    It implements ``RiskContext`` (``position_qty``, ``open_orders``,
    ``buying_power``, ``gross_exposure``, ``day_pnl``, ``instrument``) and passes
    itself to ``risk.check``. The records it returns and publishes (orders,
    positions) are its own live objects: read them, never change them.
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        broker: Broker,
        risk: RiskEngine,
        journal: Journal,
        market: MarketView,
        *,
        id_prefix: str = "td",
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._broker = broker
        self._risk = risk
        self._journal = journal
        self._market = market
        self._id_prefix = f"{id_prefix}-"
        # The clock's start time tags this session's ids (deterministic under SimClock);
        # the journaled sequence after it keeps ids unique across restarts.
        self.session_tag = ns_to_datetime(clock.now_ns(), NEW_YORK).strftime("%y%m%d%H%M%S")
        self._portfolio = Portfolio()
        self._orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}
        self._by_seq: dict[int, str] = {}
        self._fills: list[Fill] = []
        self._fill_ids: set[str] = set()
        self._rejections: deque[RiskDecision] = deque(maxlen=REJECTION_HISTORY)
        self._seq = 0
        self._multiplier = Decimal(1)
        self._currency = "USD"
        self._account_id = ""
        self._session_date = ""
        self._replacing: str | None = None
        self._flatten_pending: dict[str, str] = {}
        self._ready = False
        self.latency = LatencyBook()  # each order's path, stage by stage, for the health API

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once ``start()`` has rebuilt and reconciled the book (and until ``stop()``)."""
        return self._ready

    async def start(self) -> None:
        """Rebuild the book from the journal, then reconcile it with the broker.

        A broker that cannot answer makes this raise; the manager then stays
        not ready and refuses orders, since trading on an unreconciled book is
        how positions get doubled.
        """
        await self._load_account()
        self._rebuild()
        self._bus.subscribe(Topic.ORDER_UPDATE, self.on_order_update)
        self._bus.subscribe(Topic.SESSION, self.on_session)
        await self._reconcile()
        self._open_session(ns_to_datetime(self._clock.now_ns(), NEW_YORK).date().isoformat())
        self._ready = True
        for position in self.positions():
            self._bus.publish(Topic.POSITION, position)
        self._bus.publish(Topic.ACCOUNT, self.account())
        logger.info(
            "order manager ready: {} orders ({} open), {} fills, cash {}",
            len(self._orders),
            len(self._open),
            len(self._fills),
            _money(self._portfolio.cash),
        )
        self.check_daily_loss()

    async def reconcile(self) -> None:
        """Agree with the broker again (after a reconnect): orders are refused until it is done.

        The broker's view wins: open orders take its status, fills the journal missed are
        applied once (by execution id), and every difference is logged and journaled.
        """
        self._ready = False
        self._alert(
            Severity.WARNING, "reconciling with the broker; new orders wait until it is done"
        )
        try:
            await self._reconcile()
        except BrokerError as error:
            # Stay blocked: trading on a book that may disagree with the broker doubles positions.
            self._alert(Severity.ERROR, f"reconciliation failed ({error}); orders stay blocked")
            raise
        self._ready = True
        self._alert(Severity.INFO, "reconciled with the broker; orders are accepted again")

    @property
    def reconciling(self) -> bool:
        """True while the book may disagree with the broker (start-up, reconnects)."""
        return not self._ready

    async def stop(self, cancel_open: bool) -> None:
        """Refuse new orders, cancel the open ones if asked, and flush the journal.

        Broker updates are still applied afterwards, so the answers to these
        cancels are journaled until the journal is closed.
        """
        self._ready = False
        if cancel_open:
            self.cancel_all()
        self._journal.flush()

    async def _load_account(self) -> None:
        stored = self._journal.get_kv(_KV_ACCOUNT)
        account: Account | None
        if stored is None:
            # A new journal: the broker's account is the only source of the starting cash.
            account = await self._broker.account()
            starting_cash = account.cash
        else:
            data = json.loads(stored)
            starting_cash = Decimal(data["starting_cash"])
            self._multiplier = Decimal(data["multiplier"])
            self._currency = data["currency"]
            self._account_id = data["account_id"]
            try:
                account = await self._broker.account()
            except BrokerError as error:
                logger.warning("broker account unavailable ({}); using the journaled one", error)
                account = None
        if account is not None:
            self._multiplier = account.multiplier
            self._currency = account.currency
            self._account_id = account.account_id
        self._journal.set_kv(
            _KV_ACCOUNT,
            to_json(
                {
                    "starting_cash": starting_cash,
                    "multiplier": self._multiplier,
                    "currency": self._currency,
                    "account_id": self._account_id,
                }
            ),
        )
        self._portfolio = Portfolio(starting_cash)

    def _rebuild(self) -> None:
        journal = self._journal
        self._orders.clear()
        self._open.clear()
        self._by_seq.clear()
        for order in journal.load_orders():
            self._track(order)
        self._fills = journal.load_fills()
        self._fill_ids = {fill.id for fill in self._fills}
        self._portfolio.replay(self._fills)
        # The sequence is not written per order (that would cost a statement on the hot path):
        # the journaled ids carry it. The kv value is kept for journals written before that.
        self._seq = max(int(journal.get_kv(_KV_SEQUENCE, "0") or 0), max(self._by_seq, default=0))
        stored_kill = journal.get_kv(_KV_KILL)
        if stored_kill is not None:
            state = json.loads(stored_kill)
            self._risk.kill_switch.restore(state["engaged"], state["reason"], state["since_ns"])
            if state["engaged"]:
                logger.warning(
                    "kill switch still engaged from before the restart: {}", state["reason"]
                )
        stored_session = journal.get_kv(_KV_SESSION)
        if stored_session is not None:
            session = json.loads(stored_session)
            self._session_date = session["date"]
            self._portfolio.start_session(Decimal(session["equity"]))

    async def _reconcile(self) -> None:
        """Adopt the broker's view of every order the journal holds open, and any missed fills."""
        broker = self._broker
        since = [order.created_ns for order in self._open.values()]
        if self._fills:
            since.append(self._fills[-1].ts_ns)
        for order in list(self._open.values()):
            remote = await broker.get_order(order.id)
            if not order.is_open:
                continue  # an update arrived while we waited
            if remote is None:
                logger.warning("order {} {}; marking it rejected", order.id, NEVER_REACHED_BROKER)
                self._force(order, OrderStatus.REJECTED, reason=NEVER_REACHED_BROKER)
            else:
                self._adopt(order, remote)
        if since:
            for fill in await broker.fills_since(min(since)):
                if fill.id in self._fill_ids:
                    continue
                if fill.order_id not in self._orders:
                    logger.warning(
                        "fill {} is for order {}, which this journal never placed",
                        fill.id,
                        fill.order_id,
                    )
                    continue
                logger.warning(
                    "fill {} for {} was missed before the restart; applying it",
                    fill.id,
                    fill.order_id,
                )
                with self._journaling("a reconciled fill"):
                    self._journal.add_fill(fill)
                    self._journal.add_event(
                        self._clock.now_ns(), EventKind.RECONCILE, fill.order_id, fill
                    )
                position = self._apply_fill(fill)
                self._bus.publish(Topic.FILL, fill)
                self._bus.publish(Topic.POSITION, position)
        self._compare_positions(await broker.positions())

    def _compare_positions(self, remote: Sequence[Position]) -> None:
        theirs = {p.symbol: p.qty for p in remote}
        ours = {p.symbol: p.qty for p in self._portfolio.positions()}
        for symbol in sorted(theirs.keys() | ours.keys()):
            mine, broker_qty = ours.get(symbol, ZERO), theirs.get(symbol, ZERO)
            if mine == broker_qty:
                continue
            message = (
                f"{symbol}: the journal's fills make the position {mine} but the broker holds "
                f"{broker_qty}; fills were missed outside tickdeck"
            )
            logger.warning(message)
            self._alert(Severity.WARNING, message)

    def _adopt(self, order: Order, remote: Order) -> None:
        if (
            remote.status is order.status
            and remote.filled_qty == order.filled_qty
            and remote.broker_order_id == order.broker_order_id
        ):
            return
        logger.info(
            "order {}: adopting the broker's view ({} -> {})", order.id, order.status, remote.status
        )
        order.status = remote.status
        order.filled_qty = remote.filled_qty
        order.filled_avg_price = remote.filled_avg_price
        order.broker_order_id = remote.broker_order_id or order.broker_order_id
        order.replaced_by = remote.replaced_by or order.replaced_by
        order.reason = remote.reason or order.reason
        order.updated_ns = max(order.updated_ns, remote.updated_ns)
        self._after_status_change(order)
        with self._journaling("a reconciled order"):
            self._journal.save_order(order)
            self._journal.add_event(self._clock.now_ns(), EventKind.RECONCILE, order.id, remote)
        self._bus.publish(Topic.ORDER, order)

    def _force(self, order: Order, status: OrderStatus, *, reason: str) -> None:
        """Set a status the OMS itself decided (no broker update), journaled."""
        order.status = status
        order.reason = reason
        order.updated_ns = self._clock.now_ns()
        self._after_status_change(order)
        with self._journaling("an order status"):
            self._journal.save_order(order)
            self._journal.add_event(
                order.updated_ns,
                EventKind.RECONCILE,
                order.id,
                {"status": status, "reason": reason},
            )
        self._bus.publish(Topic.ORDER, order)

    # -- sessions --------------------------------------------------------------------------

    def on_session(self, event: SessionEvent) -> None:
        """A regular session opened: day P&L starts again from the equity now."""
        if event.phase is SessionPhase.OPEN:
            self._open_session(event.session_date)

    def _open_session(self, session_date: str) -> None:
        if session_date == self._session_date:
            return
        self._mark_positions()
        self._portfolio.start_session()
        self._session_date = session_date
        equity = self._portfolio.session_start_equity
        with self._journaling("the session start"):
            self._journal.set_kv(_KV_SESSION, to_json({"date": session_date, "equity": equity}))
            self._journal.add_event(
                self._clock.now_ns(),
                EventKind.SESSION,
                None,
                {"date": session_date, "equity": equity},
            )
        logger.info("session {}: day P&L measured from equity {}", session_date, _money(equity))

    # -- commands --------------------------------------------------------------------------

    def submit(self, request: OrderRequest, *, confirmed: bool = False) -> SubmitResult:
        """Check ``request`` with risk, journal it, then send it to the broker.

        A ``client_order_id`` already known returns that order and sends nothing.
        """
        if not self._ready:
            return SubmitResult(
                False, None, None, "the order manager is not ready; no order was sent"
            )
        client_id = request.client_order_id
        if client_id is not None:
            existing = self._orders.get(client_id)
            if existing is not None:
                return SubmitResult(
                    True, existing, None, f"order {client_id} already exists; not sent again"
                )
        decided = self._clock.now_ns()
        decision = self._risk.check(request, self, confirmed=confirmed)
        if not decision.ok:
            return self._rejected(decision)
        now = self._clock.now_ns()
        order = Order.from_request(request, client_id or self._next_id(), now)
        try:
            with self._journal.transaction():
                self._journal.save_order(order)
                # The orders row holds the full record; the event says what was asked.
                self._journal.add_event(now, EventKind.SUBMIT, order.id, _describe(order))
        except JournalError as error:
            return self._not_journaled(error, "order", decision)
        self._track(order)
        self._risk.record_submitted(request)
        self._bus.publish(Topic.ORDER, order)
        quote = self._market.quote(order.symbol)
        event = min(quote.ts_ns, decided) if quote is not None else decided
        # Stamped before the hand-off: a venue may answer (even fill) inside submit().
        self.latency.submitted(OrderLatency(order.id, event, decided, now, self._clock.now_ns()))
        try:
            self._broker.submit(order)
        except BrokerError as error:
            self._broker_refused(order, str(error))
            return SubmitResult(False, order, decision, f"the broker refused {order.id}: {error}")
        return SubmitResult(True, order, decision, f"{order.id} sent: {_describe(order)}")

    def _not_journaled(
        self, error: JournalError, what: str, decision: RiskDecision
    ) -> SubmitResult:
        """A request (``what``: order, replace) that was not sent: the journal refused it."""
        logger.error("{}; {} not sent", error, what)
        message = f"{error}; the {what} was not sent"
        self._alert(Severity.ERROR, message)
        return SubmitResult(False, None, decision, message)

    def _rejected(self, decision: RiskDecision) -> SubmitResult:
        self._rejections.append(decision)
        with self._journaling("a rejection"):
            self._journal.add_rejection(decision.ts_ns, decision.request, decision.reason)
            self._journal.add_event(decision.ts_ns, EventKind.REJECTION, None, decision)
        self._bus.publish(Topic.RISK_REJECT, decision)
        if decision.needs_confirmation:
            message = f"needs confirmation: {decision.reason}"
        else:
            message = f"rejected by risk: {'; '.join(v.message for v in decision.hard)}"
        return SubmitResult(False, None, decision, message)

    def _broker_refused(self, order: Order, reason: str) -> None:
        logger.warning("broker refused {}: {}", order.id, reason)
        order.status = OrderStatus.REJECTED
        order.reason = reason
        order.updated_ns = self._clock.now_ns()
        self._after_status_change(order)
        with self._journaling("a broker refusal"):
            self._journal.save_order(order)
            self._journal.add_event(order.updated_ns, EventKind.BROKER_ERROR, order.id, reason)
        self._bus.publish(Topic.ORDER, order)

    def _next_id(self) -> str:
        prefix = f"{self._id_prefix}{self.session_tag}-"
        while True:
            self._seq += 1
            order_id = f"{prefix}{self._seq}"
            if order_id not in self._orders:
                return order_id

    def cancel(self, order_ref: str) -> CommandResult:
        """Ask the broker to cancel one open order (by id or ``#seq``)."""
        order = self.resolve(order_ref)
        if order is None:
            return CommandResult(False, f"no order matches '{order_ref}'")
        if not order.is_open:
            return CommandResult(False, f"{order.id} is already {order.status.value}")
        with self._journaling("a cancel request"):
            self._journal.add_event(self._clock.now_ns(), EventKind.CANCEL_REQUEST, order.id)
        try:
            self._broker.cancel(order.id)
        except BrokerError as error:
            logger.warning("broker refused to cancel {}: {}", order.id, error)
            return CommandResult(False, f"the broker refused to cancel {order.id}: {error}")
        return CommandResult(True, f"cancel requested for {order.id}")

    def cancel_all(self, symbol: str | None = None) -> CommandResult:
        """Ask to cancel every open order (in ``symbol``, if given)."""
        targets = [o for o in self._open.values() if symbol is None or o.symbol == symbol]
        if not targets:
            return CommandResult(True, "no open orders to cancel")
        failures = [
            result.message
            for result in map(self.cancel, [o.id for o in targets])
            if not result.accepted
        ]
        if failures:
            return CommandResult(False, "; ".join(failures))
        return CommandResult(True, f"cancel requested for {len(targets)} open order(s)")

    def replace(
        self,
        order_ref: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trail_price: Decimal | None = None,
        trail_percent: Decimal | None = None,
        confirmed: bool = False,
    ) -> SubmitResult:
        """Replace an open order's quantity or prices with a new order, through risk.

        Unchanged fields carry over; ``qty`` defaults to the old order's unfilled
        quantity. The old order is marked pending_replace at once; the broker's
        ``replaced`` update closes it and the new order moves on its own updates.
        """
        if not self._ready:
            return SubmitResult(
                False, None, None, "the order manager is not ready; nothing was replaced"
            )
        old = self.resolve(order_ref)
        if old is None:
            return SubmitResult(False, None, None, f"no order matches '{order_ref}'")
        if old.status is OrderStatus.PENDING_REPLACE or not is_legal_transition(
            old.status, OrderStatus.PENDING_REPLACE
        ):
            return SubmitResult(
                False, old, None, f"{old.id} is {old.status.value} and cannot be replaced"
            )
        if (
            qty is None
            and limit_price is None
            and stop_price is None
            and trail_price is None
            and trail_percent is None
        ):
            return SubmitResult(
                False, old, None, "give a new quantity or price to replace an order"
            )
        request = OrderRequest(
            symbol=old.symbol,
            side=old.side,
            qty=old.leaves_qty if qty is None else qty,
            type=old.type,
            tif=old.tif,
            limit_price=old.limit_price if limit_price is None else limit_price,
            stop_price=old.stop_price if stop_price is None else stop_price,
            trail_price=old.trail_price if trail_price is None else trail_price,
            trail_percent=old.trail_percent if trail_percent is None else trail_percent,
            extended_hours=old.extended_hours,
            source=old.source,
            parent_id=old.parent_id,
        )
        # The old order is about to be replaced: risk must not count it as working too.
        self._replacing = old.id
        try:
            decision = self._risk.check(request, self, confirmed=confirmed)
        finally:
            self._replacing = None
        if not decision.ok:
            return self._rejected(decision)
        now = self._clock.now_ns()
        new = Order.from_request(request, self._next_id(), now)
        new.replaces = old.id
        previous = old.status
        old.status = OrderStatus.PENDING_REPLACE
        old.updated_ns = now
        try:
            with self._journal.transaction():
                self._journal.save_order(new)
                self._journal.save_order(old)
                self._journal.add_event(
                    now, EventKind.REPLACE_REQUEST, old.id, f"{new.id}: {_describe(new)}"
                )
        except JournalError as error:
            old.status = previous
            return self._not_journaled(error, "replace", decision)
        self._track(new)
        self._risk.record_submitted(request)
        self._bus.publish(Topic.ORDER, old)
        self._bus.publish(Topic.ORDER, new)
        try:
            self._broker.replace(old.id, new)
        except BrokerError as error:
            # The broker never took the replace: the old order works on as before.
            old.status = previous
            self._broker_refused(new, str(error))
            with self._journaling("a failed replace"):
                self._journal.save_order(old)
            self._bus.publish(Topic.ORDER, old)
            return SubmitResult(
                False, new, decision, f"the broker refused to replace {old.id}: {error}"
            )
        return SubmitResult(
            True, new, decision, f"{old.id} replace sent as {new.id}: {_describe(new)}"
        )

    def flatten(self, symbol: str | None = None) -> list[SubmitResult]:
        """Cancel working orders, then close every position (or ``symbol``'s) at market.

        A symbol with no working orders is closed at once. One with working
        orders is closed when the last of them has ended (cancelled, or filled
        before the cancel arrived), at whatever the position is then: closing
        earlier could cross through flat if a working order filled, and risk
        would refuse it as risk-increasing. Its result is accepted with no
        order yet. Flattening is the trader's explicit instruction, so soft
        risk warnings count as confirmed; hard limits still apply (the kill
        switch never blocks a reducing order).
        """
        self.cancel_all(symbol)
        return self._close_positions(symbol, source="flatten")

    def _close_positions(self, symbol: str | None, *, source: str) -> list[SubmitResult]:
        results = []
        for position in self._portfolio.positions():
            if position.qty == ZERO or (symbol is not None and position.symbol != symbol):
                continue
            working = sum(1 for order in self._open.values() if order.symbol == position.symbol)
            if working:
                self._flatten_pending[position.symbol] = source
                message = f"{position.symbol} closes once its {working} working order(s) have ended"
                results.append(SubmitResult(True, None, None, message))
            else:
                results.append(self._close_position(position, source))
        return results

    def _close_position(self, position: Position, source: str) -> SubmitResult:
        request = OrderRequest(
            symbol=position.symbol,
            side=Side.SELL if position.qty > ZERO else Side.BUY,
            qty=abs(position.qty),
            type=OrderType.MARKET,
            tif=TimeInForce.DAY,
            source=source,
        )
        return self.submit(request, confirmed=True)

    def _flatten_if_due(self, symbol: str) -> None:
        if any(order.symbol == symbol for order in self._open.values()):
            return
        source = self._flatten_pending.pop(symbol)
        position = self._portfolio.position(symbol)
        if position is not None and position.qty != ZERO:
            result = self._close_position(position, source)
            if not result.accepted:
                self._alert(Severity.ERROR, f"{symbol} could not be flattened: {result.message}")

    def kill(
        self, reason: str = "kill switch engaged by trader", *, flatten: bool | None = None
    ) -> None:
        """Engage the kill switch, cancel every open order, and flatten if asked.

        ``flatten=None`` follows ``risk.config.flatten_on_kill``. Only
        ``reset_kill()`` disengages the switch.
        """
        now = self._clock.now_ns()
        if self._risk.kill_switch.engage(reason, now):
            self._save_kill_state(EventKind.KILL, now)
            self._alert(Severity.ERROR, f"kill switch engaged: {reason}")
        self.cancel_all()
        if flatten or (flatten is None and self._risk.config.flatten_on_kill):
            self._close_positions(None, source="kill")

    def reset_kill(self) -> None:
        """Disengage the kill switch: the trader's explicit decision to trade again."""
        self._risk.kill_switch.reset()
        self._save_kill_state(EventKind.KILL_RESET, self._clock.now_ns())

    def _save_kill_state(self, kind: EventKind, now: int) -> None:
        state = self._risk.kill_switch.state()
        with self._journaling("the kill switch"):
            self._journal.set_kv(_KV_KILL, to_json(state))
            self._journal.add_event(now, kind, None, state)
        self._bus.publish(Topic.KILL_SWITCH, state)

    def check_daily_loss(self) -> bool:
        """Engage the kill switch if the day's loss breaches the limit; True if this call did.

        Called after every fill; call it from a timer too, since marks move without fills.
        """
        if self._risk.kill_switch.engaged:
            return False
        pnl = self.day_pnl()
        if not self._risk.daily_loss_breached(pnl):
            return False
        self.kill(f"daily loss limit breached: day P&L is {_money(pnl)}")
        return True

    # -- broker updates --------------------------------------------------------------------

    def on_order_update(self, update: OrderUpdate) -> None:
        """Apply one broker update: the status if legal, the fill if new; journal, then publish."""
        order = self._orders.get(update.order_id) or self._adopt_leg(update.order_id)
        now = self._clock.now_ns()
        if order is None:
            logger.warning(
                "update {} for unknown order {} ignored", update.event.value, update.order_id
            )
            with self._journaling("an unknown order's update"):
                self._journal.add_event(now, EventKind.UNKNOWN_ORDER, update.order_id, update)
            if update.fill is not None:
                self._alert(
                    Severity.WARNING,
                    f"a fill for order {update.order_id}, which tickdeck did not place, was "
                    "ignored; positions may differ from the broker's",
                )
            return
        fill = update.fill
        new_fill = fill is not None and fill.id not in self._fill_ids
        # A refused cancel or replace reports the order as it stands (often already filled or
        # cancelled): that is news about the command, not a transition.
        unchanged = update.event in _COMMAND_REFUSED and update.status is order.status
        legal = unchanged or update.status in TRANSITIONS[order.status]
        if unchanged:
            kind = EventKind.UPDATE
            if update.reason:
                self._alert(
                    Severity.WARNING, f"{update.event.value} for {order.id}: {update.reason}"
                )
        elif legal:
            self._apply_update(order, update)
            kind = EventKind.UPDATE
        else:
            logger.warning(
                "order {}: illegal transition {} -> {} on '{}' ignored",
                order.id,
                order.status.value,
                update.status.value,
                update.event.value,
            )
            kind = EventKind.ILLEGAL_TRANSITION
            if new_fill:
                logger.warning("order {}: fill {} applied to the book anyway", order.id, fill.id)
        with self._journaling("an order update"):
            if legal:
                self._journal.save_order(order)
            if new_fill:
                self._journal.add_fill(fill)
                if not legal:
                    self._journal.add_event(now, EventKind.FILL_ANOMALY, order.id, fill)
            self._journal.add_event(now, kind, order.id, update)
        position = self._apply_fill(fill) if new_fill else None
        self.latency.updated(order.id, update.status, now, new_fill)
        if legal:
            self._bus.publish(Topic.ORDER, order)
        if update.event is TradeEvent.ORDER_REPLACE_REJECTED:
            # Whatever the old order's status says, its replacement will never exist.
            self._replace_rejected(order, update.reason)
        if position is not None:
            self._bus.publish(Topic.FILL, fill)
            self._bus.publish(Topic.POSITION, position)
            self.check_daily_loss()
        if order.symbol in self._flatten_pending and not order.is_open:
            self._flatten_if_due(order.symbol)

    def _adopt_leg(self, order_id: str) -> Order | None:
        """The exit leg ``order_id`` of a bracket, OTO or OCO order we placed, now tracked.

        A venue that emulates legs (the sim) reports them as orders of their own; their
        terms follow from the entry (``engine.execution.brackets``), so they are journaled
        here the first time the venue speaks of them.
        """
        entry = self._orders.get(brackets.entry_id(order_id) or "")
        if entry is None or order_id not in brackets.leg_ids(entry):
            return None
        leg = next(o for o in brackets.legs(entry, self._clock.now_ns()) if o.id == order_id)
        with self._journaling("a bracket leg"):
            self._journal.save_order(leg)
        self._track(leg)
        return leg

    def _apply_update(self, order: Order, update: OrderUpdate) -> None:
        order.status = update.status
        order.updated_ns = update.ts_ns
        filled = update.filled_qty
        if order.filled_qty <= filled <= order.qty:
            order.filled_qty = filled
            if update.filled_avg_price is not None:
                order.filled_avg_price = update.filled_avg_price
        elif filled > order.qty:
            logger.warning(
                "order {}: broker reports {} filled of {}; keeping {}",
                order.id,
                filled,
                order.qty,
                order.filled_qty,
            )
        if update.broker_order_id is not None:
            order.broker_order_id = update.broker_order_id
        if update.reason:
            order.reason = update.reason
        if update.status is OrderStatus.REPLACED:
            order.replaced_by = update.replaced_by or self._pending_replacement(order.id)
        self._after_status_change(order)

    def _replace_rejected(self, old: Order, reason: str) -> None:
        new_id = self._pending_replacement(old.id)
        new = self._orders.get(new_id) if new_id else None
        if new is not None:
            self._force(
                new, OrderStatus.REJECTED, reason=f"replace rejected: {reason or 'by the broker'}"
            )

    def _pending_replacement(self, old_id: str) -> str | None:
        for order in self._open.values():
            if order.replaces == old_id and order.status is OrderStatus.PENDING_NEW:
                return order.id
        return None

    def _apply_fill(self, fill: Fill) -> Position:
        self._fill_ids.add(fill.id)
        self._fills.append(fill)
        position = self._portfolio.apply_fill(fill)
        price = self._market.last_price(fill.symbol)
        if price is not None:
            position.last_price = price
        return position

    def _after_status_change(self, order: Order) -> None:
        if order.status.is_terminal:
            self._open.pop(order.id, None)
        else:
            self._open[order.id] = order

    def _track(self, order: Order) -> None:
        self._orders[order.id] = order
        if order.is_open:
            self._open[order.id] = order
        if order.id.startswith(self._id_prefix):
            tail = order.id.rsplit("-", 1)[-1]
            if tail.isdigit():
                self._by_seq[int(tail)] = order.id

    @contextmanager
    def _journaling(self, what: str) -> Iterator[None]:
        """Journal a step that must go ahead even if the journal fails (updates, cancels).

        The body's writes share one transaction. A failure is logged and alerted once,
        never raised: the restart reconciliation recovers what was lost from the broker.
        """
        failed = False
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(self._journal.transaction())
                except JournalError as error:
                    # No transaction: the body's writes commit one by one, or fail below.
                    failed = True
                    self._journal_failed(error, what)
                yield
        except JournalError as error:
            if not failed:
                self._journal_failed(error, what)

    def _journal_failed(self, error: JournalError, what: str) -> None:
        logger.error("{} ({})", error, what)
        self._alert(
            Severity.ERROR, f"{error} ({what}); restart tickdeck to reconcile with the broker"
        )

    def _alert(self, severity: Severity, message: str) -> None:
        self._bus.publish(Topic.ALERT, Alert(self._clock.now_ns(), severity, message, source="oms"))

    # -- queries ---------------------------------------------------------------------------

    def resolve(self, order_ref: str) -> Order | None:
        """The order with id ``order_ref``, or with this journal's sequence number ("12", "#12")."""
        order = self._orders.get(order_ref)
        if order is not None:
            return order
        digits = order_ref.strip().removeprefix("#")
        if digits.isdigit():
            order_id = self._by_seq.get(int(digits))
            if order_id is not None:
                return self._orders[order_id]
        return None

    def orders(self) -> list[Order]:
        """Every order in the journal, oldest first."""
        return list(self._orders.values())

    def order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def fills(self) -> list[Fill]:
        """Every applied fill, in the order applied."""
        return list(self._fills)

    def _mark_positions(self) -> None:
        market = self._market
        for position in self._portfolio.positions():
            if position.qty:
                price = market.last_price(position.symbol)
                if price is not None:
                    position.last_price = price

    def positions(self) -> list[Position]:
        """Every position (flat ones keep their realized P&L), marked at the last market price."""
        self._mark_positions()
        return self._portfolio.positions()

    def position(self, symbol: str) -> Position | None:
        position = self._portfolio.position(symbol)
        if position is not None and position.qty:
            price = self._market.last_price(symbol)
            if price is not None:
                position.last_price = price
        return position

    def account(self) -> Account:
        """Cash, equity and buying power as the OMS tracks them from fills."""
        self._mark_positions()
        portfolio = self._portfolio
        return Account(
            cash=portfolio.cash,
            equity=portfolio.equity(),
            buying_power=self.buying_power(),
            currency=self._currency,
            multiplier=self._multiplier,
            last_equity=portfolio.session_start_equity,
            account_id=self._account_id,
        )

    def rejections(self) -> list[RiskDecision]:
        """This process's most recent risk rejections, oldest first (the journal keeps them all)."""
        return list(self._rejections)

    @property
    def portfolio(self) -> Portfolio:
        """The book; read it, never change it."""
        return self._portfolio

    # -- RiskContext -----------------------------------------------------------------------

    def position_qty(self, symbol: str) -> Decimal:
        return self._portfolio.qty(symbol)

    def open_orders(self) -> list[Order]:
        """Orders still working, except one whose replacement risk is checking."""
        replacing = self._replacing
        if replacing is None:
            return list(self._open.values())
        return [order for order in self._open.values() if order.id != replacing]

    def buying_power(self) -> Decimal:
        """max(0, equity × multiplier − gross exposure − what working orders have reserved).

        A working order that would add exposure holds its notional back, as the broker
        does; otherwise the preview promises buying power the broker will refuse.
        """
        self._mark_positions()
        portfolio = self._portfolio
        free = portfolio.equity() * self._multiplier - portfolio.gross_exposure()
        return max(ZERO, free - self._reserved())

    def _reserved(self) -> Decimal:
        reserved = ZERO
        for order in self.open_orders():
            position = self._portfolio.qty(order.symbol)
            adds = position >= ZERO if order.side is Side.BUY else position <= ZERO
            if not adds:
                continue
            price = order.limit_price or order.stop_price or self._market.last_price(order.symbol)
            if price is not None:
                reserved += order.leaves_qty * price * contract_multiplier(order.symbol)
        return reserved

    def gross_exposure(self) -> Decimal:
        self._mark_positions()
        return self._portfolio.gross_exposure()

    def day_pnl(self) -> Decimal:
        self._mark_positions()
        return self._portfolio.day_pnl()

    def instrument(self, symbol: str) -> Instrument | None:
        return self._broker.instrument(symbol)
