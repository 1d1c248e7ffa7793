"""Alpaca's wire shapes, built from engine models: the local Alpaca server's side of the protocol.

REST payloads are JSON-ready dicts with Alpaca's conventions (decimals as
strings, RFC 3339 timestamps with nanoseconds, UUID ids). Market-data stream
messages are dicts with Alpaca's one-letter keys, floats for prices (as Alpaca
sends them) and a ``msgpack.Timestamp`` in ``t``; ``json_ready`` turns one into
its JSON-text form. See ``shared/design/alpaca-protocol.md`` for the facts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgpack

from engine.core.clock import NEW_YORK, NS_PER_SECOND
from engine.core.models import (
    Account,
    Bar,
    Fill,
    Instrument,
    Order,
    OrderUpdate,
    Position,
    Quote,
    Trade,
)
from engine.core.prices import ZERO, is_option_symbol

Json = dict[str, Any]

ASSET_NAMESPACE = uuid.UUID("5f3c8d1e-7a2b-4c6d-9e0f-1a2b3c4d5e6f")
"""Asset and execution ids are UUIDv5 in this namespace: stable across runs."""

# Listing exchange (Alpaca's AssetExchange) and SIP tape of the symbols the sim knows.
_LISTINGS: dict[str, tuple[str, str]] = {
    "SPY": ("ARCA", "B"),
    "JPM": ("NYSE", "A"),
    "JNJ": ("NYSE", "A"),
    "WMT": ("NYSE", "A"),
    "PG": ("NYSE", "A"),
    "XOM": ("NYSE", "A"),
    "UNH": ("NYSE", "A"),
    "HD": ("NYSE", "A"),
    "BAC": ("NYSE", "A"),
    "KO": ("NYSE", "A"),
    "DIS": ("NYSE", "A"),
}
_DEFAULT_LISTING = ("NASDAQ", "C")
_EXCHANGE_CODE = "V"  # IEX: the only venue a free plan's stream shows


@dataclass(slots=True)
class OrderRecord:
    """An order as the Alpaca server holds it: the engine order plus Alpaca's ids and times.

    ``order.id`` is the client_order_id; ``alpaca_id`` the server's UUID. The
    ``*_ns`` times are 0 until the event happens.
    """

    order: Order
    alpaca_id: str
    submitted_ns: int
    filled_ns: int = 0
    canceled_ns: int = 0
    expired_ns: int = 0
    replaced_ns: int = 0
    failed_ns: int = 0
    replaces_id: str | None = None
    replaced_by_id: str | None = None


def asset_id(symbol: str) -> str:
    """The stable UUID the server gives ``symbol``."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol))


def execution_id(fill: Fill) -> str:
    """A UUID for an execution (alpaca-py parses ``execution_id`` as one)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, f"fill:{fill.id}"))


def listing(symbol: str) -> tuple[str, str]:
    """(listing exchange, SIP tape) of ``symbol``."""
    return _LISTINGS.get(symbol, _DEFAULT_LISTING)


def rfc3339(ts_ns: int) -> str:
    """``2024-01-02T15:04:05.123456789Z``: UTC with all nine digits, as Alpaca writes times."""
    seconds, nanos = divmod(ts_ns, NS_PER_SECOND)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def rfc3339_or_none(ts_ns: int) -> str | None:
    return rfc3339(ts_ns) if ts_ns else None


def new_york_iso(ts_ns: int) -> str:
    """New York local time with its offset, as ``/v2/clock`` writes it."""
    moment = datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=NEW_YORK)
    return moment.isoformat()


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def error_body(code: int, message: str) -> Json:
    """Alpaca's trading-API error: an 8-digit ``code`` and a ``message``."""
    return {"code": code, "message": message}


