"""Alpaca market-data frames (msgpack) -> engine models.

A frame is a msgpack array of maps, each with a one-letter type ``T``. Data
messages become engine records paired with the topic they are published on:

==========  ==========================================  =====================
wire ``T``  record                                      topic
==========  ==========================================  =====================
``t``       ``Trade`` (stock or OCC option symbol)      ``Topic.TRADE``
``q``       ``Quote``                                   ``Topic.QUOTE``
``b``       ``Bar`` timeframe ``"1Min"``                ``Topic.BAR``
``u``       ``Bar`` timeframe ``"1Min"`` (a late fix)   ``Topic.BAR_UPDATE``
``d``       ``Bar`` timeframe ``"1Day"`` (day so far)   ``Topic.BAR``
``s``       ``TradingStatus``                           ``Topic.STATUS``
``l``       ``Luld``                                    ``Topic.LULD``
==========  ==========================================  =====================

An updated bar replaces the minute bar with the same ``symbol`` and ``ts_ns``;
it has its own topic so a consumer that sums bars never counts a minute twice.
Control messages (``success``, ``error``, ``subscription``) are handed back as
maps for the stream client; trade corrections and cancels are counted and skipped.

Prices arrive as msgpack floats. ``Decimal(repr(x))`` is exact for them:
``repr`` is the shortest decimal that round-trips, which is the price Alpaca
wrote (126.55, not 126.5499999...). Stock quotes are then rounded (half-even)
onto the Reg NMS tick grid, where every displayed quote must lie; trades keep
their price (sub-penny executions are legal) and option quotes are left alone
(their grid depends on the contract). Conversions are cached per float, since
a feed repeats the same few prices many times. Timestamps are msgpack
Timestamp extensions, unpacked straight to integer nanoseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

import msgpack

from engine.alpaca.events import Luld, TradingStatus
from engine.core.bus import Topic
from engine.core.clock import datetime_to_ns
from engine.core.errors import DataError
from engine.core.models import Bar, Quote, Trade
from engine.core.prices import round_to_tick

CONTROL_TYPES = frozenset({"success", "error", "subscription"})
SKIPPED_TYPES = frozenset({"c", "x", "i"})  # corrections, cancel/errors, imbalances
PRICE_CACHE_LIMIT = 65_536

# A message that lacks a key, has a wrong type or a non-numeric price raises one of these.
_MALFORMED = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)


Emit = Callable[[str, object], None]


def _fast_constructor(cls: type, names: tuple[str, ...]) -> Callable[..., object]:
    """A positional constructor for a frozen slotted record that skips the dataclass ``__init__``.

    The generated ``__init__`` of a frozen dataclass goes through ``object.__setattr__``
    once per field, which is most of the cost of a quote on the hot path; writing the
    slots directly is about twice as fast and builds an equal object. ``names`` must
    be every field, in order, so that no field is ever left unset.
    """
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"{cls.__name__} fields changed: update the codec's fast constructor")
    setters = tuple(getattr(cls, name).__set__ for name in names)
    new = object.__new__
    if len(names) == 6:
        s0, s1, s2, s3, s4, s5 = setters

        def build6(a, b, c, d, e, f):
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            s5(obj, f)
            return obj

        return build6
    s0, s1, s2, s3, s4 = setters

    def build5(a, b, c, d, e):
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        s2(obj, c)
        s3(obj, d)
        s4(obj, e)
        return obj

    return build5


_new_quote = _fast_constructor(Quote, ("symbol", "ts_ns", "bid", "bid_size", "ask", "ask_size"))
_new_trade = _fast_constructor(Trade, ("symbol", "ts_ns", "price", "size", "exchange"))


class MalformedFrame(DataError):
    """A frame that is not a msgpack array of maps."""

    def __init__(self, message: str) -> None:
        super().__init__("alpaca stream", message)


@dataclass(slots=True)
class DecodedFrame:
    """One frame's records, in wire order, and its control messages."""

    events: list[tuple[str, object]] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)
    published: int = 0  # records emitted (or collected in ``events``)
    malformed: int = 0  # messages in the frame that could not be read
    skipped: int = 0  # messages of types tickdeck does not use


