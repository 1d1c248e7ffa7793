"""The sim venue's paper account and its file.

The account (cash, positions, every order open or closed, every fill, and the
venue-only state of working orders) is saved as one JSON document with
Decimals as strings. Saves are atomic: a temporary file beside the target,
fsynced, then ``os.replace``d over it, so a crash leaves the old or the new
account, never half of one.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any

from engine.core.errors import BrokerError
from engine.core.models import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

FORMAT = 1

_ORDER_DECIMALS = frozenset(
    {
        "qty",
        "limit_price",
        "stop_price",
        "trail_price",
        "trail_percent",
        "filled_qty",
        "filled_avg_price",
    }
)
_ORDER_ENUMS: dict[str, type[Enum]] = {
    "side": Side,
    "type": OrderType,
    "tif": TimeInForce,
    "status": OrderStatus,
}
_FILL_DECIMALS = frozenset({"qty", "price", "fee"})
_FILL_ENUMS: dict[str, type[Enum]] = {"side": Side}
_POSITION_DECIMALS = frozenset({"qty", "avg_cost", "realized_pnl", "fees", "last_price"})


@dataclass(slots=True)
class WorkingState:
    """What the venue alone knows about a working order."""

    triggered: bool = False  # a stop (or trailing stop) that has fired
    watermark: Decimal | None = None  # a trailing stop's high (sell) or low (buy) water mark


@dataclass(slots=True)
class PaperAccount:
    """The venue's books: its own record of cash, positions, orders and fills."""

    account_id: str
    cash: Decimal
    last_equity: Decimal
    order_seq: int = 0
    fill_seq: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)  # by client_order_id, in arrival order
    working: dict[str, WorkingState] = field(default_factory=dict)  # open orders only
    fills: list[Fill] = field(default_factory=list)

    @classmethod
    def fresh(cls, starting_cash: Decimal) -> PaperAccount:
        # A new id per account keeps venue and execution ids unique across resets,
        # so a journal that outlives a reset never mistakes a new fill for an old one.
        return cls(
            account_id=f"sim-{uuid.uuid4().hex[:12]}",
            cash=starting_cash,
            last_equity=starting_cash,
        )

    def next_order_id(self) -> str:
        self.order_seq += 1
        return f"{self.account_id}-o{self.order_seq}"

    def next_fill_id(self) -> str:
        self.fill_seq += 1
        return f"{self.account_id}-x{self.fill_seq}"


def save_account(account: PaperAccount, path: Path) -> None:
    """Write the account to ``path`` atomically (``OSError`` if the disk refuses)."""
    document = {
        "format": FORMAT,
        "account_id": account.account_id,
        "cash": str(account.cash),
        "last_equity": str(account.last_equity),
        "order_seq": account.order_seq,
        "fill_seq": account.fill_seq,
        "positions": [_encode(p) for p in account.positions.values()],
        "orders": [_encode(o) for o in account.orders.values()],
        "working": {
            order_id: {
                "triggered": state.triggered,
                "watermark": None if state.watermark is None else str(state.watermark),
            }
            for order_id, state in account.working.items()
        },
        "fills": [_encode(f) for f in account.fills],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_account(path: Path) -> PaperAccount:
    """Read the account saved at ``path``; ``BrokerError`` if it is unreadable or corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BrokerError(f"cannot read the sim account file {path}: {error.strerror}") from None
    try:
        return _decode_account(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as error:
        raise BrokerError(
            f"the sim account file {path} is corrupt ({type(error).__name__}: {error}); "
            "start with --reset-sim for a fresh account"
        ) from None


def _decode_account(document: dict[str, Any]) -> PaperAccount:
    if document["format"] != FORMAT:
        raise ValueError(f"unknown format {document['format']!r}")
    positions = [_decode(Position, raw, _POSITION_DECIMALS, {}) for raw in document["positions"]]
    orders = [_decode(Order, raw, _ORDER_DECIMALS, _ORDER_ENUMS) for raw in document["orders"]]
    fills = [_decode(Fill, raw, _FILL_DECIMALS, _FILL_ENUMS) for raw in document["fills"]]
    working = {
        order_id: WorkingState(
            triggered=bool(raw["triggered"]),
            watermark=None if raw["watermark"] is None else Decimal(raw["watermark"]),
        )
        for order_id, raw in document["working"].items()
    }
    account = PaperAccount(
        account_id=str(document["account_id"]),
        cash=Decimal(document["cash"]),
        last_equity=Decimal(document["last_equity"]),
        order_seq=int(document["order_seq"]),
        fill_seq=int(document["fill_seq"]),
        positions={p.symbol: p for p in positions},
        orders={o.id: o for o in orders},
        working=working,
        fills=fills,
    )
    open_ids = {o.id for o in orders if o.status.is_open}
    if open_ids != set(working):
        mismatched = sorted(open_ids.symmetric_difference(working))[0]
        raise ValueError(f"order {mismatched} is open or working, but not both")
    return account


def _encode(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _decode(
    cls: type, raw: dict[str, Any], decimals: frozenset[str], enums: dict[str, type[Enum]]
) -> Any:
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue  # an optional field an older file did not write keeps its default
        value = raw[f.name]
        if value is not None and f.name in decimals:
            value = Decimal(value)
        elif f.name in enums:
            value = enums[f.name](value)
        values[f.name] = value
    return cls(**values)