def order_json(record: OrderRecord) -> Json:
    """The REST ``Order`` object for ``record``."""
    order = record.order
    return {
        "id": record.alpaca_id,
        "client_order_id": order.id,
        "created_at": rfc3339(record.submitted_ns),
        "updated_at": rfc3339(max(order.updated_ns, record.submitted_ns)),
        "submitted_at": rfc3339(record.submitted_ns),
        "filled_at": rfc3339_or_none(record.filled_ns),
        "expired_at": rfc3339_or_none(record.expired_ns),
        "expires_at": None,
        "canceled_at": rfc3339_or_none(record.canceled_ns),
        "failed_at": rfc3339_or_none(record.failed_ns),
        "replaced_at": rfc3339_or_none(record.replaced_ns),
        "replaced_by": record.replaced_by_id,
        "replaces": record.replaces_id,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": str(order.qty),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": _text(order.filled_avg_price),
        "order_class": order.order_class.value,
        "order_type": order.type.value,
        "type": order.type.value,
        "side": order.side.value,
        "position_intent": None,
        "time_in_force": order.tif.value,
        "limit_price": _text(order.limit_price),
        "stop_price": _text(order.stop_price),
        "status": order.status.value,
        "extended_hours": order.extended_hours,
        "legs": None,
        "trail_percent": _text(order.trail_percent),
        "trail_price": _text(order.trail_price),
        "hwm": None,
        "source": None,
        "subtag": None,
    }


def trade_update_json(update: OrderUpdate, record: OrderRecord) -> Json:
    """One ``trade_updates`` stream message; fills carry price, qty, position_qty and execution_id."""
    data: Json = {
        "event": update.event.value,
        "timestamp": rfc3339(update.ts_ns),
        "order": order_json(record),
    }
    if update.fill is not None:
        data["execution_id"] = execution_id(update.fill)
        data["price"] = str(update.fill.price)
        data["qty"] = str(update.fill.qty)
        data["position_qty"] = str(update.position_qty if update.position_qty is not None else ZERO)
    if update.reason:
        data["reason"] = update.reason
    return {"stream": "trade_updates", "data": data}


def fill_activity_json(fill: Fill, record: OrderRecord, cum_qty: Decimal) -> Json:
    """A FILL account activity. Its ``id`` is the execution id the fill had on the trade stream
    (real Alpaca activity ids differ; this lets a client match the two)."""
    order = record.order
    return {
        "id": execution_id(fill),
        "activity_type": "FILL",
        "transaction_time": rfc3339(fill.ts_ns),
        "type": "fill" if cum_qty >= order.qty else "partial_fill",
        "price": str(fill.price),
        "qty": str(fill.qty),
        "side": fill.side.value,
        "symbol": fill.symbol,
        "leaves_qty": str(order.qty - cum_qty),
        "order_id": record.alpaca_id,
        "cum_qty": str(cum_qty),
        "order_status": order.status.value,
    }


def position_json(position: Position) -> Json:
    """The REST ``Position`` object (signed ``qty``; ``side`` long or short)."""
    exchange, _ = listing(position.symbol)
    price = position.last_price if position.last_price is not None else position.avg_cost
    cost_basis = position.cost_basis
    market_value = position.market_value
    unrealized = market_value - cost_basis
    plpc = unrealized / abs(cost_basis) if cost_basis else ZERO
    return {
        "asset_id": asset_id(position.symbol),
        "symbol": position.symbol,
        "exchange": exchange,
        "asset_class": "us_option" if is_option_symbol(position.symbol) else "us_equity",
        "asset_marginable": True,
        "avg_entry_price": str(position.avg_cost),
        "qty": str(position.qty),
        "qty_available": str(position.qty),
        "side": "long" if position.qty > ZERO else "short",
        "market_value": str(market_value),
        "cost_basis": str(cost_basis),
        "unrealized_pl": str(unrealized),
        "unrealized_plpc": str(plpc),
        "unrealized_intraday_pl": str(unrealized),
        "unrealized_intraday_plpc": str(plpc),
        "current_price": str(price),
        "lastday_price": str(price),
        "change_today": "0",
    }


