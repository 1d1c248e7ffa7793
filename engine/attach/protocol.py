"""The attach protocol, version 1: message shapes and their validation.

Every frame is one binary websocket message holding a msgpack map (``codec``).

* The console opens with ``{"type": "hello", "version": 1, "token": str | None}``;
  the engine answers ``{"type": "welcome", "version": 1, "mode": str}`` or
  ``{"type": "error", "id": None, "error": sentence}`` and closes.
* Then ``{"type": "call", "id": int, "op": str, "args": {...}}``, answered by
  ``{"type": "result", "id": int, "value": ...}`` or
  ``{"type": "error", "id": int | None, "error": sentence}``. A rejected call leaves
  the connection open; answers may come in any order, matched by ``id``.

``OPS`` lists each operation's arguments and their types; anything else is
rejected with one sentence saying why, before it reaches the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from engine.attach.codec import CodecError, decode
from engine.client import VAR_PATHS, Cursor
from engine.core.models import OrderClass, OrderRequest, OrderType, Side, TimeInForce

VERSION = 1
MAX_LINE = 500  # characters in one order-language line
MAX_SYMBOL = 32
MAX_PATHS = VAR_PATHS * 5  # Monte Carlo paths one console may ask for


def _str(limit: int):
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        return f"is longer than {limit} characters" if len(value) > limit else None

    return check


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _of(kind: type):
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else f"must be a {kind.__name__}"

    return check


def _number(low: float, high: float, *, integer: bool = False):
    def check(value: Any) -> str | None:
        types_ok = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, types_ok):
            return "must be a whole number" if integer else "must be a number"
        if not (math.isfinite(value) and low <= value <= high):
            return f"must be from {low:g} to {high:g}"
        return None

    return check


def _cursor(value: Any) -> str | None:
    if not isinstance(value, Cursor):
        return "must be a Cursor"
    counts = (value.market, value.book, value.alerts)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return "must hold three whole numbers, zero or more"
    return None


def _positive(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


_REQUEST_ENUMS = (("side", Side), ("type", OrderType), ("tif", TimeInForce))
_REQUEST_PRICES = (
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "take_profit_price",
    "stop_loss_price",
    "stop_loss_limit_price",
)


def _request(value: Any) -> str | None:
    """An order request as the order language would build it: the same path and checks
    follow (risk included), so only its shape is checked here."""
    if not isinstance(value, OrderRequest):
        return "must be an OrderRequest"
    symbol = value.symbol
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol) > MAX_SYMBOL:
        return "needs a symbol"
    if not _positive(value.qty):
        return "needs a quantity above zero"
    for name, enum in _REQUEST_ENUMS:
        if not isinstance(getattr(value, name), enum):
            return f"has a bad {name}"
    if not isinstance(value.order_class, OrderClass):
        return "has a bad order_class"
    for name in _REQUEST_PRICES:
        price = getattr(value, name)
        if price is not None and not _positive(price):
            return f"has a bad {name}: it must be a number above zero"
    texts = (value.source, value.client_order_id or "", value.parent_id or "")
    if not all(isinstance(t, str) and len(t) <= 128 for t in texts):
        return "has a bad source, client_order_id or parent_id"
    if not isinstance(value.extended_hours, bool):
        return "has a bad extended_hours"
    return None


OPS: dict[str, dict[str, Any]] = {
    "snapshot": {"cursor": _cursor},
    "symbols": {},
    "bars": {"symbol": _str(MAX_SYMBOL)},
    "history": {"symbol": _str(MAX_SYMBOL)},
    "preview": {"line": _str(MAX_LINE)},
    "execute": {"line": _str(MAX_LINE), "confirmed": _bool},
    "submit": {"request": _request, "confirmed": _bool},
    "cancel": {"order_ref": _str(MAX_SYMBOL * 2)},
    "kill": {"flatten": _bool},
    "reset_kill": {},
    "option_chain": {"symbol": _str(MAX_SYMBOL)},
    "option_smile": {"symbol": _str(MAX_SYMBOL), "expiry": _of(date)},
    "portfolio_risk": {
        "horizon_days": _number(0.001, 365),
        "confidence": _number(0.5, 0.9999),
        "paths": _number(100, MAX_PATHS, integer=True),
        "seed": _number(0, 2**63 - 1, integer=True),
    },
    "bots": {},
    "approve_opportunity": {"opportunity_id": _str(MAX_SYMBOL * 2)},
    "reject_opportunity": {"opportunity_id": _str(MAX_SYMBOL * 2)},
    "edit_opportunity": {"opportunity_id": _str(MAX_SYMBOL * 2)},
    "start_bot": {"name": _str(MAX_SYMBOL * 2)},
    "stop_bot": {"name": _str(MAX_SYMBOL * 2)},
    "pause_bot": {"name": _str(MAX_SYMBOL * 2)},
    "cycle_bot_mode": {"name": _str(MAX_SYMBOL * 2)},
}
"""Each operation's arguments (all required) and the check of each value."""


