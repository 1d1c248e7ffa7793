"""The bot API: what a strategy may see and do, and the records it produces.

A bot is a subclass of ``Bot`` with a ``Params`` dataclass. It receives market data
through callbacks (``on_bar``, ``on_quote``, ``on_trade``, ``on_fill``, ``on_timer``)
and acts only through its ``BotContext``: the clock, market data, its own positions
and orders, ``emit`` (an ``Opportunity``: queued for the trader, sent, or only
recorded, by the bot's mode) and ``submit`` (an order through the bot's budget and
the global risk checks). Bots never touch the engine itself, so the same code runs
live, in replay, in backtests and offline over a list of bars (``engine.bots.offline``).
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, Union, get_args, get_origin, get_type_hints

from engine.core.clock import Clock
from engine.core.errors import InputError
from engine.core.models import Bar, Fill, Order, OrderRequest, Quote, Side, Trade
from engine.core.prices import to_decimal
from engine.execution.spec import AlgoSpec
from engine.orders.language import parse_algo


class BotMode(StrEnum):
    """What happens to a bot's opportunities.

    ``off``: recorded as its last signal only; ``advise``: queued for the trader to
    approve, edit or reject; ``auto``: sent at once through the bot's budget and risk.
    """

    OFF = "off"
    ADVISE = "advise"
    AUTO = "auto"

    @property
    def next(self) -> BotMode:
        """The mode after this one when the trader cycles modes."""
        order = list(BotMode)
        return order[(order.index(self) + 1) % len(order)]


class BotState(StrEnum):
    """A bot's lifecycle: only a running bot receives callbacks."""

    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"
    ERRORED = "errored"


class BotError(InputError):
    """A bot was asked for something it cannot do: an unknown bot, a bad parameter or spec."""


@dataclass(slots=True, frozen=True)
class Opportunity:
    """A trade a bot proposes: ``qty`` shares (or contracts) at ``limit`` (None: market).

    ``confidence`` is from 0 to 1; ``rationale`` one sentence saying why;
    ``expires_at`` the time (ns) after which it is no longer valid. The bot service
    fills in ``bot``, ``id`` and ``ts_ns`` when the bot emits it.
    """

    symbol: str
    side: Side
    qty: Decimal
    limit: Decimal | None
    confidence: float
    rationale: str
    expires_at: int
    bot: str = ""
    id: str = ""
    ts_ns: int = 0

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise BotError(f"an opportunity needs a quantity above zero, not {self.qty}.")
        if self.limit is not None and self.limit <= 0:
            raise BotError(f"an opportunity's limit must be above zero, not {self.limit}.")
        if not 0.0 <= self.confidence <= 1.0:
            raise BotError(f"confidence must be from 0 to 1, not {self.confidence}.")

    @property
    def order_line(self) -> str:
        """The opportunity in the order language, for the console's order line."""
        line = f"{self.side.value} {self.qty} {self.symbol}"
        return line if self.limit is None else f"{line} lmt {self.limit}"

    def describe(self) -> str:
        """``buy 100 AAPL lmt 187.20 (62%)``: the opportunity in a few words."""
        return f"{self.order_line} ({self.confidence:.0%})"


@dataclass(slots=True, frozen=True)
class BotOutcome:
    """The answer to ``submit``/``emit``: sent (or queued) or not, and one sentence saying so."""

    ok: bool
    message: str
    order_id: str | None = None


