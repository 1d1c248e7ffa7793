"""Run a bot over a list of bars, outside the engine: its signals, filled at once if asked.

This is the smallest host of the bot API: a simulated clock moved to each bar's
time, market data from the bars alone, and (with ``fill=True``) every emitted
opportunity or submitted order filled in full at its limit (else the last close)
at once, so the bot's position follows its own signals. It answers "what would
this bot have said on these bars", and the same bot code runs in the engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from engine.bots import bot_class
from engine.bots.api import Bot, BotOutcome, Opportunity, OptionQuote
from engine.core.clock import SimClock
from engine.core.models import Bar, Fill, Order, OrderRequest, Quote, Side
from engine.execution.spec import AlgoSpec
from engine.portfolio import Portfolio


class OfflineContext:
    """A ``BotContext`` over bars fed by ``run``; ``signals`` keeps every opportunity."""

    def __init__(
        self,
        name: str,
        *,
        fill: bool = True,
        storage_dir: Path | None = None,
        option_quotes: Callable[[str], Sequence[OptionQuote]] | None = None,
        start_ns: int = 0,
    ) -> None:
        self.name = name
        self.clock = SimClock(start_ns)
        self.storage_dir = storage_dir
        self.signals: list[Opportunity] = []
        self.portfolio = Portfolio()
        self._fill = fill
        self._option_quotes = option_quotes
        self._last: dict[str, Decimal] = {}
        self._ids = itertools.count(1)
        self.bot: Bot | None = None

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    def quote(self, symbol: str) -> Quote | None:
        return None

    def position(self, symbol: str) -> Decimal:
        return self.portfolio.qty(symbol)

    def orders(self) -> Sequence[Order]:
        return []

    def option_quotes(self, underlying: str) -> Sequence[OptionQuote]:
        return self._option_quotes(underlying) if self._option_quotes is not None else []

    def emit(self, opportunity: Opportunity) -> BotOutcome:
        self.signals.append(opportunity)
        if self._fill:
            self._execute(opportunity.symbol, opportunity.side, opportunity.qty, opportunity.limit)
        return BotOutcome(True, "recorded")

    def submit(self, request: OrderRequest, algo: AlgoSpec | None = None) -> BotOutcome:
        if self._fill:  # offline, every order fills at once, however an algo would work it
            self._execute(request.symbol, request.side, request.qty, request.limit_price)
        return BotOutcome(True, "filled offline")

    def cancel(self, order_id: str) -> BotOutcome:
        return BotOutcome(False, "offline orders fill at once; there is nothing to cancel")

    def set_timer(self, delay_ns: int, name: str) -> None:
        bot = self.bot
        if bot is not None:
            self.clock.call_later(delay_ns, lambda: bot.on_timer(name))

    def _execute(self, symbol: str, side: Side, qty: Decimal, limit: Decimal | None) -> None:
        price = limit if limit is not None else self._last.get(symbol)
        if price is None:
            return
        n = next(self._ids)
        fill = Fill(
            f"offline-{n}", f"offline-order-{n}", symbol, side, qty, price, self.clock.now_ns()
        )
        self.portfolio.apply_fill(fill)
        if self.bot is not None:
            self.bot.on_fill(fill)

    def run(self, bot: Bot, bars: Iterable[Bar]) -> list[Opportunity]:
        """Start ``bot``, feed it ``bars`` in order (time never goes back), return its signals."""
        self.bot = bot
        bot.on_start()
        for bar in bars:
            self.clock.advance_to(bar.ts_ns)
            self._last[bar.symbol] = bar.close
            bot.on_bar(bar)
        bot.on_stop()
        return self.signals


def run_offline(
    kind: str,
    bars: Iterable[Bar],
    params: Mapping[str, object] | None = None,
    **context: object,
) -> list[Opportunity]:
    """The signals the built-in bot ``kind`` gives on ``bars`` (keywords go to the context)."""
    cls = bot_class(kind)
    ctx = OfflineContext(kind, **context)  # type: ignore[arg-type]
    return ctx.run(cls(cls.Params.parse(kind, params or {}), ctx), bars)