class ProtocolError(CodecError):
    """A message that breaks the protocol; ``call_id`` is its id when it had a usable one."""

    def __init__(self, message: str, call_id: int | None = None) -> None:
        super().__init__(message)
        self.call_id = call_id


@dataclass(slots=True, frozen=True)
class Hello:
    version: int
    token: str | None


@dataclass(slots=True, frozen=True)
class Call:
    id: int
    op: str
    args: dict[str, Any]


def _map(frame: bytes | str) -> dict[str, Any]:
    if isinstance(frame, str):
        raise ProtocolError("text frames are not part of the protocol; send binary msgpack")
    message = decode(frame)
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a msgpack map")
    return message


def parse_hello(frame: bytes | str) -> Hello:
    """The console's first message, checked."""
    message = _map(frame)
    if message.get("type") != "hello":
        raise ProtocolError("the first message must be a hello")
    version = message.get("version")
    if version != VERSION:
        raise ProtocolError(f"protocol version {version!r} is not supported; this engine speaks 1")
    token = message.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("the token must be a string")
    return Hello(VERSION, token)


def parse_call(frame: bytes | str) -> Call:
    """One call, checked against ``OPS``; a ``ProtocolError`` says what is wrong."""
    message = _map(frame)
    raw_id = message.get("id")
    call_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
    if message.get("type") != "call":
        raise ProtocolError(f"message type {message.get('type')!r} is not a call", call_id)
    if call_id is None or not 0 <= call_id < 2**63:
        raise ProtocolError("a call needs a whole-number id", None)
    op = message.get("op")
    spec = OPS.get(op) if isinstance(op, str) else None
    if spec is None:
        raise ProtocolError(f"unknown operation {op!r}", call_id)
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(f"{op}: args must be a map", call_id)
    missing = sorted(set(spec) - set(args))
    extra = sorted(set(args) - set(spec))
    if missing or extra:
        wrong = "missing " + ", ".join(missing) if missing else "unexpected " + ", ".join(extra)
        raise ProtocolError(f"{op}: {wrong}", call_id)
    for name, check in spec.items():
        problem = check(args[name])
        if problem is not None:
            raise ProtocolError(f"{op}: {name} {problem}", call_id)
    return Call(call_id, op, args)


def hello(token: str | None) -> dict[str, Any]:
    return {"type": "hello", "version": VERSION, "token": token}


def welcome(mode: str) -> dict[str, Any]:
    return {"type": "welcome", "version": VERSION, "mode": mode}


def call(call_id: int, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", "id": call_id, "op": op, "args": args}


def result(call_id: int, value: Any) -> dict[str, Any]:
    return {"type": "result", "id": call_id, "value": value}


def error(call_id: int | None, message: str) -> dict[str, Any]:
    return {"type": "error", "id": call_id, "error": message}
