"""Orders and fills as SQLite rows, for the engine's stores (the journal, the sim venue's account).

One row layout serves both stores: the columns are the dataclass's fields, in
field order. Decimals are TEXT, so they come back exactly as they went in;
enums are their wire strings; bools are 0/1; ``None`` is NULL. A store keeps
its own extra columns (a sequence, the venue's working state) after these.

Decoding raises ``ValueError``, ``TypeError`` or ``decimal.InvalidOperation``
on a damaged row; the stores turn that into their own error.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from engine.core.models import (
    Fill,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

ORDER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Order))
"""The orders table's columns for ``order_to_row`` and ``order_from_row``: Order's fields."""

# Both stores' schema version 2: Alpaca's order classes (bracket, OCO, OTO) and leg prices.
ORDER_CLASS_MIGRATION = (
    "ALTER TABLE orders ADD COLUMN order_class TEXT NOT NULL DEFAULT 'simple'",
    "ALTER TABLE orders ADD COLUMN take_profit_price TEXT",
    "ALTER TABLE orders ADD COLUMN stop_loss_price TEXT",
    "ALTER TABLE orders ADD COLUMN stop_loss_limit_price TEXT",
)

# The journal's schema version 3: execution algos' parent orders (engine.execution). The
# record is the parent's JSON; state and updated_ns are columns so a reader can filter on them.
PARENTS_MIGRATION = (
    """
    CREATE TABLE parents (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_ns INTEGER NOT NULL,
        record TEXT NOT NULL
    )
    """,
)

FILL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Fill))
"""The fills table's columns for ``fill_to_row`` and ``fill_from_row``: Fill's fields."""


def encode_decimal(value: Decimal | None) -> str | None:
    """A Decimal as exact TEXT; ``None`` as NULL."""
    return None if value is None else str(value)


def decode_decimal(value: str | None) -> Decimal | None:
    """TEXT written by ``encode_decimal`` back as the same Decimal; NULL as ``None``."""
    return None if value is None else Decimal(value)


def decode_int(value: object) -> int:
    """An INTEGER column's value; ``TypeError`` if the row holds something else."""
    # INTEGER affinity keeps text that does not look like a number: a damaged or hand-edited row.
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, found {value!r}")
    return value


def order_to_row(order: Order) -> tuple:
    """``order``'s values in ``ORDER_COLUMNS`` order, as SQLite stores them."""
    return (
        order.id,
        order.symbol,
        order.side.value,
        str(order.qty),
        order.type.value,
        order.tif.value,
        order.status.value,
        order.created_ns,
        order.updated_ns,
        encode_decimal(order.limit_price),
        encode_decimal(order.stop_price),
        encode_decimal(order.trail_price),
        encode_decimal(order.trail_percent),
        str(order.filled_qty),
        encode_decimal(order.filled_avg_price),
        order.broker_order_id,
        int(order.extended_hours),
        order.source,
        order.parent_id,
        order.replaces,
        order.replaced_by,
        order.reason,
        order.order_class.value,
        encode_decimal(order.take_profit_price),
        encode_decimal(order.stop_loss_price),
        encode_decimal(order.stop_loss_limit_price),
    )


def order_from_row(row: tuple) -> Order:
    """The Order a row starting with ``ORDER_COLUMNS`` holds; later columns are ignored."""
    return Order(
        id=row[0],
        symbol=row[1],
        side=Side(row[2]),
        qty=Decimal(row[3]),
        type=OrderType(row[4]),
        tif=TimeInForce(row[5]),
        status=OrderStatus(row[6]),
        created_ns=decode_int(row[7]),
        updated_ns=decode_int(row[8]),
        limit_price=decode_decimal(row[9]),
        stop_price=decode_decimal(row[10]),
        trail_price=decode_decimal(row[11]),
        trail_percent=decode_decimal(row[12]),
        filled_qty=Decimal(row[13]),
        filled_avg_price=decode_decimal(row[14]),
        broker_order_id=row[15],
        extended_hours=bool(row[16]),
        source=row[17],
        parent_id=row[18],
        replaces=row[19],
        replaced_by=row[20],
        reason=row[21],
        order_class=OrderClass(row[22]),
        take_profit_price=decode_decimal(row[23]),
        stop_loss_price=decode_decimal(row[24]),
        stop_loss_limit_price=decode_decimal(row[25]),
    )


def fill_to_row(fill: Fill) -> tuple:
    """``fill``'s values in ``FILL_COLUMNS`` order, as SQLite stores them."""
    return (
        fill.id,
        fill.order_id,
        fill.symbol,
        fill.side.value,
        str(fill.qty),
        str(fill.price),
        fill.ts_ns,
        str(fill.fee),
    )


def fill_from_row(row: tuple) -> Fill:
    """The Fill a row starting with ``FILL_COLUMNS`` holds; later columns are ignored."""
    return Fill(
        id=row[0],
        order_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        qty=Decimal(row[4]),
        price=Decimal(row[5]),
        ts_ns=decode_int(row[6]),
        fee=Decimal(row[7]),
    )
