"""The attach protocol's wire codec: engine records to msgpack and back, exactly.

Only the record types the console protocol carries can be decoded: each dataclass
and enum is registered by name (walked from the protocol's root records), so a
message can never make the engine build an arbitrary class. Decimals travel as
their exact string, dates as ISO strings, tuples stay tuples, floats (NaN too)
stay floats.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, get_args, get_origin, get_type_hints

import msgpack

from engine.client import (
    BotsSnapshot,
    ChainSnapshot,
    Cursor,
    EngineSnapshot,
    Outcome,
    PortfolioRisk,
    Preview,
    SmileSnapshot,
)
from engine.core.errors import InputError
from engine.core.models import Bar, OrderRequest

_DECIMAL = 1
_ENUM = 2
_RECORD = 3
_DATE = 4

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a full option chain is a few MB; nothing needs more

ROOT_TYPES: tuple[type, ...] = (
    Cursor,
    EngineSnapshot,
    Preview,
    Outcome,
    ChainSnapshot,
    SmileSnapshot,
    PortfolioRisk,
    BotsSnapshot,
    Bar,
    OrderRequest,
)
"""Every record the protocol carries, directly or nested, is reachable from these."""


class CodecError(InputError):
    """A message that is not valid protocol data; the sentence says what is wrong."""


def _walk(hint: object, found: dict[str, type]) -> None:
    origin = get_origin(hint)
    if origin is not None or isinstance(hint, types.UnionType):
        for arg in get_args(hint):
            _walk(arg, found)
        return
    if not isinstance(hint, type) or hint.__name__ in found:
        return
    if issubclass(hint, Enum):
        found[hint.__name__] = hint
    elif dataclasses.is_dataclass(hint):
        found[hint.__name__] = hint
        for hint_of_field in get_type_hints(hint).values():
            _walk(hint_of_field, found)


def _registry() -> dict[str, type]:
    found: dict[str, type] = {}
    for root in ROOT_TYPES:
        _walk(root, found)
    return found


_TYPES = _registry()


def _default(value: Any) -> msgpack.ExtType | list[Any]:
    # Types are packed strictly, so enums (str and int subclasses) and tuples come here.
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Decimal):
        return msgpack.ExtType(_DECIMAL, str(value).encode())
    if isinstance(value, Enum):
        return msgpack.ExtType(_ENUM, _pack([type(value).__name__, value.value]))
    if isinstance(value, date):
        return msgpack.ExtType(_DATE, value.isoformat().encode())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise TypeError(f"{name} is not a protocol record")
        values = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return msgpack.ExtType(_RECORD, _pack([name, values]))
    raise TypeError(f"{type(value).__name__} cannot be sent over the attach protocol")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True, strict_types=True)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _DECIMAL:
        try:
            return Decimal(data.decode())
        except (InvalidOperation, UnicodeDecodeError):
            raise CodecError("a decimal field is not a number") from None
    if code == _DATE:
        try:
            return date.fromisoformat(data.decode())
        except (ValueError, UnicodeDecodeError):
            raise CodecError("a date field is not an ISO date") from None
    if code == _ENUM:
        name, raw = _unpack(data)
        cls = _TYPES.get(name)
        if cls is None or not issubclass(cls, Enum):
            raise CodecError(f"'{name}' is not a protocol enum")
        try:
            return cls(raw)
        except ValueError:
            raise CodecError(f"'{raw}' is not a {name}") from None
    if code == _RECORD:
        name, values = _unpack(data)
        cls = _TYPES.get(name)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise CodecError(f"'{name}' is not a protocol record")
        return _build(cls, values)
    raise CodecError(f"extension type {code} is not part of the protocol")


def _build(cls: type, values: Any) -> Any:
    fields = dataclasses.fields(cls)
    if not isinstance(values, tuple) or len(values) != len(fields):
        raise CodecError(f"a {cls.__name__} needs {len(fields)} fields")
    try:
        # The constructor runs the record's own checks (an OrderRequest's positive quantity).
        return cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    except InputError as error:
        raise CodecError(str(error)) from None
    except (TypeError, ValueError, ArithmeticError) as error:
        raise CodecError(f"a {cls.__name__} is not valid: {error}") from None


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(
            data,
            ext_hook=_ext_hook,
            use_list=False,
            raw=False,
            strict_map_key=True,
        )
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise CodecError(f"the message is not valid msgpack ({error})") from None


def encode(value: Any) -> bytes:
    """``value`` (records, enums, Decimals, dates, tuples, dicts, scalars) as one msgpack frame."""
    return _pack(value)


def decode(data: bytes) -> Any:
    """The value ``encode`` made; a ``CodecError`` with one sentence for anything else."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise CodecError(f"the message is larger than {MAX_MESSAGE_BYTES} bytes")
    return _unpack(data)
