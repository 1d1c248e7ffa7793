"""Alpaca's REST and trade_updates JSON as engine models, and Alpaca's errors as typed errors.

Every function takes the decoded JSON (a dict, as ``TradingClient(raw_data=True)``
and the trade stream give it) and returns an engine record. Alpaca sends decimals
as strings (sometimes as JSON numbers); both become exact ``Decimal``. Timestamps
are RFC 3339 with up to nanosecond precision and any offset; they become ``ts_ns``.

Ids: the engine's order id is Alpaca's ``client_order_id``; Alpaca's own ``id`` is
``broker_order_id``. Alpaca names related orders (``replaces``, ``replaced_by``) by
its own ids, so ``OrderIds`` remembers which client id each broker id belongs to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.core.clock import NEW_YORK, NS_PER_SECOND, datetime_to_ns
from engine.core.errors import BrokerError, BrokerRejected, BrokerUnavailable, RateLimited
from engine.core.models import (
    Account,
    Bar,
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
    Trade,
    TradeEvent,
)
from engine.core.prices import ZERO, to_decimal
from engine.execution.brackets import STOP_LOSS, TAKE_PROFIT

_RFC3339 = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?\d*(Z|z|[+-]\d\d:?\d\d)?$"
)


def parse_ts_ns(text: str) -> int:
    """RFC 3339 (``2022-04-19T13:45:04.981350886-04:00``) as exact ns since the epoch, UTC.

    ``ValueError`` if ``text`` is not such a timestamp; a missing offset means UTC.
    """
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not an RFC 3339 timestamp")
    day, clock, fraction, offset = match.groups()
    if offset is None or offset in ("Z", "z"):
        offset = "+00:00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    whole = datetime.fromisoformat(f"{day}T{clock}{offset}")
    nanos = int((fraction or "0").ljust(9, "0"))
    return datetime_to_ns(whole) + nanos


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _enum_or(kind: type, value: Any, default: Any) -> Any:
    return kind(value) if value else default


# -- orders ------------------------------------------------------------------------------


class OrderIds:
    """Which client_order_id each Alpaca order id belongs to, and replacements in flight.

    The broker learns pairs from every REST answer and trade update; the trade stream
    asks it to name a replaced order's successor by our id.
    """

    __slots__ = ("_by_broker", "_by_client", "_legs", "_replacements")

    def __init__(self) -> None:
        self._by_broker: dict[str, str] = {}
        self._by_client: dict[str, str] = {}
        self._legs: dict[str, str] = {}  # Alpaca's id of a bracket/OTO/OCO leg -> our leg id
        self._replacements: dict[str, str] = {}

    def learn(self, broker_order_id: str | None, client_order_id: str | None) -> None:
        if broker_order_id and client_order_id and broker_order_id not in self._legs:
            self._by_broker[broker_order_id] = client_order_id
            self._by_client[client_order_id] = broker_order_id

    def learn_legs(self, entry_client_id: str, legs: Any) -> None:
        """Name the legs Alpaca made for our order ``entry_client_id`` as the engine names
        them (``engine.execution.brackets``): the entry's id plus ``-tp`` for the take-profit
        limit, ``-sl`` for the stop. Alpaca gives legs client ids of its own choosing, which
        the OMS would not know; by our names it adopts them as it does the sim's legs."""
        for leg in legs:
            broker_id = leg.get("id") if isinstance(leg, dict) else None
            if not broker_id:
                continue
            suffix = TAKE_PROFIT if leg.get("type") == OrderType.LIMIT else STOP_LOSS
            ours = entry_client_id + suffix
            self._legs[broker_id] = ours
            self._by_broker[broker_id] = ours
            self._by_client[ours] = broker_id

    def leg_id(self, broker_order_id: str | None) -> str | None:
        """Our id for a leg Alpaca made, or None when ``broker_order_id`` is not a leg's."""
        return self._legs.get(broker_order_id) if broker_order_id else None

    def client_id(self, broker_order_id: str | None) -> str | None:
        return self._by_broker.get(broker_order_id) if broker_order_id else None

    def broker_id(self, client_order_id: str) -> str | None:
        return self._by_client.get(client_order_id)

    def expect_replacement(self, old_client_id: str, new_client_id: str) -> None:
        """A replace was sent: ``old_client_id``'s successor will be ``new_client_id``."""
        self._replacements[old_client_id] = new_client_id

    def replacement_of(self, old_client_id: str, broker_replaced_by: str | None) -> str | None:
        """The successor's client id: from Alpaca's ``replaced_by`` if known, else the one we sent."""
        return self.client_id(broker_replaced_by) or self._replacements.get(old_client_id)


