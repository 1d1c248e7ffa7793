"""The sim venue: an in-process paper broker that matches orders against the NBBO.

``SimBroker`` implements the ``Broker`` protocol and reports every outcome as
an ``OrderUpdate`` on ``Topic.ORDER_UPDATE``, with Alpaca's ``trade_updates``
events. Like a real broker it keeps its own paper account (cash, positions,
every order and fill) in a SQLite file, written as each change happens, so a
restart continues the same account and the OMS has a real counterpart to
reconcile against.

Timing
    A command (submit, cancel, replace) reaches the venue ``latency_ms`` after
    it is sent, on a clock timer; commands arrive in the order they were sent.
    What the venue does is reported from a further timer at the same instant
    (``call_later(0)``); so are fills caused by quotes and session events. No
    update is ever published inside a command or inside a bus handler.

Acceptance
    An arriving order is rejected (one ``rejected`` update with a reason) for:
    an unknown or untradable symbol; a quantity that is not positive, or not
    whole on a non-fractionable symbol; a missing, non-positive or off-grid
    limit or stop price for its type; a trailing stop without exactly one of
    ``trail_price``/``trail_percent``; IOC, FOK, OPG or CLS on anything but a
    market or limit order; a market or trailing stop order with no quote on the
    side it needs ("no quote for SYMBOL yet"); selling short an unshortable
    symbol; insufficient buying power; a FOK that cannot fill completely at
    once. Otherwise it gets ``new`` (status NEW, a venue ``broker_order_id``)
    and is matched at once. A submit whose client_order_id the venue already
    knows is ignored (and logged), so resending after a restart is safe.

Buying power
    ``equity × multiplier − gross position value``, with positions marked at
    the quote's mid (the last fill price when there is no two-sided quote). An
    order needs ``opening qty × price`` of it, where the opening qty is the part
    that does not close an existing position and the price is the limit (stop
    for a stop order; the touch for market and trailing stop orders). Open
    orders' opening notional is reserved the same way.

Displayed liquidity
    A quote shows one level per side. The venue sees level 0, the touch (the
    ask for buys, the bid for sells) with its displayed size, and behind it
    levels 1..``max_walk_levels``, each ``walk_ticks`` ticks worse than the one
    before with the touch's size again. Shares the venue takes at a quote stay
    taken until the symbol's next quote, so two orders at one quote share it.

Matching
    * Aggressive: a market order, a limit order on arrival, and a stop or
      trailing stop when it triggers take levels from the touch outwards, a
      limit never past its price. Each level is one execution, so walking the
      book gives ``partial_fill`` updates and then ``fill``.
    * Market orders never rest: what the walk leaves is canceled (``canceled``
      with a reason). IOC, OPG and CLS remainders are canceled the same way.
      FOK was checked for a complete fill at acceptance.
    * Resting limits (DAY and GTC): on each later quote, a buy fills when the
      ask is at or below its limit, at the ask (price improvement when the quote
      crosses through), up to the ask size, touch only; a sell mirrors on the
      bid. A symbol's orders match in arrival order; a replacement goes last.
    * Stops: a buy triggers when the ask reaches the stop (ask >= stop), a sell
      when the bid falls to it (bid <= stop), checked on arrival and on every
      quote. A stop then matches as a market order, a stop-limit as a limit
      order arriving (aggressive at once, the rest resting).
    * Trailing stops: a sell follows the high-water mark of the bid since it
      was accepted (starting at the bid then); its stop is ``hwm − trail_price``
      or ``hwm × (1 − trail_percent/100)``, and it triggers when bid <= stop. A
      buy mirrors with the low-water mark of the ask and triggers when
      ask >= stop. It then matches as a market order.
    * Fees per execution: ``fee_per_share × qty``, plus ``fee_per_order`` on the
      order's first execution, rounded to the cent, in ``Fill.fee``; cash pays
      them.

Sessions (``Topic.SESSION``)
    OPG and CLS orders are DAY market or limit orders for the next open or
    close: they wait (status NEW) for the session event. On OPEN, waiting OPG
    orders match aggressively against the current NBBO and their remainders
    are canceled; on CLOSE, CLS orders do the same, then every open DAY order
    expires (``expired``). GTC orders work on. Beyond that the venue matches
    whenever quotes arrive; it does not model closed hours.

Cancel and replace
    A cancel of an open order gives ``canceled`` (fills so far stay); of an
    unknown or closed order, ``order_cancel_rejected`` with the reason (status
    REJECTED for an order the venue never saw). A replace gives ``replaced`` on
    the old order (status REPLACED, ``replaced_by`` the new id) and then ``new``
    on the replacement, which is a fresh order for the requested qty, as at
    Alpaca: the old order's fills stay on the old order. It must keep the
    symbol and side; if it cannot be accepted the old order keeps working and
    gets ``order_replace_rejected`` with the reason.

Brackets, OTO and OCO (``engine.execution.brackets``)
    A bracket's or OTO's entry is a market or limit order; when it has filled
    completely its legs are accepted (``new``): a take-profit limit (id
    ``<entry>-tp``) and/or a stop-loss stop or stop-limit (``<entry>-sl``), on the
    opposite side for the entry's quantity, matched like any order. An OCO order
    is a limit at its take-profit; its stop leg is accepted with it. The first fill
    of either leg of a pair cancels the other (``canceled``, "the other leg ...
    filled"). Legs need take-profit above stop-loss when they sell, below when
    they buy. With ``emulate_legs`` off, such orders are rejected instead.

Persistence
    Each command, quote or session event that changes the account (a trailing
    stop's water mark moving included) is written to the file as ONE SQLite
    transaction, committed before any update it causes is published: what the
    OMS hears about, the file already holds, even if the process is killed at
    once after (``engine.broker.sim_store`` has the durability details). A
    write the disk refuses raises an ERROR alert; its changes are kept and go
    out with the next write. ``reset=True`` starts a fresh account with
    ``starting_cash`` in place of the file; a corrupt file is a ``BrokerError``
    that says so. ``stop()`` closes the file; nothing is saved after it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path

from loguru import logger

from engine.broker.sim_matching import (
    DisplayedBook,
    Slice,
    next_watermark,
    stop_triggered,
    trailing_reference,
    trailing_stop_price,
)
from engine.broker.sim_store import (
    AccountStore,
    Changes,
    PaperAccount,
    WorkingState,
    open_account,
)
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_MS, Clock
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Quote,
    Side,
    TimeInForce,
    TradeEvent,
)
from engine.core.prices import (
    ZERO,
    cents,
    contract_multiplier,
    on_tick_grid,
    symbol_tick_size,
)
from engine.execution.brackets import legs as bracket_legs
from engine.execution.brackets import sibling_ids

_LIMITS = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOPS = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_NEEDS_QUOTE = frozenset({OrderType.MARKET, OrderType.TRAILING_STOP})
_ENTRY_CLASSES = frozenset({OrderClass.BRACKET, OrderClass.OTO})
_MARKET_OR_LIMIT_ONLY = frozenset(
    {TimeInForce.IOC, TimeInForce.FOK, TimeInForce.OPG, TimeInForce.CLS}
)
_RESTING_TIFS = frozenset({TimeInForce.DAY, TimeInForce.GTC})
# An Order's fields in constructor order, read in one call.
_order_values = attrgetter(*(f.name for f in dataclasses.fields(Order)))


@dataclass(slots=True)
class SimVenueConfig:
    """How the sim venue behaves; see the module docstring for the rules these tune."""

    latency_ms: float = 5.0
    fee_per_share: Decimal = ZERO
    fee_per_order: Decimal = ZERO
    walk_ticks: int = 1
    max_walk_levels: int = 10
    starting_cash: Decimal = Decimal("100000")
    multiplier: Decimal = Decimal("2")
    # Bracket, OTO and OCO legs as orders of their own. A front end that cannot show legs
    # (the local Alpaca server, whose API nests them in the parent) turns this off.
    emulate_legs: bool = True

    def __post_init__(self) -> None:
        if not math.isfinite(self.latency_ms) or self.latency_ms < 0:
            raise ValueError("latency_ms must be a finite number of milliseconds, 0 or more")
        for name in ("fee_per_share", "fee_per_order", "starting_cash", "multiplier"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, Decimal(value))
            elif not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a Decimal, not {value!r}")
        if self.fee_per_share < ZERO or self.fee_per_order < ZERO:
            raise ValueError("fees must be 0 or more")
        if self.walk_ticks < 0:
            raise ValueError("walk_ticks must be 0 or more")
        if self.max_walk_levels < 0:
            raise ValueError("max_walk_levels must be 0 or more")
        if self.starting_cash <= ZERO:
            raise ValueError("starting_cash must be positive")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")


class SimBroker:
    """The in-process paper venue (module docstring: timing, matching, account, persistence).

    ``state_path`` is the SQLite file the paper account lives in, whatever its
    name (None keeps it in memory only, as a backtest wants); ``instruments``
    is what the venue trades. With ``reset=True`` any saved account is replaced
    by a fresh one. A corrupt or unreadable file is a ``BrokerError``.
    """

    name = "sim"

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        market: MarketView,
        config: SimVenueConfig,
        *,
        state_path: Path | None,
        instruments: Mapping[str, Instrument],
        reset: bool = False,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._market = market
        self._config = config
        self._instruments = instruments
        self._listing: Callable[[str], Instrument | None] | None = None
        self._latency_ns = round(config.latency_ms * NS_PER_MS)
        self._max_level = config.max_walk_levels
        # What the current state change touched: written as one transaction by _commit.
        self._changes = Changes()
        self._store: AccountStore | None = None
        if state_path is None:
            self._account = PaperAccount.fresh(config.starting_cash)
            created = True
        else:
            self._store, self._account, created = open_account(
                state_path, config.starting_cash, reset=reset
            )
        if created:
            logger.info(
                "sim venue: fresh account {} with {} cash",
                self._account.account_id,
                config.starting_cash,
            )
        else:
            logger.info(
                "sim venue: continuing account {} from {}", self._account.account_id, state_path
            )
        # Where accepted orders wait: per symbol for matching on quotes, or for an auction.
        self._working: dict[str, list[Order]] = {}
        self._at_open: list[Order] = []
        self._at_close: list[Order] = []
        self._books: dict[str, DisplayedBook] = {}
        for order_id in self._account.working:
            self._park(self._account.orders[order_id])
        bus.subscribe(Topic.QUOTE, self._on_quote)
        bus.subscribe(Topic.SESSION, self._on_session)

    # -- Broker protocol: lifecycle and commands ------------------------------------------

    async def start(self) -> None:
        """The account was loaded at construction; this reports what it holds."""
        account = self._account
        logger.info(
            "sim venue: account {} has {} cash, {} positions, {} open orders",
            account.account_id,
            account.cash,
            sum(1 for p in account.positions.values() if p.qty != ZERO),
            len(account.working),
        )

    async def stop(self) -> None:
        """Stop listening to the market, save what is not saved yet and close the file."""
        self._bus.unsubscribe(Topic.QUOTE, self._on_quote)
        self._bus.unsubscribe(Topic.SESSION, self._on_session)
        self._save()
        if self._store is not None:
            self._store.close()
            self._store = None

    def submit(self, order: Order) -> None:
        """Send ``order``; it reaches the venue after the latency (copied now, as sent)."""
        self._clock.call_later(self._latency_ns, partial(self._arrive_submit, _copy(order)))

    def cancel(self, order_id: str) -> None:
        """Ask to cancel ``order_id``; answered with ``canceled`` or ``order_cancel_rejected``."""
        self._clock.call_later(self._latency_ns, partial(self._arrive_cancel, order_id))

    def replace(self, order_id: str, new_order: Order) -> None:
        """Replace ``order_id``: ``replaced`` then ``new``, or ``order_replace_rejected``."""
        self._clock.call_later(
            self._latency_ns,
            partial(self._arrive_replace, order_id, _copy(new_order)),
        )

    # -- Broker protocol: queries ---------------------------------------------------------

    async def account(self) -> Account:
        """Cash, equity marked at the current quotes, and buying power (module docstring)."""
        equity, gross = self._valuation()
        multiplier = self._config.multiplier
        return Account(
            cash=self._account.cash,
            equity=equity,
            buying_power=max(ZERO, equity * multiplier - gross),
            multiplier=multiplier,
            last_equity=self._account.last_equity,
            account_id=self._account.account_id,
        )

    async def positions(self) -> list[Position]:
        """Open positions, each with ``last_price`` set to its current mark."""
        return [
            dataclasses.replace(p, last_price=self._mark(p.symbol))
            for p in self._account.positions.values()
            if p.qty != ZERO
        ]

    async def open_orders(self) -> list[Order]:
        """Working orders in the order the venue accepted them."""
        return [_copy(self._account.orders[i]) for i in self._account.working]

    async def get_order(self, order_id: str) -> Order | None:
        """The venue's record of one order, open or closed (a copy)."""
        order = self._account.orders.get(order_id)
        return _copy(order) if order is not None else None

    async def fills_since(self, ts_ns: int) -> list[Fill]:
        """Every execution at or after ``ts_ns``, oldest first."""
        return [f for f in self._account.fills if f.ts_ns >= ts_ns]

    def instrument(self, symbol: str) -> Instrument | None:
        """What the venue trades of ``symbol``: the instruments it was given, else what the
        listing lookup (``list_instruments``) finds."""
        found = self._instruments.get(symbol)
        if found is None and self._listing is not None:
            found = self._listing(symbol)
        return found

    def list_instruments(self, lookup: Callable[[str], Instrument | None]) -> None:
        """Also trade what ``lookup`` resolves: the option contracts of the sim underlyings,
        listed as their chains are built."""
        self._listing = lookup

    # -- commands arriving at the venue ---------------------------------------------------

    def _arrive_submit(self, order: Order) -> None:
        if order.id in self._account.orders:
            logger.warning("sim venue: order {} is already known; ignoring the resend", order.id)
            return
        updates: list[OrderUpdate] = []
        reason = self._rejection(order, replacing=None)
        if reason:
            self._record(order)
            order.status = OrderStatus.REJECTED
            order.reason = reason
            updates.append(self._update(TradeEvent.REJECTED, order, reason=reason))
        else:
            self._accept(order, updates)
        self._commit(updates)

    def _arrive_cancel(self, order_id: str) -> None:
        order = self._account.orders.get(order_id)
        problem = _not_open(order_id, order)
        if problem or order is None:
            refusal = _refusal(
                TradeEvent.ORDER_CANCEL_REJECTED, order_id, order, problem, self._clock
            )
            self._commit([refusal])
            return
        self._close(order, OrderStatus.CANCELED, "")
        self._commit([self._update(TradeEvent.CANCELED, order)])

    def _arrive_replace(self, order_id: str, new_order: Order) -> None:
        old = self._account.orders.get(order_id)
        problem = _not_open(order_id, old)
        if old is not None and not problem:
            if new_order.id in self._account.orders:
                problem = f"client_order_id {new_order.id} is already in use"
            elif new_order.symbol != old.symbol or new_order.side is not old.side:
                problem = "a replacement must keep the order's symbol and side"
            else:
                problem = self._rejection(new_order, replacing=old)
        if problem or old is None:
            refusal = _refusal(
                TradeEvent.ORDER_REPLACE_REJECTED, order_id, old, problem, self._clock
            )
            self._commit([refusal])
            return
        old.replaced_by = new_order.id
        self._close(old, OrderStatus.REPLACED, "")
        updates = [self._update(TradeEvent.REPLACED, old)]
        new_order.replaces = old.id
        self._accept(new_order, updates)
        self._commit(updates)

    def _record(self, order: Order) -> None:
        """Make ``order`` the venue's own record: a venue id, arrival time, nothing filled."""
        now = self._clock.now_ns()
        order.broker_order_id = self._account.next_order_id()
        order.created_ns = order.updated_ns = now
        order.filled_qty = ZERO
        order.filled_avg_price = None
        order.replaced_by = None
        order.reason = ""
        self._account.orders[order.id] = order
        self._changes.orders[order.id] = order

    def _accept(self, order: Order, updates: list[OrderUpdate]) -> None:
        self._accept_one(order, updates)
        if order.order_class is OrderClass.OCO and order.is_open and order.filled_qty == ZERO:
            # An OCO order is the take-profit limit; its stop leg works beside it.
            self._activate_legs(order, updates)

    def _activate_legs(self, entry: Order, updates: list[OrderUpdate]) -> None:
        """Bring ``entry``'s exit legs to life (see ``engine.execution.brackets``)."""
        for leg in bracket_legs(entry, self._clock.now_ns()):
            if leg.id not in self._account.orders:
                self._accept_one(leg, updates)

    def _cancel_siblings(self, order: Order, updates: list[OrderUpdate]) -> None:
        """A leg's first fill cancels the other leg of its pair."""
        for sibling_id in sibling_ids(order):
            sibling = self._account.orders.get(sibling_id)
            if sibling is not None and sibling.is_open:
                reason = f"the other leg {order.id} filled"
                self._close(sibling, OrderStatus.CANCELED, reason)
                updates.append(self._update(TradeEvent.CANCELED, sibling, reason=reason))

    def _accept_one(self, order: Order, updates: list[OrderUpdate]) -> None:
        self._record(order)
        order.status = OrderStatus.NEW
        state = self._account.working[order.id] = WorkingState()
        updates.append(self._update(TradeEvent.NEW, order))
        self._park(order)
        if order.tif in (TimeInForce.OPG, TimeInForce.CLS):
            return
        quote = self._market.quote(order.symbol)
        if order.type is OrderType.TRAILING_STOP:
            # Acceptance made sure the side it follows is quoted.
            state.watermark = trailing_reference(order.side, quote) if quote else None
            return
        if order.type in _STOPS:
            if quote is None or not stop_triggered(order.side, _price(order.stop_price), quote):
                return
            state.triggered = True
        self._sweep(order, self._book(quote) if quote is not None else None, updates)

    # -- market events --------------------------------------------------------------------

    def _on_quote(self, quote: Quote) -> None:
        orders = self._working.get(quote.symbol)
        if orders is None:
            return
        updates: list[OrderUpdate] = []
        for order in tuple(orders):  # a copy: an order that fills leaves the list
            if order.is_open:  # a leg's fill may have cancelled its sibling in this loop
                self._match_resting(order, quote, updates)
        if updates or self._changes:
            self._commit(updates)

    def _match_resting(self, order: Order, quote: Quote, updates: list[OrderUpdate]) -> None:
        """Match one working order against a new quote.

        Cheap comparisons on the quote come first; the displayed book is built
        only when the order can execute.
        """
        if order.type is OrderType.LIMIT:
            self._match_limit(order, quote, updates)
            return
        state = self._account.working[order.id]
        if order.type is OrderType.TRAILING_STOP:
            # Untriggered: a trailing stop that fires matches as a market order and never rests.
            watermark = next_watermark(order.side, state.watermark, quote)
            if watermark is None:
                return
            if watermark != state.watermark:
                state.watermark = watermark
                self._changes.orders[order.id] = order
            stop = trailing_stop_price(
                order.side, watermark, order.trail_price, order.trail_percent
            )
            if not stop_triggered(order.side, stop, quote):
                return
        elif state.triggered:
            self._match_limit(order, quote, updates)  # a triggered stop-limit rests as a limit
            return
        elif not stop_triggered(order.side, _price(order.stop_price), quote):
            return
        state.triggered = True
        self._changes.orders[order.id] = order
        self._sweep(order, self._book(quote), updates)

    def _match_limit(self, order: Order, quote: Quote, updates: list[OrderUpdate]) -> None:
        """A resting limit takes the touch when the quote reaches its price."""
        limit = _price(order.limit_price)
        if order.side is Side.BUY:
            if not ZERO < quote.ask <= limit:
                return
        elif quote.bid < limit:  # limits are positive, so an empty bid (0) never reaches one
            return
        for piece in self._book(quote).take(order.side, order.leaves_qty, limit, 0):
            self._execute(order, piece, updates)

    def _on_session(self, event: SessionEvent) -> None:
        updates: list[OrderUpdate] = []
        if event.phase is SessionPhase.OPEN:
            self._auction(self._at_open, "open", updates)
            self._commit(updates)
            return
        self._auction(self._at_close, "close", updates)
        for order in [o for orders in self._working.values() for o in orders]:
            if order.tif is TimeInForce.DAY:
                self._close(order, OrderStatus.EXPIRED, "the day order expired at the close")
                updates.append(self._update(TradeEvent.EXPIRED, order, reason=order.reason))
        self._account.last_equity = self._valuation()[0]
        self._changes.account = True
        self._commit(updates)

    def _auction(self, orders: list[Order], phase: str, updates: list[OrderUpdate]) -> None:
        for order in tuple(orders):
            quote = self._market.quote(order.symbol)
            if quote is None:
                self._cancel_rest(order, f"no quote for {order.symbol} at the {phase}", updates)
            else:
                self._sweep(order, self._book(quote), updates)

    # -- matching -------------------------------------------------------------------------

    def _book(self, quote: Quote) -> DisplayedBook:
        """The displayed book for ``quote``: the same one while the quote is current."""
        book = self._books.get(quote.symbol)
        if book is None or book.quote is not quote:
            book = self._books[quote.symbol] = DisplayedBook(quote, self._config.walk_ticks)
        return book

    def _sweep(self, order: Order, book: DisplayedBook | None, updates: list[OrderUpdate]) -> None:
        """Match aggressively, then rest the remainder (DAY/GTC limits) or cancel it."""
        limit = order.limit_price if order.type in _LIMITS else None
        if book is not None:
            for piece in book.take(order.side, order.leaves_qty, limit, self._max_level):
                self._execute(order, piece, updates)
        leaves = order.leaves_qty
        if leaves <= ZERO or (order.type in _LIMITS and order.tif in _RESTING_TIFS):
            return
        if order.type in _LIMITS:
            reason = f"{order.tif.value.upper()}: the unfilled {leaves} shares were canceled"
        else:
            reason = (
                f"the displayed book ran out within {self._max_level} levels beyond the touch, "
                f"so the unfilled {leaves} shares were canceled"
            )
        self._cancel_rest(order, reason, updates)

    def _cancel_rest(self, order: Order, reason: str, updates: list[OrderUpdate]) -> None:
        self._close(order, OrderStatus.CANCELED, reason)
        updates.append(self._update(TradeEvent.CANCELED, order, reason=reason))

    def _execute(self, order: Order, piece: Slice, updates: list[OrderUpdate]) -> None:
        """One execution: the order, the fill record, the position and cash."""
        now = self._clock.now_ns()
        config = self._config
        first = order.filled_qty == ZERO
        fee = cents(config.fee_per_share * piece.qty + (config.fee_per_order if first else ZERO))
        filled = order.filled_qty + piece.qty
        if order.filled_avg_price is None:
            order.filled_avg_price = piece.price
        else:
            order.filled_avg_price = (
                order.filled_avg_price * order.filled_qty + piece.price * piece.qty
            ) / filled
        order.filled_qty = filled
        done = filled >= order.qty
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        order.updated_ns = now
        fill = Fill(
            id=self._account.next_fill_id(),
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=piece.qty,
            price=piece.price,
            ts_ns=now,
            fee=fee,
        )
        self._account.fills.append(fill)
        position = self._apply_fill(fill)
        changes = self._changes
        changes.orders[order.id] = order
        changes.positions[position.symbol] = position
        changes.fills.append(fill)
        event = TradeEvent.FILL if done else TradeEvent.PARTIAL_FILL
        updates.append(self._update(event, order, fill=fill, position_qty=position.qty))
        if done:
            self._retire(order)
        if first:
            self._cancel_siblings(order, updates)
        if done and order.order_class in _ENTRY_CLASSES:
            self._activate_legs(order, updates)

    def _apply_fill(self, fill: Fill) -> Position:
        """Move cash and the position; realize P&L on the part that closes."""
        account = self._account
        position = account.positions.get(fill.symbol)
        if position is None:
            position = account.positions[fill.symbol] = Position(fill.symbol)
        signed = fill.qty * fill.side.sign
        multiplier = contract_multiplier(fill.symbol)
        account.cash -= signed * fill.price * multiplier + fill.fee
        held = position.qty
        new_qty = held + signed
        if held == ZERO or (held > ZERO) == (signed > ZERO):
            position.avg_cost = (position.avg_cost * abs(held) + fill.price * fill.qty) / abs(
                new_qty
            )
        else:
            closed = min(fill.qty, abs(held))
            direction = 1 if held > ZERO else -1
            position.realized_pnl += (
                (fill.price - position.avg_cost) * closed * direction * multiplier
            )
            if new_qty == ZERO:
                position.avg_cost = ZERO
            elif (new_qty > ZERO) != (held > ZERO):
                position.avg_cost = fill.price  # flipped: the rest opened at this price
        position.qty = new_qty
        position.fees += fill.fee
        position.last_price = fill.price
        return position

    def _close(self, order: Order, status: OrderStatus, reason: str) -> None:
        order.status = status
        order.reason = reason
        order.updated_ns = self._clock.now_ns()
        self._changes.orders[order.id] = order
        self._retire(order)

    def _retire(self, order: Order) -> None:
        """A closed order stops waiting for quotes or auctions."""
        self._unpark(order)
        self._account.working.pop(order.id, None)

    def _park(self, order: Order) -> None:
        if order.tif is TimeInForce.OPG:
            self._at_open.append(order)
        elif order.tif is TimeInForce.CLS:
            self._at_close.append(order)
        else:
            self._working.setdefault(order.symbol, []).append(order)

    def _unpark(self, order: Order) -> None:
        if order.tif is TimeInForce.OPG:
            _remove(self._at_open, order)
        elif order.tif is TimeInForce.CLS:
            _remove(self._at_close, order)
        else:
            orders = self._working.get(order.symbol)
            if orders is not None:
                _remove(orders, order)
                if not orders:
                    # An absent key is what keeps quotes for idle symbols a dict miss.
                    del self._working[order.symbol]

    # -- acceptance checks ----------------------------------------------------------------

    def _rejection(self, order: Order, *, replacing: Order | None) -> str:
        """Why the venue refuses ``order``, or "" when it accepts it."""
        symbol = order.symbol
        instrument = self.instrument(symbol)
        if instrument is None:
            return f"{symbol} is not traded at the sim venue"
        if not instrument.tradable:
            return f"{symbol} is not tradable"
        if order.order_class is not OrderClass.SIMPLE:
            if not self._config.emulate_legs:
                return "bracket, OCO and OTO orders are not emulated by this venue"
            problem = _legs_problem(order)
            if problem:
                return problem
        if order.qty <= ZERO:
            return "the order quantity must be positive"
        if not instrument.fractionable and order.qty != order.qty.to_integral_value():
            return f"{symbol} is not fractionable, so the quantity must be whole shares"
        problem = _shape_problem(order)
        if problem:
            return problem
        quote = self._market.quote(symbol)
        if order.type in _NEEDS_QUOTE:
            problem = _quote_problem(order.side, symbol, quote)
            if problem:
                return problem
        opening = _opening_qty(order.side, order.qty, self._position_qty(symbol))
        if opening > ZERO:
            if order.side is Side.SELL and not instrument.shortable:
                return f"{symbol} is not shortable"
            needed = opening * self._price_estimate(order, quote) * contract_multiplier(symbol)
            available = self._buying_power() - self._reserved(excluding=replacing)
            if needed > available:
                return (
                    f"insufficient buying power: the order needs ${needed:,.2f} "
                    f"and ${max(available, ZERO):,.2f} is available"
                )
        if order.tif is TimeInForce.FOK:
            limit = order.limit_price if order.type is OrderType.LIMIT else None
            book = self._book(quote) if quote is not None else None
            depth = book.available(order.side, limit, self._max_level) if book else ZERO
            if depth < order.qty:
                return (
                    f"FOK: {order.qty} {symbol} cannot be filled completely now ({depth} available)"
                )
        return ""

    def _position_qty(self, symbol: str) -> Decimal:
        position = self._account.positions.get(symbol)
        return position.qty if position is not None else ZERO

    def _price_estimate(self, order: Order, quote: Quote | None) -> Decimal:
        """The price an order's buying power is judged at."""
        if order.type in _LIMITS:
            return _price(order.limit_price)
        if order.type is OrderType.STOP:
            return _price(order.stop_price)
        if quote is not None:
            touch = quote.ask if order.side is Side.BUY else quote.bid
            if touch > ZERO:
                return touch
        return self._mark(order.symbol)

    def _reserved(self, *, excluding: Order | None) -> Decimal:
        """Buying power that open orders would use if they filled."""
        total = ZERO
        for order in self._open_orders():
            if order is excluding:
                continue
            opening = _opening_qty(order.side, order.leaves_qty, self._position_qty(order.symbol))
            if opening > ZERO:
                price = self._price_estimate(order, self._market.quote(order.symbol))
                total += opening * price * contract_multiplier(order.symbol)
        return total

    def _open_orders(self) -> Iterator[Order]:
        return chain(chain.from_iterable(self._working.values()), self._at_open, self._at_close)

    # -- valuation ------------------------------------------------------------------------

    def _mark(self, symbol: str) -> Decimal:
        """The quote's mid; the last fill price when there is no two-sided quote."""
        quote = self._market.quote(symbol)
        if quote is not None and quote.is_two_sided:
            return quote.mid
        position = self._account.positions.get(symbol)
        if position is not None and position.last_price is not None:
            return position.last_price
        return ZERO

    def _valuation(self) -> tuple[Decimal, Decimal]:
        """(equity, gross position value) at the current marks."""
        equity = self._account.cash
        gross = ZERO
        for position in self._account.positions.values():
            if position.qty != ZERO:
                value = position.qty * self._mark(position.symbol) * position.multiplier
                equity += value
                gross += abs(value)
        return equity, gross

    def _buying_power(self) -> Decimal:
        equity, gross = self._valuation()
        return max(ZERO, equity * self._config.multiplier - gross)

    # -- reporting and saving -------------------------------------------------------------

    def _update(
        self,
        event: TradeEvent,
        order: Order,
        *,
        fill: Fill | None = None,
        position_qty: Decimal | None = None,
        reason: str = "",
    ) -> OrderUpdate:
        return OrderUpdate(
            event=event,
            order_id=order.id,
            ts_ns=self._clock.now_ns(),
            status=order.status,
            filled_qty=order.filled_qty,
            filled_avg_price=order.filled_avg_price,
            broker_order_id=order.broker_order_id,
            fill=fill,
            position_qty=position_qty,
            replaced_by=order.replaced_by,
            reason=reason,
        )

    def _commit(self, updates: list[OrderUpdate]) -> None:
        """Save what changed, then report from a timer, never from here.

        The save comes first: an update is only ever published about a state
        the file already holds.
        """
        self._save()
        if updates:
            self._clock.call_later(0, partial(self._publish, tuple(updates)))

    def _publish(self, updates: tuple[OrderUpdate, ...]) -> None:
        for update in updates:
            self._bus.publish(Topic.ORDER_UPDATE, update)

    def _save(self) -> None:
        """Write the pending changes as one transaction; a failure keeps them for the next."""
        changes = self._changes
        if not changes:
            return
        if self._store is not None:
            try:
                self._store.write(self._account, changes)
            except BrokerError as error:
                message = str(error)
                logger.error(message)
                self._bus.publish(
                    Topic.ALERT,
                    Alert(self._clock.now_ns(), Severity.ERROR, message, source="sim venue"),
                )
                return
        changes.clear()