@dataclass(slots=True, frozen=True)
class OptionQuote:
    """One listed option as a bot sees it: the contract, its terms and its quote."""

    symbol: str  # OCC symbol
    underlying: str
    expiry_ns: int
    strike: Decimal
    is_call: bool
    bid: Decimal
    ask: Decimal
    rate: float = 0.0
    dividend_yield: float = 0.0

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class BotContext(Protocol):
    """Everything a bot may see and do. The engine, a replay and a backtest each provide one."""

    name: str
    clock: Clock
    storage_dir: Path | None  # a folder of the bot's own (a persisted model), None: keep nothing

    def last_price(self, symbol: str) -> Decimal | None:
        """The latest trade (or mid) price of ``symbol``, None before any."""

    def quote(self, symbol: str) -> Quote | None: ...

    def position(self, symbol: str) -> Decimal:
        """This bot's signed position in ``symbol``, from its own fills only."""

    def orders(self) -> Sequence[Order]:
        """This bot's orders (source ``bot:<name>``), oldest first."""

    def option_quotes(self, underlying: str) -> Sequence[OptionQuote]:
        """Listed options of ``underlying`` with a two-sided quote (empty where there are none)."""

    def emit(self, opportunity: Opportunity) -> BotOutcome:
        """Propose a trade; the bot's mode decides whether it is queued, sent or only recorded."""

    def submit(self, request: OrderRequest, algo: AlgoSpec | None = None) -> BotOutcome:
        """Send an order through the bot's budget and the global risk checks; with ``algo``
        (``engine.execution.spec``: TWAP, VWAP, POV, iceberg) have that algo work it, every
        child through the same checks, its fills credited to the bot."""

    def cancel(self, order_id: str) -> BotOutcome: ...

    def set_timer(self, delay_ns: int, name: str) -> None:
        """Call the bot's ``on_timer(name)`` after ``delay_ns`` of clock time."""


@dataclass(slots=True, frozen=True)
class BotParams:
    """Base of every bot's parameters: a frozen dataclass of typed fields with defaults.

    Subclasses validate in ``check`` by raising ``ValueError`` with one sentence.
    ``symbols`` lists the symbols the bot trades; on the command line they are
    joined with ``+`` (``symbols=KO+PEP``).
    """

    # Without a ``symbols`` parameter a bot trades the engine's watchlist, unless this is False.
    takes_watchlist: ClassVar[bool] = True

    symbols: tuple[str, ...] = ()
    qty: Decimal = Decimal(100)
    ttl_s: int = 60  # how long an opportunity stays valid, in seconds
    # An execution algo for the bot's auto-mode orders, as the order language writes it after
    # the price ("twap 10m", "pov 10%"); empty: plain orders.
    algo: str = ""

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"qty must be above zero, not {self.qty}")
        if self.ttl_s <= 0:
            raise ValueError(f"ttl_s must be above zero, not {self.ttl_s}")
        try:
            parse_algo(self.algo)
        except InputError as error:
            raise ValueError(str(error).rstrip(".")) from None
        self.check()

    @property
    def algo_spec(self) -> AlgoSpec | None:
        """``algo`` parsed (None for plain orders)."""
        return parse_algo(self.algo)

    def check(self) -> None:
        """Raise ``ValueError`` (one sentence) when the values do not make sense together."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, bot: str, values: Mapping[str, object]) -> BotParams:
        """Parameters from text or typed values; a bad one is a ``BotError`` naming it."""
        hints = get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        converted: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise BotError(
                    f"the {bot} bot has no parameter '{name}'; it takes {', '.join(cls.names())}."
                )
            try:
                converted[name] = _convert(raw, hints[name])
            except ValueError as error:
                raise BotError(f"{bot} bot: {name} {error}.") from None
        try:
            return cls(**converted)
        except ValueError as error:
            raise BotError(f"{bot} bot: {error}.") from None

    def as_text(self) -> dict[str, str]:
        """Each parameter as the text ``parse`` reads back (for the journal and the console)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "+".join(value) if isinstance(value, tuple) else str(value)
        return out


def _convert(raw: object, hint: object) -> object:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = next(arg for arg in get_args(hint) if arg is not type(None))
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
            return None
        return _convert(raw, inner)
    if origin is tuple:
        items = raw.split("+") if isinstance(raw, str) else list(raw)  # type: ignore[arg-type]
        symbols = tuple(str(item).strip().upper() for item in items if str(item).strip())
        if not symbols:
            raise ValueError("must name at least one symbol")
        return symbols
    text = str(raw).strip()
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"must be a whole number, not '{raw}'") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"must be a number, not '{raw}'") from None
    if hint is Decimal:
        try:
            return to_decimal(raw)
        except ValueError:
            raise ValueError(f"must be a number, not '{raw}'") from None
    if hint is bool:
        word = text.lower()
        if word in ("true", "yes", "on", "1"):
            return True
        if word in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"must be true or false, not '{raw}'")
    return text