def order_from_alpaca(data: dict[str, Any], ids: OrderIds | None = None) -> Order:
    """An Alpaca Order (REST or ``trade_updates.order``) as the engine's Order.

    A notional order (``qty`` null) gets its filled quantity as ``qty``: tickdeck never
    sends notional orders, so these only come from other clients of the account.
    ``KeyError``/``ValueError`` on a payload without the fields every order has.
    """
    filled_qty = _decimal(data.get("filled_qty")) or ZERO
    qty = _decimal(data.get("qty"))
    ids = ids or OrderIds()
    legs = data.get("legs") or ()
    order_id = ids.leg_id(data.get("id")) or data["client_order_id"]
    if legs:
        ids.learn_legs(order_id, legs)
    take_profit, stop_loss, stop_loss_limit = _leg_prices(legs)
    order_type = data.get("type") or data.get("order_type") or "market"
    return Order(
        id=order_id,
        symbol=data.get("symbol") or "",
        side=_enum_or(Side, data.get("side"), Side.BUY),
        qty=qty if qty is not None else filled_qty,
        type=OrderType(order_type),
        tif=TimeInForce(data["time_in_force"]),
        status=OrderStatus(data["status"]),
        created_ns=parse_ts_ns(data["created_at"]),
        updated_ns=parse_ts_ns(data.get("updated_at") or data["created_at"]),
        limit_price=_decimal(data.get("limit_price")),
        stop_price=_decimal(data.get("stop_price")),
        trail_price=_decimal(data.get("trail_price")),
        trail_percent=_decimal(data.get("trail_percent")),
        filled_qty=filled_qty,
        # Alpaca reports 0 (not null) as the average price of an unfilled order in some answers.
        filled_avg_price=_decimal(data.get("filled_avg_price")) if filled_qty else None,
        broker_order_id=data.get("id"),
        extended_hours=bool(data.get("extended_hours")),
        source="broker",
        replaces=ids.client_id(data.get("replaces")),
        replaced_by=ids.client_id(data.get("replaced_by")),
        order_class=_order_class(data.get("order_class")),
        take_profit_price=take_profit,
        stop_loss_price=stop_loss,
        stop_loss_limit_price=stop_loss_limit,
    )


def _order_class(value: str | None) -> OrderClass:
    # alpaca-py coerces a missing or empty order_class to simple; mleg (options) has no engine twin.
    if not value or value == "mleg":
        return OrderClass.SIMPLE
    return OrderClass(value)


def _leg_prices(legs: Any) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    take_profit = stop_loss = stop_loss_limit = None
    for leg in legs:
        leg_type = leg.get("type")
        if leg_type == OrderType.LIMIT:
            take_profit = _decimal(leg.get("limit_price"))
        elif leg_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            stop_loss = _decimal(leg.get("stop_price"))
            stop_loss_limit = _decimal(leg.get("limit_price"))
    return take_profit, stop_loss, stop_loss_limit


def fill_from_activity(data: dict[str, Any], ids: OrderIds | None = None) -> Fill:
    """A FILL account activity (``/v2/account/activities/FILL``) as a Fill.

    The activity names the order by Alpaca's id; ``ids`` turns it into ours (it stays
    Alpaca's id when unknown, so reconciliation reports it as a foreign order's fill).
    """
    broker_id = data["order_id"]
    return Fill(
        id=data["id"],
        order_id=(ids.client_id(broker_id) if ids else None) or broker_id,
        symbol=data["symbol"],
        side=Side(data["side"]),
        qty=to_decimal(data["qty"]),
        price=to_decimal(data["price"]),
        ts_ns=parse_ts_ns(data["transaction_time"]),
    )


class TradeUpdateError(ValueError):
    """A trade_updates message that cannot become an OrderUpdate (unknown event, no timestamp)."""


