"""The parent order: what the trader asked an algo to do, its state and its progress."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from engine.core.models import Side, TimeInForce
from engine.core.prices import ZERO
from engine.execution.spec import AlgoSpec, algo_name, spec_from_dict


class ParentState(StrEnum):
    WORKING = "working"
    PAUSED = "paused"  # no new children until resumed; the trader or a refused child paused it
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (ParentState.COMPLETED, ParentState.CANCELED, ParentState.FAILED)


@dataclass(slots=True)
class Parent:
    """One algo order. The service owns it and mutates it; everyone else only reads.

    ``filled_qty``/``notional``/``fees`` sum the children's executions;
    ``market_volume``/``market_notional`` are the symbol's traded volume and value
    since ``start_ns`` (for participation and the interval VWAP). ``arrival_price``
    is the mid when the algo started; ``last_price`` the latest trade or mid. ``owner`` is
    who asked ("manual", "bot:momentum"): the children carry the algo as their source, and
    the owner is how a bot's algo fills are credited to the bot.
    """

    id: str
    symbol: str
    side: Side
    qty: Decimal
    spec: AlgoSpec
    created_ns: int
    start_ns: int
    end_ns: int | None = None  # TWAP and VWAP finish their schedule by then
    limit_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    state: ParentState = ParentState.WORKING
    reason: str = ""
    updated_ns: int = 0
    arrival_price: Decimal | None = None
    last_price: Decimal | None = None
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO
    market_volume: int = 0
    market_notional: Decimal = ZERO
    scheduled_qty: Decimal = ZERO  # what the schedule wanted sent by now
    children: list[str] = field(default_factory=list)
    owner: str = "manual"

    @property
    def algo(self) -> str:
        return algo_name(self.spec)

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return None if self.filled_qty == ZERO else self.notional / self.filled_qty

    @property
    def progress_pct(self) -> Decimal:
        return self.filled_qty * 100 / self.qty

    @property
    def interval_vwap(self) -> Decimal | None:
        """The market's VWAP over the algo's life so far, from the trades it saw."""
        return None if self.market_volume == 0 else self.market_notional / self.market_volume

    def describe(self) -> str:
        """A short line for messages: "buy 5000 AAPL twap"."""
        text = f"{self.side.value} {self.qty} {self.symbol} {self.algo}"
        if self.limit_price is not None:
            text += f" lmt {self.limit_price}"
        return text

    def to_json(self) -> str:
        return json.dumps(_to_dict(self), separators=(",", ":"))


_DECIMALS = ("qty", "filled_qty", "notional", "fees", "market_notional", "scheduled_qty")
_OPTIONAL_DECIMALS = ("limit_price", "arrival_price", "last_price")
_PLAIN = ("id", "symbol", "created_ns", "start_ns", "end_ns", "reason", "updated_ns")
_DEFAULTS = {"owner": "manual"}  # fields newer than the first parents journaled


def _to_dict(parent: Parent) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(parent, name) for name in (*_PLAIN, *_DEFAULTS)}
    data.update({name: str(getattr(parent, name)) for name in _DECIMALS})
    for name in _OPTIONAL_DECIMALS:
        value = getattr(parent, name)
        data[name] = None if value is None else str(value)
    data.update(
        side=parent.side.value,
        tif=parent.tif.value,
        state=parent.state.value,
        spec=parent.spec.to_dict(),
        market_volume=parent.market_volume,
        children=list(parent.children),
    )
    return data


def parent_from_json(text: str) -> Parent:
    """The parent ``Parent.to_json`` wrote; ``ValueError``/``KeyError`` on a damaged record."""
    data = json.loads(text)
    values: dict[str, Any] = {name: data[name] for name in _PLAIN}
    values.update({name: data.get(name, default) for name, default in _DEFAULTS.items()})
    values.update({name: Decimal(data[name]) for name in _DECIMALS})
    for name in _OPTIONAL_DECIMALS:
        values[name] = None if data[name] is None else Decimal(data[name])
    return Parent(
        side=Side(data["side"]),
        tif=TimeInForce(data["tif"]),
        state=ParentState(data["state"]),
        spec=spec_from_dict(data["spec"]),
        market_volume=int(data["market_volume"]),
        children=list(data["children"]),
        **values,
    )