def _copy(order: Order) -> Order:
    """A copy of ``order``, at a fifth of the cost of ``dataclasses.replace`` (on the order path)."""
    return Order(*_order_values(order))


def _price(value: Decimal | None) -> Decimal:
    """A price acceptance guaranteed is there."""
    assert value is not None
    return value


def _remove(orders: list[Order], order: Order) -> None:
    # By identity: dataclass equality would compare every field of every order.
    for index, candidate in enumerate(orders):
        if candidate is order:
            del orders[index]
            return


def _opening_qty(side: Side, qty: Decimal, position_qty: Decimal) -> Decimal:
    """The part of an order that opens or adds to a position rather than closing one."""
    closable = max(ZERO, -position_qty) if side is Side.BUY else max(ZERO, position_qty)
    return max(ZERO, qty - closable)


def _not_open(order_id: str, order: Order | None) -> str:
    if order is None:
        return f"order {order_id} is unknown at the sim venue"
    if not order.status.is_open:
        return f"order {order_id} is already {order.status.value}"
    return ""


def _refusal(
    event: TradeEvent, order_id: str, order: Order | None, reason: str, clock: Clock
) -> OrderUpdate:
    """An ``order_cancel_rejected``/``order_replace_rejected``; REJECTED for an order never seen."""
    if order is None:
        return OrderUpdate(event, order_id, clock.now_ns(), OrderStatus.REJECTED, reason=reason)
    return OrderUpdate(
        event=event,
        order_id=order_id,
        ts_ns=clock.now_ns(),
        status=order.status,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price,
        broker_order_id=order.broker_order_id,
        replaced_by=order.replaced_by,
        reason=reason,
    )