def order_update_from_alpaca(data: dict[str, Any], ids: OrderIds | None = None) -> OrderUpdate:
    """A ``trade_updates`` message's ``data`` as an OrderUpdate.

    Fills carry a Fill whose id is Alpaca's ``execution_id`` (the OMS's idempotency key).
    ``TradeUpdateError`` for an event the engine does not know or a missing timestamp.
    """
    event_name = data.get("event")
    try:
        event = TradeEvent(event_name)
    except ValueError:
        raise TradeUpdateError(f"unknown trade_updates event '{event_name}'") from None
    stamp = data.get("timestamp")
    if not stamp:
        raise TradeUpdateError(f"a '{event_name}' trade update has no timestamp")
    ids = ids or OrderIds()
    raw = data["order"]
    ids.learn(raw.get("id"), raw.get("client_order_id"))
    order = order_from_alpaca(raw, ids)
    ts_ns = parse_ts_ns(stamp)
    fill = None
    if event in (TradeEvent.FILL, TradeEvent.PARTIAL_FILL):
        execution_id = data.get("execution_id") or f"{raw.get('id')}:{order.filled_qty}"
        fill = Fill(
            id=execution_id,
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=to_decimal(data["qty"]),
            price=to_decimal(data["price"]),
            ts_ns=ts_ns,
        )
    replaced_by = None
    if event is TradeEvent.REPLACED:
        replaced_by = ids.replacement_of(order.id, raw.get("replaced_by"))
    return OrderUpdate(
        event=event,
        order_id=order.id,
        ts_ns=ts_ns,
        status=order.status,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price,
        broker_order_id=order.broker_order_id,
        fill=fill,
        position_qty=_decimal(data.get("position_qty")),
        replaced_by=replaced_by,
        reason=str(data.get("reason") or ""),
    )


# -- account, positions, assets ----------------------------------------------------------


def account_from_alpaca(data: dict[str, Any]) -> Account:
    """``/v2/account`` as an Account (cash, equity, buying power, multiplier, last equity)."""
    return Account(
        cash=to_decimal(data["cash"]),
        equity=to_decimal(data.get("equity") or data.get("portfolio_value") or data["cash"]),
        buying_power=to_decimal(data.get("buying_power") or data["cash"]),
        currency=data.get("currency") or "USD",
        multiplier=_decimal(data.get("multiplier")) or Decimal(1),
        last_equity=_decimal(data.get("last_equity")) or ZERO,
        account_id=data.get("id") or "",
    )


def position_from_alpaca(data: dict[str, Any]) -> Position:
    """A ``/v2/positions`` entry as a signed Position (Alpaca's short qty is already negative).

    Alpaca does not report realized P&L per position, so it is zero here.
    """
    qty = to_decimal(data["qty"])
    if data.get("side") == "short" and qty > ZERO:
        qty = -qty
    return Position(
        symbol=data["symbol"],
        qty=qty,
        avg_cost=to_decimal(data["avg_entry_price"]),
        last_price=_decimal(data.get("current_price")),
    )


def instrument_from_alpaca(data: dict[str, Any]) -> Instrument:
    """A ``/v2/assets`` entry as an Instrument; an inactive asset is not tradable."""
    return Instrument(
        symbol=data["symbol"],
        name=data.get("name") or "",
        tradable=bool(data.get("tradable")) and data.get("status", "active") == "active",
        shortable=bool(data.get("shortable")),
        easy_to_borrow=bool(data.get("easy_to_borrow")),
        fractionable=bool(data.get("fractionable")),
    )


# -- market hours and options ------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class MarketClock:
    """``/v2/clock``: whether the market is open now and when it next opens and closes."""

    ts_ns: int
    is_open: bool
    next_open_ns: int
    next_close_ns: int


@dataclass(slots=True, frozen=True)
class TradingDay:
    """One ``/v2/calendar`` day: the regular session's open and close, in ns UTC."""

    day: date
    open_ns: int
    close_ns: int


@dataclass(slots=True, frozen=True)
class OptionContract:
    """One ``/v2/options/contracts`` entry. ``size`` is the shares per contract (the multiplier)."""

    symbol: str
    underlying: str
    type: str  # "call" | "put"
    style: str  # "american" | "european"
    strike: Decimal
    expiration: date
    size: int
    tradable: bool
    open_interest: int | None = None
    close_price: Decimal | None = None


