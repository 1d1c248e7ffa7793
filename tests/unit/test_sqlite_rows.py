"""Orders and fills as SQLite rows: what a store's row may add, and what a damaged row raises.

Exact round trips of every field are the stores' tests: test_journal through the
journal's file, test_sim_store through the sim venue's account file.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.core.models import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.sqlite_rows import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    fill_from_row,
    fill_to_row,
    order_from_row,
    order_to_row,
)

D = Decimal


def limit_order(order_id: str) -> Order:
    return Order(
        id=order_id,
        symbol="IBM",
        side=Side.BUY,
        qty=D(5),
        type=OrderType.LIMIT,
        tif=TimeInForce.DAY,
        status=OrderStatus.NEW,
        created_ns=1,
        updated_ns=2,
        limit_price=D("150.25"),
    )


def test_an_order_row_has_one_value_per_column():
    assert len(order_to_row(limit_order("td-1"))) == len(ORDER_COLUMNS)


def test_a_fill_row_has_one_value_per_column():
    fill = Fill("x-1", "td-1", "IBM", Side.BUY, D(5), D("150.25"), 3)
    assert len(fill_to_row(fill)) == len(FILL_COLUMNS)


def test_a_stores_own_columns_after_the_orders_are_ignored():
    order = limit_order("td-2")
    assert order_from_row((*order_to_row(order), 7, 1, "150.00")) == order


def test_an_order_row_whose_timestamp_is_text_is_a_type_error():
    row = list(order_to_row(limit_order("td-3")))
    row[ORDER_COLUMNS.index("created_ns")] = "yesterday"

    with pytest.raises(TypeError, match="yesterday"):
        order_from_row(tuple(row))


def test_a_fill_row_whose_timestamp_is_text_is_a_type_error():
    row = list(fill_to_row(Fill("x-2", "td-1", "IBM", Side.BUY, D(1), D(2), 3)))
    row[FILL_COLUMNS.index("ts_ns")] = "3 o'clock"

    with pytest.raises(TypeError, match="3 o'clock"):
        fill_from_row(tuple(row))
