"""The exit legs of bracket, OTO and OCO orders, as the sim venue emulates them.

Alpaca works these natively (the OMS sends ``order_class`` with the leg prices).
The sim venue emulates them with real leg orders: a bracket's or OTO's legs come
to life when its entry has filled completely; an OCO order is itself the
take-profit limit and its stop leg works beside it from the start. Within a pair,
the first fill of one leg cancels the other.

A leg's id is its entry's id plus ``-tp`` or ``-sl``, and its terms follow from the
entry alone, so the venue that creates a leg and the OMS that first hears of it
from the venue's updates build the same order (``legs``), with nothing more to store.
"""

from __future__ import annotations

from engine.core.models import Order, OrderClass, OrderStatus, OrderType, Side

TAKE_PROFIT = "-tp"
STOP_LOSS = "-sl"


def leg_ids(entry: Order) -> tuple[str, ...]:
    """The ids of the legs ``entry`` has (or will have once it fills)."""
    match entry.order_class:
        case OrderClass.OCO:
            return (entry.id + STOP_LOSS,)
        case OrderClass.SIMPLE:
            return ()
    ids = []
    if entry.take_profit_price is not None:
        ids.append(entry.id + TAKE_PROFIT)
    if entry.stop_loss_price is not None:
        ids.append(entry.id + STOP_LOSS)
    return tuple(ids)


def legs(entry: Order, ts_ns: int) -> list[Order]:
    """New leg orders for ``entry`` (status pending_new, created at ``ts_ns``).

    A bracket's and an OTO's legs close what the entry opened: the opposite side,
    the entry's quantity. An OCO's stop leg is on the OCO order's own side.
    """
    exit_side: Side = entry.side if entry.order_class is OrderClass.OCO else entry.side.opposite
    made = []
    for leg_id in leg_ids(entry):
        stop_leg = leg_id.endswith(STOP_LOSS)
        if stop_leg:
            limit = entry.stop_loss_limit_price
            order_type = OrderType.STOP if limit is None else OrderType.STOP_LIMIT
            stop = entry.stop_loss_price
        else:
            order_type, limit, stop = OrderType.LIMIT, entry.take_profit_price, None
        made.append(
            Order(
                id=leg_id,
                symbol=entry.symbol,
                side=exit_side,
                qty=entry.qty,
                type=order_type,
                tif=entry.tif,
                status=OrderStatus.PENDING_NEW,
                created_ns=ts_ns,
                updated_ns=ts_ns,
                limit_price=limit,
                stop_price=stop,
                source=entry.source,
                parent_id=entry.id,
            )
        )
    return made


def entry_id(leg_id: str) -> str | None:
    """The entry's id for a leg id, or None for an id that is not a leg's."""
    for suffix in (TAKE_PROFIT, STOP_LOSS):
        if leg_id.endswith(suffix):
            return leg_id[: -len(suffix)]
    return None


def sibling_ids(order: Order) -> tuple[str, ...]:
    """The orders a fill of ``order`` cancels: the other leg of its pair.

    An OCO order and its stop leg cancel each other; a bracket's two legs cancel
    each other; an OTO's single leg and any entry cancel nothing.
    """
    if order.order_class is OrderClass.OCO:
        return (order.id + STOP_LOSS,)
    parent = order.parent_id
    if parent is None or entry_id(order.id) != parent:
        return ()
    if order.id.endswith(STOP_LOSS):
        return (parent + TAKE_PROFIT, parent)  # the entry, for an OCO's stop leg
    return (parent + STOP_LOSS,)