def _shape_problem(order: Order) -> str:
    """What is wrong with an order's type, prices and time in force, or ""."""
    kind = order.type.value.replace("_", "-")
    if order.type in _LIMITS and order.limit_price is None:
        return f"a {kind} order needs a limit price"
    if order.type in _STOPS and order.stop_price is None:
        return f"a {kind} order needs a stop price"
    if order.type is OrderType.TRAILING_STOP:
        if (order.trail_price is None) == (order.trail_percent is None):
            return "a trailing stop needs exactly one of trail_price and trail_percent"
        if order.trail_price is not None and order.trail_price <= ZERO:
            return "a trailing stop's trail_price must be positive"
        if order.trail_percent is not None and not ZERO < order.trail_percent < 100:
            return "a trailing stop's trail_percent must be between 0 and 100"
    prices = (
        ("limit", order.limit_price if order.type in _LIMITS else None),
        ("stop", order.stop_price if order.type in _STOPS else None),
    )
    for name, price in prices:
        if price is None:
            continue
        if price <= ZERO:
            return f"the {name} price must be positive"
        if not on_tick_grid(price, order.symbol):
            tick = symbol_tick_size(order.symbol, price)
            return f"the {name} price {price} is not on the ${tick} tick grid"
    if order.tif in _MARKET_OR_LIMIT_ONLY and order.type not in (OrderType.MARKET, OrderType.LIMIT):
        return f"{order.tif.value.upper()} orders must be market or limit orders"
    return ""


