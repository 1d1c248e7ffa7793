"""The engine's domain model: market data, orders, fills, positions and the account.

Every record is a slotted dataclass; every state is an enum whose values are
Alpaca's wire strings, so the Alpaca adapter maps one to one. Prices and order
quantities are ``Decimal``; market-data sizes are ``int`` shares; timestamps are
``int`` nanoseconds since the Unix epoch (UTC), named ``ts_ns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from engine.core.prices import ZERO, contract_multiplier


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class OrderClass(StrEnum):
    """Alpaca's ``order_class``: a plain order, or one with attached take-profit/stop-loss legs."""

    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"
    CLS = "cls"


class OrderStatus(StrEnum):
    """Alpaca's order lifecycle (``GET /v2/orders`` ``status``)."""

    NEW = "new"
    PENDING_NEW = "pending_new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    PENDING_CANCEL = "pending_cancel"
    REPLACED = "replaced"
    PENDING_REPLACE = "pending_replace"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        """Working at the broker: may still fill or be cancelled."""
        return self not in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)


class TradeEvent(StrEnum):
    """Events on Alpaca's ``trade_updates`` stream; every broker emits these."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"
    REPLACED = "replaced"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"
    ORDER_REPLACE_REJECTED = "order_replace_rejected"


@dataclass(slots=True, frozen=True)
class Quote:
    """Top of book (the NBBO for a consolidated feed)."""

    symbol: str
    ts_ns: int
    bid: Decimal
    bid_size: int
    ask: Decimal
    ask_size: int

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid

    @property
    def is_two_sided(self) -> bool:
        return self.bid > ZERO and self.ask > ZERO


@dataclass(slots=True, frozen=True)
class Trade:
    symbol: str
    ts_ns: int
    price: Decimal
    size: int
    exchange: str = ""


@dataclass(slots=True, frozen=True)
class Bar:
    """An OHLCV bar; ``ts_ns`` is the bar's start time."""

    symbol: str
    ts_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    timeframe: str = "1Min"


@dataclass(slots=True, frozen=True)
class Instrument:
    """What the broker says about a symbol; the risk checks read these flags."""

    symbol: str
    name: str = ""
    tradable: bool = True
    shortable: bool = True
    easy_to_borrow: bool = True
    fractionable: bool = False


@dataclass(slots=True, frozen=True)
class OrderRequest:
    """What a trader, bot or algo asks for. Nothing reaches a broker without passing risk first.

    ``trail_price`` and ``trail_percent`` are mutually exclusive and only for
    trailing stops; ``source`` says who asked ("manual", "bot:momentum", "algo:<id>").
    ``order_class`` other than simple attaches legs: ``take_profit_price`` (a limit),
    ``stop_loss_price`` (a stop) and ``stop_loss_limit_price`` (making the stop a stop-limit).
    """

    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    client_order_id: str | None = None
    extended_hours: bool = False
    source: str = "manual"
    parent_id: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None


@dataclass(slots=True)
class Order:
    """The OMS's record of one order. ``id`` is the client_order_id: unique, chosen by us."""

    id: str
    symbol: str
    side: Side
    qty: Decimal
    type: OrderType
    tif: TimeInForce
    status: OrderStatus
    created_ns: int
    updated_ns: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    broker_order_id: str | None = None
    extended_hours: bool = False
    source: str = "manual"
    parent_id: str | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    reason: str = ""
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @classmethod
    def from_request(cls, req: OrderRequest, order_id: str, ts_ns: int) -> Order:
        return cls(
            id=order_id,
            symbol=req.symbol,
            side=req.side,
            qty=req.qty,
            type=req.type,
            tif=req.tif,
            status=OrderStatus.PENDING_NEW,
            created_ns=ts_ns,
            updated_ns=ts_ns,
            limit_price=req.limit_price,
            stop_price=req.stop_price,
            trail_price=req.trail_price,
            trail_percent=req.trail_percent,
            extended_hours=req.extended_hours,
            source=req.source,
            parent_id=req.parent_id,
            order_class=req.order_class,
            take_profit_price=req.take_profit_price,
            stop_loss_price=req.stop_loss_price,
            stop_loss_limit_price=req.stop_loss_limit_price,
        )


@dataclass(slots=True, frozen=True)
class Fill:
    """One execution. ``id`` is the broker's execution id, unique per fill (idempotency key)."""

    id: str
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    ts_ns: int
    fee: Decimal = ZERO


@dataclass(slots=True, frozen=True)
class OrderUpdate:
    """One message from a broker about one order, shaped like Alpaca's ``trade_updates``.

    ``order_id`` is our client_order_id. ``status``, ``filled_qty`` and
    ``filled_avg_price`` are the broker's view of the order after the event. On
    fills, ``fill`` is the execution. On ``replaced``, ``replaced_by`` names the
    new order's client_order_id.
    """

    event: TradeEvent
    order_id: str
    ts_ns: int
    status: OrderStatus
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    broker_order_id: str | None = None
    fill: Fill | None = None
    position_qty: Decimal | None = None
    replaced_by: str | None = None
    reason: str = ""


@dataclass(slots=True)
class Position:
    """A signed position (negative is short) with average cost and P&L.

    ``realized_pnl`` is gross of fees; fees paid on the symbol are in ``fees``.
    ``last_price`` is the mark used for unrealized P&L.
    """

    symbol: str
    qty: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    last_price: Decimal | None = None

    @property
    def multiplier(self) -> Decimal:
        """Shares per unit held: 100 for an option contract (prices are per share)."""
        return contract_multiplier(self.symbol)

    @property
    def market_value(self) -> Decimal:
        mark = self.last_price if self.last_price is not None else self.avg_cost
        return self.qty * mark * self.multiplier

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.last_price is None or self.qty == ZERO:
            return ZERO
        return (self.last_price - self.avg_cost) * self.qty * self.multiplier

    @property
    def cost_basis(self) -> Decimal:
        return self.qty * self.avg_cost * self.multiplier


@dataclass(slots=True)
class Account:
    """Cash and buying power as the broker reports them (or as the OMS tracks them between reports)."""

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    currency: str = "USD"
    multiplier: Decimal = Decimal(1)
    last_equity: Decimal = field(default=ZERO)
    account_id: str = ""