class Bot:
    """Base class of every bot. Subclasses set ``kind``, ``Params`` and override callbacks.

    ``self.ctx`` is the bot's context and ``self.params`` its validated parameters.
    ``state()`` returns what the bot wants persisted (JSON-able); ``restore(state)``
    gets it back after a restart. Callbacks run on the engine's loop and must not block.
    """

    kind: ClassVar[str] = ""
    Params: ClassVar[type[BotParams]] = BotParams

    def __init__(self, params: BotParams, ctx: BotContext) -> None:
        self.params = params
        self.ctx = ctx
        self._bars: dict[str, deque[Bar]] = {}
        self._targets: dict[str, Decimal] = {}

    def history_size(self) -> int:
        """How many bars per symbol ``remember`` keeps (and the state persists)."""
        return 0

    def remember(self, bar: Bar) -> list[Bar]:
        """Add ``bar`` to its symbol's history; returns the history, oldest first, ``bar`` last."""
        bars = self._bars.get(bar.symbol)
        if bars is None:
            bars = self._bars[bar.symbol] = deque(maxlen=max(self.history_size(), 1))
        bars.append(bar)
        return list(bars)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols whose market data this bot receives."""
        return self.params.symbols

    def on_start(self) -> None:
        """The bot was started (or resumed after a restart)."""

    def on_stop(self) -> None:
        """The bot was stopped."""

    def on_bar(self, bar: Bar) -> None: ...

    def on_quote(self, quote: Quote) -> None: ...

    def on_trade(self, trade: Trade) -> None: ...

    def on_fill(self, fill: Fill) -> None:
        """One of this bot's orders filled (its position already includes the fill)."""

    def on_timer(self, name: str) -> None: ...

    def state(self) -> dict[str, Any]:
        """What to persist across restarts (JSON-able): the bar history and the last targets.

        Subclasses that keep more extend it: ``{**super().state(), "mine": ...}``.
        """
        return {
            "bars": {
                symbol: [_bar_row(bar) for bar in bars] for symbol, bars in self._bars.items()
            },
            "targets": {symbol: str(target) for symbol, target in self._targets.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what ``state`` returned before the restart."""
        for symbol, rows in state.get("bars", {}).items():
            for row in rows:
                self.remember(_row_bar(symbol, row))
        self._targets = {s: Decimal(v) for s, v in state.get("targets", {}).items()}

    def opportunity(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        limit: Decimal | None,
        confidence: float,
        rationale: str,
    ) -> Opportunity:
        """An opportunity valid for the bot's ``ttl_s`` from now."""
        expires = self.ctx.clock.now_ns() + self.params.ttl_s * 1_000_000_000
        return Opportunity(symbol, side, qty, limit, confidence, rationale, expires)

    def toward(
        self, symbol: str, target: Decimal, price: Decimal, confidence: float, rationale: str
    ) -> BotOutcome | None:
        """Emit what takes the bot's position in ``symbol`` to ``target`` at ``price``.

        Only a change of target emits: a signal that holds bar after bar is one opportunity,
        not one per bar, whether or not the trader took it.
        """
        if self._targets.get(symbol, Decimal(0)) == target:
            return None
        self._targets[symbol] = target
        delta = target - self.ctx.position(symbol)
        if delta == 0:
            return None
        side = Side.BUY if delta > 0 else Side.SELL
        return self.ctx.emit(
            self.opportunity(symbol, side, abs(delta), price, confidence, rationale)
        )


def _bar_row(bar: Bar) -> list[object]:
    return [bar.ts_ns, str(bar.open), str(bar.high), str(bar.low), str(bar.close), bar.volume]


def _row_bar(symbol: str, row: Sequence[Any]) -> Bar:
    ts_ns, open_, high, low, close, volume = row
    return Bar(symbol, ts_ns, Decimal(open_), Decimal(high), Decimal(low), Decimal(close), volume)