def account_json(account: Account, positions: list[Position], created_ns: int) -> Json:
    """The REST ``TradeAccount`` object: cash, equity and buying power from the sim venue."""
    long_value = sum((p.market_value for p in positions if p.qty > ZERO), ZERO)
    short_value = sum((p.market_value for p in positions if p.qty < ZERO), ZERO)
    account_id = str(uuid.uuid5(ASSET_NAMESPACE, f"account:{account.account_id}"))
    return {
        "id": account_id,
        "account_number": f"PA{account_id.replace('-', '')[:10].upper()}",
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": account.currency,
        "cash": str(account.cash),
        "portfolio_value": str(account.equity),
        "equity": str(account.equity),
        "last_equity": str(account.last_equity),
        "buying_power": str(account.buying_power),
        "regt_buying_power": str(account.buying_power),
        "non_marginable_buying_power": str(account.cash),
        "multiplier": str(account.multiplier),
        "long_market_value": str(long_value),
        "short_market_value": str(short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "sma": "0",
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "shorting_enabled": True,
        "created_at": rfc3339(created_ns),
    }


def asset_json(instrument: Instrument) -> Json:
    """The REST ``Asset`` object; the flags the risk checks read come from the instrument."""
    exchange, _ = listing(instrument.symbol)
    return {
        "id": asset_id(instrument.symbol),
        "class": "us_equity",
        "exchange": exchange,
        "symbol": instrument.symbol,
        "name": instrument.name or instrument.symbol,
        "status": "active",
        "tradable": instrument.tradable,
        "marginable": True,
        "shortable": instrument.shortable,
        "easy_to_borrow": instrument.easy_to_borrow,
        "fractionable": instrument.fractionable,
        "maintenance_margin_requirement": 30,
        "attributes": [],
    }


def clock_json(now_ns: int, is_open: bool, next_open_ns: int, next_close_ns: int) -> Json:
    """The REST ``Clock`` object, times in New York local time with offset."""
    return {
        "timestamp": new_york_iso(now_ns),
        "is_open": is_open,
        "next_open": new_york_iso(next_open_ns),
        "next_close": new_york_iso(next_close_ns),
    }


def calendar_json(day: date, open_hhmm: str, close_hhmm: str) -> Json:
    """One REST ``Calendar`` day."""
    return {
        "date": day.isoformat(),
        "open": open_hhmm,
        "close": close_hhmm,
        "session_open": "0400",
        "session_close": "2000",
        "settlement_date": day.isoformat(),
    }


def stream_quote(quote: Quote) -> Json:
    """A market-data stream quote (``T:"q"``)."""
    _, tape = listing(quote.symbol)
    return {
        "T": "q",
        "S": quote.symbol,
        "bx": _EXCHANGE_CODE,
        "bp": float(quote.bid),
        "bs": quote.bid_size,
        "ax": _EXCHANGE_CODE,
        "ap": float(quote.ask),
        "as": quote.ask_size,
        "c": ["R"],
        "z": tape,
        "t": msgpack.Timestamp.from_unix_nano(quote.ts_ns),
    }


def stream_trade(trade: Trade, trade_id: int) -> Json:
    """A market-data stream trade (``T:"t"``)."""
    _, tape = listing(trade.symbol)
    return {
        "T": "t",
        "S": trade.symbol,
        "i": trade_id,
        "x": trade.exchange or _EXCHANGE_CODE,
        "p": float(trade.price),
        "s": trade.size,
        "c": ["@"],
        "z": tape,
        "t": msgpack.Timestamp.from_unix_nano(trade.ts_ns),
    }


def stream_bar(bar: Bar, trade_count: int, vwap: Decimal, kind: str = "b") -> Json:
    """A market-data stream bar: ``kind`` "b" minute, "u" updated, "d" daily; ``n``/``vw`` included."""
    return {
        "T": kind,
        "S": bar.symbol,
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": bar.volume,
        "t": msgpack.Timestamp.from_unix_nano(bar.ts_ns),
        "n": trade_count,
        "vw": float(vwap),
    }


def rest_bar(bar: Bar, trade_count: int, vwap: Decimal) -> Json:
    """A market-data REST bar (``t`` as an RFC 3339 string)."""
    return {
        "t": rfc3339(bar.ts_ns),
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": bar.volume,
        "n": trade_count,
        "vw": float(vwap),
    }


def rest_quote(quote: Quote) -> Json:
    """A market-data REST quote."""
    message = stream_quote(quote)
    del message["T"], message["S"]
    message["t"] = rfc3339(quote.ts_ns)
    return message


def rest_trade(trade: Trade, trade_id: int) -> Json:
    """A market-data REST trade."""
    message = stream_trade(trade, trade_id)
    del message["T"], message["S"]
    message["t"] = rfc3339(trade.ts_ns)
    return message


def json_ready(message: Json) -> Json:
    """A stream message with its msgpack Timestamps as RFC 3339 strings (the JSON-text encoding)."""
    return {
        key: rfc3339(value.to_unix_nano()) if isinstance(value, msgpack.Timestamp) else value
        for key, value in message.items()
    }