def timestamp_ns(value: object) -> int:
    """A wire timestamp as int ns: msgpack already gives ints; RFC 3339 strings are parsed exactly."""
    if type(value) is int:
        return value
    if isinstance(value, msgpack.Timestamp):
        return value.to_unix_nano()
    if isinstance(value, str):
        return parse_rfc3339_ns(value)
    raise TypeError(f"not a timestamp: {value!r}")


def parse_rfc3339_ns(text: str) -> int:
    """``2023-04-06T11:54:26.838232225Z`` -> int ns, keeping all nine fractional digits."""
    stamp = text.strip()
    offset = ""
    if stamp.endswith(("Z", "z")):
        stamp = stamp[:-1]
    else:
        # A numeric offset follows the time: "...:26.5-04:00".
        cut = max(stamp.rfind("+"), stamp.rfind("-"))
        if cut > stamp.find("T"):
            stamp, offset = stamp[:cut], stamp[cut:]
    fraction = 0
    if "." in stamp:
        stamp, digits = stamp.split(".", 1)
        if not digits.isdigit() or len(digits) > 9:
            raise ValueError(f"bad fractional seconds in '{text}'")
        fraction = int(digits.ljust(9, "0"))
    whole = datetime.fromisoformat(stamp + (offset or "+00:00"))
    return datetime_to_ns(whole) + fraction