def _quote_problem(side: Side, symbol: str, quote: Quote | None) -> str:
    if quote is None:
        return f"no quote for {symbol} yet"
    touch = quote.ask if side is Side.BUY else quote.bid
    if touch <= ZERO:
        return f"no {'ask' if side is Side.BUY else 'bid'} for {symbol} right now"
    return ""


def _legs_problem(order: Order) -> str:
    """Why a bracket, OTO or OCO order's legs cannot work, or "" when they can."""
    take, stop = order.take_profit_price, order.stop_loss_price
    if order.order_class is OrderClass.OCO:
        if take is None or stop is None:
            return "an OCO order needs a take-profit and a stop-loss price"
        if order.type is not OrderType.LIMIT or order.limit_price != take:
            return "an OCO order is a limit order at its take-profit price"
        exit_side = order.side
    else:
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            return f"a {order.order_class.value} order's entry must be a market or limit order"
        if order.order_class is OrderClass.BRACKET and (take is None or stop is None):
            return "a bracket order needs a take-profit and a stop-loss price"
        if take is None and stop is None:
            return "an OTO order needs a take-profit or a stop-loss price"
        exit_side = order.side.opposite
    for price in (take, stop, order.stop_loss_limit_price):
        if price is not None and price <= ZERO:
            return "take-profit and stop-loss prices must be positive"
    if take is not None and stop is not None:
        if exit_side is Side.SELL and take <= stop:
            return f"the take-profit {take} must be above the stop-loss {stop}"
        if exit_side is Side.BUY and take >= stop:
            return f"the take-profit {take} must be below the stop-loss {stop}"
    return ""
