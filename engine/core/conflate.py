"""The conflated market view: the latest value per symbol, for slow consumers.

The hot path (``on_quote``/``on_trade``/``on_bar``) only overwrites a few slots
and bumps a version counter, so a flood of ticks costs O(1) memory per symbol.
Slow consumers (the console, attached consoles, the status line) poll
``changed_since(version)`` at 10–30 Hz and get one immutable snapshot per symbol
that changed — never every tick. Risk and the sim venue read ``quote()`` for
the current NBBO.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from engine.core.bus import MessageBus, Topic
from engine.core.models import Bar, Quote, Trade
from engine.core.prices import ZERO

SPARKLINE_POINTS = 390  # one regular session of minute closes


@dataclass(slots=True, frozen=True)
class SymbolSnapshot:
    symbol: str
    version: int
    ts_ns: int
    bid: Decimal | None
    bid_size: int
    ask: Decimal | None
    ask_size: int
    last: Decimal | None
    reference: Decimal | None  # previous close (or session open) that change % is measured from
    volume: int
    closes: tuple[Decimal, ...]  # minute closes for the sparkline, oldest first

    @property
    def change_pct(self) -> Decimal | None:
        if self.last is None or not self.reference:
            return None
        return (self.last - self.reference) / self.reference * 100

    @property
    def spread(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return self.ask - self.bid


class _SymbolState:
    __slots__ = (
        "bar_volume",
        "closes",
        "last",
        "quote",
        "reference",
        "trade_volume",
        "ts_ns",
        "version",
    )

    def __init__(self) -> None:
        self.quote: Quote | None = None
        self.last: Decimal | None = None
        self.reference: Decimal | None = None
        self.trade_volume = 0
        self.bar_volume = 0
        self.closes: deque[Decimal] = deque(maxlen=SPARKLINE_POINTS)
        self.ts_ns = 0
        self.version = 0


class MarketView:
    """Latest quote, last trade, volume and minute closes per symbol."""

    def __init__(self, bus: MessageBus | None = None) -> None:
        self._states: dict[str, _SymbolState] = {}
        self.version = 0
        self.events = 0
        if bus is not None:
            bus.subscribe(Topic.QUOTE, self.on_quote)
            bus.subscribe(Topic.TRADE, self.on_trade)
            bus.subscribe(Topic.BAR, self.on_bar)

    def _state(self, symbol: str) -> _SymbolState:
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = _SymbolState()
        return state

    def on_quote(self, quote: Quote) -> None:
        state = self._states.get(quote.symbol) or self._state(quote.symbol)
        state.quote = quote
        state.ts_ns = quote.ts_ns
        self.version += 1
        self.events += 1
        state.version = self.version

    def on_trade(self, trade: Trade) -> None:
        state = self._states.get(trade.symbol) or self._state(trade.symbol)
        state.last = trade.price
        state.trade_volume += trade.size
        state.ts_ns = trade.ts_ns
        self.version += 1
        self.events += 1
        state.version = self.version

    def on_bar(self, bar: Bar) -> None:
        state = self._state(bar.symbol)
        state.closes.append(bar.close)
        state.bar_volume += bar.volume
        if state.last is None or state.trade_volume == 0:
            state.last = bar.close
        if state.reference is None:
            state.reference = bar.open
        state.ts_ns = max(state.ts_ns, bar.ts_ns)
        self.version += 1
        self.events += 1
        state.version = self.version

    def set_reference(self, symbol: str, price: Decimal) -> None:
        """The price change % is measured from (normally the previous close)."""
        state = self._state(symbol)
        state.reference = price
        self.version += 1
        state.version = self.version

    def reset_session(self, symbol: str, reference: Decimal | None) -> None:
        """A new trading day: volume and sparkline start again."""
        state = self._state(symbol)
        state.trade_volume = state.bar_volume = 0
        state.closes.clear()
        state.reference = reference
        self.version += 1
        state.version = self.version

    # -- reads -----------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return sorted(self._states)

    def quote(self, symbol: str) -> Quote | None:
        state = self._states.get(symbol)
        return state.quote if state else None

    def last_price(self, symbol: str) -> Decimal | None:
        """Last trade, else the quote's mid; None if nothing has been seen."""
        state = self._states.get(symbol)
        if state is None:
            return None
        if state.last is not None:
            return state.last
        quote = state.quote
        if quote is not None and quote.is_two_sided:
            return quote.mid
        return None

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        state = self._states.get(symbol)
        return self._snapshot(symbol, state) if state else None

    def changed_since(self, version: int) -> tuple[int, list[SymbolSnapshot]]:
        """Snapshots of the symbols that changed after ``version``, and the version to ask with next."""
        changed = [
            self._snapshot(symbol, state)
            for symbol, state in self._states.items()
            if state.version > version
        ]
        return self.version, changed

    @staticmethod
    def _snapshot(symbol: str, state: _SymbolState) -> SymbolSnapshot:
        quote = state.quote
        return SymbolSnapshot(
            symbol=symbol,
            version=state.version,
            ts_ns=state.ts_ns,
            bid=quote.bid if quote and quote.bid > ZERO else None,
            bid_size=quote.bid_size if quote else 0,
            ask=quote.ask if quote and quote.ask > ZERO else None,
            ask_size=quote.ask_size if quote else 0,
            last=state.last
            if state.last is not None
            else (quote.mid if quote and quote.is_two_sided else None),
            reference=state.reference,
            volume=state.trade_volume or state.bar_volume,
            closes=tuple(state.closes),
        )