class FrameDecoder:
    """Turns market-data frames into engine records; one per connection (it caches prices).

    ``options=True`` for the option feeds (``indicative``/``opra``): quotes are
    not put on the equity tick grid there.
    """

    def __init__(self, *, options: bool = False) -> None:
        self.options = options
        self._plain: dict[float, Decimal] = {}
        self._quoted: dict[float, Decimal] = {}
        # Start of the newest minute bar seen per symbol: a gap fill starts after it.
        self.last_bar_ns: dict[str, int] = {}

    def price(self, value: float) -> Decimal:
        """A wire price as the Decimal Alpaca wrote (shortest round-trip repr)."""
        cached = self._plain.get(value)
        if cached is None:
            if len(self._plain) >= PRICE_CACHE_LIMIT:
                self._plain.clear()
            if type(value) is bool or not isinstance(value, int | float):
                raise TypeError(f"not a price: {value!r}")
            cached = self._plain[value] = Decimal(repr(value))
            if not cached.is_finite():
                del self._plain[value]
                raise ValueError(f"not a finite price: {value!r}")
        return cached

    def quote_price(self, value: float) -> Decimal:
        """A quoted stock price on the tick grid (option quotes: as written)."""
        cached = self._quoted.get(value)
        if cached is None:
            plain = self.price(value)
            if len(self._quoted) >= PRICE_CACHE_LIMIT:
                self._quoted.clear()
            cached = self._quoted[value] = plain if self.options else round_to_tick(plain)
        return cached

    def unpack(self, frame: bytes) -> tuple:
        """The frame's messages; ``MalformedFrame`` if it is not a msgpack array."""
        try:
            messages = msgpack.unpackb(frame, timestamp=2, use_list=False, strict_map_key=False)
        except Exception as exc:
            # msgpack raises a family of unrelated types (ExtraData, FormatError, StackError, ...).
            raise MalformedFrame(f"a frame is not valid msgpack ({type(exc).__name__})") from None
        if type(messages) is not tuple:
            raise MalformedFrame("a frame is not an array of messages")
        return messages

    def decode(self, frame: bytes, emit: Emit | None = None) -> DecodedFrame:
        """Decode one frame; a bad message is counted and skipped, never fatal to the frame.

        With ``emit`` (e.g. ``MessageBus.publish``) each record is handed to it in
        wire order as ``emit(topic, record)``; without, they are collected in ``events``.
        """
        return self.decode_messages(self.unpack(frame), emit)

    def decode_messages(self, messages: tuple | list, emit: Emit | None = None) -> DecodedFrame:
        """``decode`` for messages already unpacked (the hot loop; see ``decode``)."""
        out = DecodedFrame()
        if emit is None:
            append = out.events.append

            def emit(topic: str, record: object) -> None:
                append((topic, record))

        plain = self._plain
        quoted = self._quoted
        price = self.price
        quote_price = self.quote_price
        quote_topic, trade_topic = Topic.QUOTE, Topic.TRADE
        new_quote, new_trade = _new_quote, _new_trade
        controls = out.controls
        other = 0
        for m in messages:
            try:
                kind = m["T"]
                # The two hot types are inlined: a cache hit is one dict lookup per price.
                if kind == "q":
                    ts = m["t"]
                    if type(ts) is not int:
                        ts = timestamp_ns(ts)
                    bid = quoted.get(m["bp"]) or quote_price(m["bp"])
                    ask = quoted.get(m["ap"]) or quote_price(m["ap"])
                    emit(quote_topic, new_quote(m["S"], ts, bid, int(m["bs"]), ask, int(m["as"])))
                elif kind == "t":
                    ts = m["t"]
                    if type(ts) is not int:
                        ts = timestamp_ns(ts)
                    px = plain.get(m["p"]) or price(m["p"])
                    emit(trade_topic, new_trade(m["S"], ts, px, int(m["s"]), m.get("x", "")))
                elif kind in _SLOW:
                    emit(*_SLOW[kind](self, m))
                elif kind in CONTROL_TYPES:
                    controls.append(m)
                    other += 1
                elif kind in SKIPPED_TYPES:
                    out.skipped += 1
                    other += 1
                else:
                    out.malformed += 1
                    other += 1
            except _MALFORMED:
                out.malformed += 1
                other += 1
        out.published = len(messages) - other
        return out

    def _bar(self, m: dict, timeframe: str) -> Bar:
        price = self.price
        return Bar(
            m["S"],
            timestamp_ns(m["t"]),
            price(m["o"]),
            price(m["h"]),
            price(m["l"]),
            price(m["c"]),
            int(m["v"]),
            timeframe,
        )

    def _minute_bar(self, m: dict) -> tuple[str, Bar]:
        bar = self._bar(m, "1Min")
        if bar.ts_ns > self.last_bar_ns.get(bar.symbol, -1):
            self.last_bar_ns[bar.symbol] = bar.ts_ns
        return Topic.BAR, bar

    def _updated_bar(self, m: dict) -> tuple[str, Bar]:
        return Topic.BAR_UPDATE, self._bar(m, "1Min")

    def _daily_bar(self, m: dict) -> tuple[str, Bar]:
        return Topic.BAR, self._bar(m, "1Day")

    def _status(self, m: dict) -> tuple[str, TradingStatus]:
        return Topic.STATUS, TradingStatus(
            symbol=m["S"],
            ts_ns=timestamp_ns(m["t"]),
            status_code=str(m["sc"]),
            status_message=str(m.get("sm", "")),
            reason_code=str(m.get("rc", "")),
            reason_message=str(m.get("rm", "")),
            tape=str(m.get("z", "")),
        )

    def _luld(self, m: dict) -> tuple[str, Luld]:
        return Topic.LULD, Luld(
            symbol=m["S"],
            ts_ns=timestamp_ns(m["t"]),
            limit_up=self.price(m["u"]),
            limit_down=self.price(m["d"]),
            indicator=str(m.get("i", "")),
            tape=str(m.get("z", "")),
        )


_SLOW = {
    "b": FrameDecoder._minute_bar,
    "u": FrameDecoder._updated_bar,
    "d": FrameDecoder._daily_bar,
    "s": FrameDecoder._status,
    "l": FrameDecoder._luld,
}


def control_messages(frame: bytes) -> list[dict]:
    """The control maps of a frame (for the handshake, before any data flows)."""
    messages = FrameDecoder().unpack(frame)
    return [m for m in messages if isinstance(m, dict) and m.get("T") in CONTROL_TYPES]