def market_clock_from_alpaca(data: dict[str, Any]) -> MarketClock:
    return MarketClock(
        ts_ns=parse_ts_ns(data["timestamp"]),
        is_open=bool(data["is_open"]),
        next_open_ns=parse_ts_ns(data["next_open"]),
        next_close_ns=parse_ts_ns(data["next_close"]),
    )


def trading_day_from_alpaca(data: dict[str, Any]) -> TradingDay:
    """A calendar day; its ``open``/``close`` are New York wall times ("09:30")."""
    day = date.fromisoformat(data["date"])

    def at(hhmm: str) -> int:
        hour, minute = (int(part) for part in hhmm.split(":")[:2])
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)
        return datetime_to_ns(moment)

    return TradingDay(day=day, open_ns=at(data["open"]), close_ns=at(data["close"]))


def option_contract_from_alpaca(data: dict[str, Any]) -> OptionContract:
    open_interest = data.get("open_interest")
    return OptionContract(
        symbol=data["symbol"],
        underlying=data.get("underlying_symbol") or data.get("root_symbol") or "",
        type=data["type"],
        style=data.get("style") or "american",
        strike=to_decimal(data["strike_price"]),
        expiration=date.fromisoformat(data["expiration_date"]),
        size=int(to_decimal(data.get("size") or 100)),
        tradable=bool(data.get("tradable")),
        open_interest=int(to_decimal(open_interest)) if open_interest not in (None, "") else None,
        close_price=_decimal(data.get("close_price")),
    )


# -- historical market data --------------------------------------------------------------


def bar_from_alpaca(symbol: str, data: dict[str, Any], timeframe: str = "1Min") -> Bar:
    """A historical bar (``t o h l c v``) as a Bar."""
    return Bar(
        symbol=symbol,
        ts_ns=parse_ts_ns(data["t"]),
        open=to_decimal(data["o"]),
        high=to_decimal(data["h"]),
        low=to_decimal(data["l"]),
        close=to_decimal(data["c"]),
        volume=int(data["v"]),
        timeframe=timeframe,
    )


def quote_from_alpaca(symbol: str, data: dict[str, Any]) -> Quote:
    """A historical or latest quote (``t bp bs ap as``) as a Quote."""
    return Quote(
        symbol=symbol,
        ts_ns=parse_ts_ns(data["t"]),
        bid=to_decimal(data["bp"]),
        bid_size=int(data["bs"]),
        ask=to_decimal(data["ap"]),
        ask_size=int(data["as"]),
    )


def trade_from_alpaca(symbol: str, data: dict[str, Any]) -> Trade:
    """A historical or latest trade (``t p s x``) as a Trade."""
    return Trade(
        symbol=symbol,
        ts_ns=parse_ts_ns(data["t"]),
        price=to_decimal(data["p"]),
        size=int(data["s"]),
        exchange=data.get("x") or "",
    )


# -- errors ------------------------------------------------------------------------------


def error_from_response(
    status: int | None, body: str, retry_after: str | None = None
) -> BrokerError:
    """An HTTP error answer as a typed error whose sentence is Alpaca's ``message``.

    429 is ``RateLimited`` (with ``Retry-After`` in seconds when given), any other status
    a ``BrokerRejected``; no status at all (the request never got an answer) is
    ``BrokerUnavailable``.
    """
    message, code = _error_body(body)
    if status is None:
        return BrokerUnavailable(message or "Alpaca cannot be reached")
    if status == 429:
        return RateLimited(message or "rate limit exceeded", _seconds(retry_after))
    return BrokerRejected(status, message or f"Alpaca answered HTTP {status}", code)


def _error_body(body: str) -> tuple[str, int | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200], None
    if not isinstance(data, dict):
        return body.strip()[:200], None
    code = data.get("code")
    return str(data.get("message") or ""), code if isinstance(code, int) else None


def _seconds(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None


def retry_after_ns(error: RateLimited, default_ns: int) -> int:
    """How long to wait before retrying after ``error``: Retry-After if given, else ``default_ns``."""
    if error.retry_after_s is None:
        return default_ns
    return int(error.retry_after_s * NS_PER_SECOND)
