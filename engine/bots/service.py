"""The bot service: runs bots inside the engine, each isolated and inside its own budget.

Market data reaches a bot only while it runs, through the bus, for its own
symbols. Everything a bot does goes through ``_BotRuntime`` (its ``BotContext``):

* ``emit`` records the opportunity as the bot's last signal and then, by mode,
  drops it (off), queues it for the trader (advise) or sends it (auto);
* ``submit`` checks the bot's budget (``max_notional`` of positions and working
  orders, ``max_positions`` symbols, ``max_daily_loss``), then hands the order,
  tagged ``source="bot:<name>"``, to the OMS, whose global risk checks follow.
  An order that only reduces the bot's position always passes the budget.

A callback that raises marks the bot errored: it gets no more data, its queued
opportunities go, and its working orders are cancelled or kept (``bots.on_error``).
The engine and the other bots carry on.

Performance is rebuilt from the journal's fills of the bot's orders, so it
survives restarts by construction; mode, state, last signal, the bot's own
state and the day's starting P&L are kept in the journal's key-value table.
"""

from __future__ import annotations

import json
import statistics
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from engine.bots import bot_class
from engine.bots.api import (
    Bot,
    BotError,
    BotMode,
    BotOutcome,
    BotState,
    Opportunity,
    OptionQuote,
)
from engine.bots.settings import BotSettings, BotSpec, OnError, parse_budget, parse_specs
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, Clock, ns_to_datetime
from engine.core.conflate import MarketView
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import (
    Bar,
    Fill,
    Order,
    OrderRequest,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    Trade,
)
from engine.core.prices import ZERO, contract_multiplier, passive_tick
from engine.execution.service import SOURCE_PREFIX as ALGO_SOURCE
from engine.execution.service import ExecutionService
from engine.execution.spec import AlgoSpec
from engine.journal import Journal
from engine.oms import OrderManager
from engine.portfolio import Portfolio

_KV_PREFIX = "bot:"
SIGNAL_HISTORY = 100  # signals kept per bot for the report and the console


def bot_source(name: str) -> str:
    """The ``OrderRequest.source`` of ``name``'s orders."""
    return f"bot:{name}"


@dataclass(slots=True, frozen=True)
class BotBudget:
    """A bot's own limits; None turns one off."""

    max_notional: Decimal | None
    max_positions: int | None
    max_daily_loss: Decimal | None


@dataclass(slots=True, frozen=True)
class BotPerformance:
    """A bot's results from its own fills.

    ``trades`` counts fills; ``round_trips`` the fills that closed (part of) a
    position, of which ``wins`` realized a gain. ``sharpe`` is the mean over the
    sample deviation of the round trips' realized P&L (per trade, not annualized),
    None with fewer than two. P&L is gross of fees; ``fees`` are apart.
    """

    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    trades: int
    round_trips: int
    wins: int
    sharpe: float | None
    notional: Decimal  # |qty| x mark over the bot's positions
    positions: int  # symbols the bot holds

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.round_trips if self.round_trips else None

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl - self.fees


@dataclass(slots=True, frozen=True)
class BotView:
    """One bot as the console and the report show it."""

    name: str
    kind: str
    state: BotState
    mode: BotMode
    params: dict[str, str]
    budget: BotBudget
    performance: BotPerformance
    last_signal: str
    last_signal_ns: int | None
    error: str


@dataclass(slots=True)
class _Stats:
    trades: int = 0
    closes: list[Decimal] = field(default_factory=list)


class _BotRuntime:
    """One bot with its context: what the bot sees, and the service's record of it."""

    def __init__(
        self,
        service: BotService,
        name: str,
        cls: type[Bot],
        params: Mapping[str, object],
        mode: BotMode,
        budget: BotBudget,
    ) -> None:
        self.service = service
        self.name = name
        self.kind = cls.kind or cls.__name__
        self.clock: Clock = service.clock
        self.storage_dir: Path | None = (
            None if service.storage_dir is None else service.storage_dir / name
        )
        values = dict(params)
        if "symbols" not in values and cls.Params.takes_watchlist:
            values["symbols"] = service.default_symbols
        self.bot: Bot = cls(cls.Params.parse(self.kind, values), self)
        self.mode = mode
        self.state = BotState.STOPPED
        self.budget = budget
        self.error = ""
        self.portfolio = Portfolio()
        self.stats = _Stats()
        self.last_signal = ""
        self.last_signal_ns: int | None = None
        self.signals: deque[Opportunity] = deque(maxlen=SIGNAL_HISTORY)
        self.day_start_pnl = ZERO
        self.day = ""
        self.source = bot_source(name)
        self.algo = self.bot.params.algo_spec  # parsed once: the parameters never change

    # -- BotContext ------------------------------------------------------------------------

    def last_price(self, symbol: str) -> Decimal | None:
        return self.service.market.last_price(symbol)

    def quote(self, symbol: str) -> Quote | None:
        return self.service.market.quote(symbol)

    def position(self, symbol: str) -> Decimal:
        return self.portfolio.qty(symbol)

    def orders(self) -> Sequence[Order]:
        service = self.service
        return [o for o in service.oms.orders() if service._owner(o.id) is self][::-1]

    def option_quotes(self, underlying: str) -> Sequence[OptionQuote]:
        quotes = self.service.option_quotes
        return quotes(underlying) if quotes is not None else []

    def emit(self, opportunity: Opportunity) -> BotOutcome:
        return self.service.emit(self, opportunity)

    def submit(self, request: OrderRequest, algo: AlgoSpec | None = None) -> BotOutcome:
        return self.service.submit_for(self, request, algo)

    def cancel(self, order_id: str) -> BotOutcome:
        order = self.service.oms.order(order_id)
        if order is None or order.source != self.source:
            return BotOutcome(False, f"{order_id} is not an order of bot {self.name}")
        result = self.service.oms.cancel(order_id)
        return BotOutcome(result.accepted, result.message, order_id)

    def set_timer(self, delay_ns: int, name: str) -> None:
        def fire() -> None:
            if self.state is BotState.RUNNING:
                self.service.call(self, self.bot.on_timer, name)

        self.clock.call_later(delay_ns, fire)

    # -- the service's view ----------------------------------------------------------------

    def mark(self) -> None:
        for position in self.portfolio.positions():
            price = self.service.market.last_price(position.symbol)
            if price is not None:
                self.portfolio.mark(position.symbol, price)

    def total_pnl(self) -> Decimal:
        """Realized + unrealized - fees now: ``performance().total_pnl`` without the rest."""
        self.mark()
        unrealized = sum(
            (p.unrealized_pnl for p in self.portfolio.positions() if p.qty != ZERO), ZERO
        )
        return self.portfolio.realized_pnl() + unrealized - self.portfolio.fees()

    def performance(self) -> BotPerformance:
        self.mark()
        positions = [p for p in self.portfolio.positions() if p.qty != ZERO]
        closes = self.stats.closes
        sharpe = None
        if len(closes) >= 2:
            sd = statistics.stdev(float(c) for c in closes)
            if sd > 0:
                sharpe = statistics.fmean(float(c) for c in closes) / sd
        return BotPerformance(
            realized_pnl=self.portfolio.realized_pnl(),
            unrealized_pnl=sum((p.unrealized_pnl for p in positions), ZERO),
            fees=self.portfolio.fees(),
            trades=self.stats.trades,
            round_trips=len(closes),
            wins=sum(1 for c in closes if c > ZERO),
            sharpe=sharpe,
            notional=self.portfolio.gross_exposure(),
            positions=len(positions),
        )

    def apply_fill(self, fill: Fill) -> None:
        before = self.portfolio.position(fill.symbol)
        held = before.qty if before is not None else ZERO
        realized = before.realized_pnl if before is not None else ZERO
        position = self.portfolio.apply_fill(fill)
        self.stats.trades += 1
        if held != ZERO and (held > ZERO) != (fill.side is Side.BUY):
            self.stats.closes.append(position.realized_pnl - realized)

    def view(self) -> BotView:
        return BotView(
            name=self.name,
            kind=self.kind,
            state=self.state,
            mode=self.mode,
            params=self.bot.params.as_text(),
            budget=self.budget,
            performance=self.performance(),
            last_signal=self.last_signal,
            last_signal_ns=self.last_signal_ns,
            error=self.error,
        )

    def persisted(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mode": self.mode.value,
            "state": self.state.value,
            "error": self.error,
            "last_signal": self.last_signal,
            "last_signal_ns": self.last_signal_ns,
            "day": self.day,
            "day_start_pnl": str(self.day_start_pnl),
            "bot": self.bot.state(),
        }


class BotService:
    """Owns the bots of one engine: lifecycle, data routing, budgets, opportunities, records."""

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        market: MarketView,
        oms: OrderManager,
        journal: Journal,
        settings: BotSettings,
        *,
        storage_dir: Path | None = None,
        option_quotes: Callable[[str], Sequence[OptionQuote]] | None = None,
        default_symbols: Sequence[str] = (),
    ) -> None:
        """Bots come from ``settings.run``; ``storage_dir`` holds a folder per bot (models),
        ``option_quotes`` lists an underlying's option quotes for the bots that read them, and
        a bot given no ``symbols`` trades ``default_symbols`` (the watchlist)."""
        self.bus = bus
        self.clock = clock
        self.market = market
        self.oms = oms
        self.journal = journal
        self.settings = settings
        self.storage_dir = storage_dir
        self.option_quotes = option_quotes
        self.default_symbols = tuple(default_symbols)
        self._bots: dict[str, _BotRuntime] = {}
        self._by_symbol: dict[str, list[_BotRuntime]] = {}
        self._queue: OrderedDict[str, Opportunity] = OrderedDict()
        self._seq = 0
        self.advised: list[Opportunity] = []  # every opportunity queued this run, for the report
        self.version = 0  # grows with every change the console should redraw
        self._started = False
        self.execution: ExecutionService | None = None  # the engine's algos, once it has them
        # Off in a backtest: its journal is thrown away, so saving bot state is wasted work.
        self.persist = True
        for spec in parse_specs(settings.run):
            self._add(spec)

    def _add(self, spec: BotSpec) -> None:
        self.add_bot(spec.name, bot_class(spec.kind), dict(spec.params), BotMode(spec.mode))

    def add_bot(
        self,
        name: str,
        cls: type[Bot],
        params: Mapping[str, object] | None = None,
        mode: BotMode = BotMode.ADVISE,
    ) -> Bot:
        """Add a bot of class ``cls`` (a built-in or your own) before the service starts;
        returns it. Its budget is the ``[bots]`` default, or ``bots.budgets[name]``."""
        if self._started:
            raise BotError(f"bot {name} must be added before the engine starts.")
        if name in self._bots:
            raise BotError(f"there is already a bot named '{name}'.")
        defaults: dict[str, Decimal | None] = {
            "max_notional": self.settings.max_notional,
            "max_positions": (
                None
                if self.settings.max_positions is None
                else Decimal(self.settings.max_positions)
            ),
            "max_daily_loss": self.settings.max_daily_loss,
        }
        defaults.update(parse_budget(self.settings.budgets.get(name, "")))
        positions = defaults["max_positions"]
        budget = BotBudget(
            defaults["max_notional"],
            None if positions is None else int(positions),
            defaults["max_daily_loss"],
        )
        runtime = _BotRuntime(self, name, cls, params or {}, mode, budget)
        self._bots[name] = runtime
        for symbol in runtime.bot.symbols:
            self._by_symbol.setdefault(symbol, []).append(runtime)
        return runtime.bot

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild each bot's book from the OMS, restore its state, subscribe, start the bots.

        Call it after the OMS has started. Every bot starts running, one that had errored
        before the restart included (the error is logged): it was configured to run.
        """
        for fill in self.oms.fills():
            runtime = self._owner(fill.order_id)
            if runtime is not None:
                runtime.apply_fill(fill)
        today = self._today()
        for runtime in self._bots.values():
            stored = self.journal.get_kv(_KV_PREFIX + runtime.name)
            if stored is not None:
                data = json.loads(stored)
                if data.get("kind") == runtime.kind:
                    self._restore(runtime, data)
            if runtime.day != today:
                self._new_day(runtime, today)
            if runtime.error:
                logger.warning(
                    "bot {} had errored before the restart ({}); starting it again",
                    runtime.name,
                    runtime.error,
                )
            self.start_bot(runtime.name)
        self.bus.subscribe(Topic.BAR, self._on_bar)
        self.bus.subscribe(Topic.FILL, self._on_fill)
        self.bus.subscribe(Topic.SESSION, self._on_session)
        if any(_overrides(r.bot, "on_quote") for r in self._bots.values()):
            self.bus.subscribe(Topic.QUOTE, self._on_quote)
        if any(_overrides(r.bot, "on_trade") for r in self._bots.values()):
            self.bus.subscribe(Topic.TRADE, self._on_trade)
        self._started = True
        if self._bots:
            logger.info(
                "bots: {}",
                ", ".join(f"{r.name} ({r.mode}, {r.state})" for r in self._bots.values()),
            )

    def _restore(self, runtime: _BotRuntime, data: dict[str, Any]) -> None:
        runtime.last_signal = data.get("last_signal", "")
        runtime.last_signal_ns = data.get("last_signal_ns")
        runtime.error = data.get("error", "")
        runtime.day = data.get("day", "")
        runtime.day_start_pnl = Decimal(data.get("day_start_pnl", "0"))
        try:
            runtime.bot.restore(data.get("bot", {}))
        except Exception as error:
            # A state the bot can no longer read (its code changed): start it afresh.
            logger.warning("bot {}: its saved state was not restored ({})", runtime.name, error)

    def stop(self) -> None:
        """Stop every running bot and persist all of them (the engine is shutting down)."""
        for runtime in self._bots.values():
            if runtime.state in (BotState.RUNNING, BotState.PAUSED):
                self.call(runtime, runtime.bot.on_stop)
            self._save(runtime)
        for topic, handler in (
            (Topic.BAR, self._on_bar),
            (Topic.FILL, self._on_fill),
            (Topic.SESSION, self._on_session),
            (Topic.QUOTE, self._on_quote),
            (Topic.TRADE, self._on_trade),
        ):
            self.bus.unsubscribe(topic, handler)
        self._started = False

    def _runtime(self, name: str) -> _BotRuntime:
        runtime = self._bots.get(name)
        if runtime is None:
            known = ", ".join(self._bots) or "none are configured"
            raise BotError(f"there is no bot named '{name}' ({known}).")
        return runtime

    def start_bot(self, name: str) -> str:
        """Start (or resume, or restart after an error) bot ``name``; returns a sentence."""
        runtime = self._runtime(name)
        if runtime.state is BotState.RUNNING:
            return f"bot {name} is already running"
        was = runtime.state
        runtime.state = BotState.RUNNING
        runtime.error = ""
        if was is not BotState.PAUSED:
            self.call(runtime, runtime.bot.on_start)
        self._changed(runtime)
        return f"bot {name} {'resumed' if was is BotState.PAUSED else 'started'} ({runtime.mode})"

    def pause_bot(self, name: str) -> str:
        """Pause ``name``: it keeps its state and orders but gets no callbacks."""
        runtime = self._runtime(name)
        if runtime.state is not BotState.RUNNING:
            return f"bot {name} is {runtime.state}, not running"
        runtime.state = BotState.PAUSED
        self._changed(runtime)
        return f"bot {name} paused"

    def stop_bot(self, name: str) -> str:
        """Stop ``name``: its working orders are cancelled and its queued opportunities go."""
        runtime = self._runtime(name)
        if runtime.state is BotState.STOPPED:
            return f"bot {name} is already stopped"
        if runtime.state in (BotState.RUNNING, BotState.PAUSED):
            self.call(runtime, runtime.bot.on_stop)
        if runtime.state is not BotState.ERRORED:
            runtime.state = BotState.STOPPED
        self._cancel_orders(runtime)
        self._drop_queued(runtime.name)
        self._changed(runtime)
        return f"bot {name} stopped"

    def set_mode(self, name: str, mode: BotMode | str) -> str:
        """Switch ``name`` to ``mode`` (off, advise or auto)."""
        runtime = self._runtime(name)
        try:
            runtime.mode = BotMode(mode)
        except ValueError:
            raise BotError(f"'{mode}' is not a bot mode; use off, advise or auto.") from None
        if runtime.mode is not BotMode.ADVISE:
            self._drop_queued(name)
        self._changed(runtime)
        return f"bot {name} mode {runtime.mode}"

    def cycle_mode(self, name: str) -> str:
        """The next mode of ``name``: off, advise, auto, off..."""
        return self.set_mode(name, self._runtime(name).mode.next)

    # -- the service's records ------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._bots)

    def views(self) -> list[BotView]:
        """Every bot, in the order they were configured."""
        return [runtime.view() for runtime in self._bots.values()]

    def view(self, name: str) -> BotView:
        return self._runtime(name).view()

    def signals(self, name: str) -> list[Opportunity]:
        """The bot's latest signals, oldest first (whatever its mode did with them)."""
        return list(self._runtime(name).signals)

    def opportunities(self) -> list[Opportunity]:
        """The trader's queue: live opportunities of bots in advise mode, oldest first."""
        self.expire()
        return list(self._queue.values())

    def expire(self) -> int:
        """Drop opportunities past their expiry; returns how many went."""
        now = self.clock.now_ns()
        gone = [key for key, opp in self._queue.items() if opp.expires_at <= now]
        for key in gone:
            del self._queue[key]
        if gone:
            self.version += 1
        return len(gone)

    # -- opportunities ---------------------------------------------------------------------

    def emit(self, runtime: _BotRuntime, opportunity: Opportunity) -> BotOutcome:
        now = self.clock.now_ns()
        self._seq += 1
        opportunity = replace(
            opportunity, bot=runtime.name, id=f"{runtime.name}-{self._seq}", ts_ns=now
        )
        runtime.signals.append(opportunity)
        runtime.last_signal = opportunity.describe()
        runtime.last_signal_ns = now
        self.version += 1
        if runtime.mode is BotMode.OFF:
            return BotOutcome(True, f"bot {runtime.name} is off; signal recorded only")
        if runtime.mode is BotMode.ADVISE:
            if opportunity.expires_at <= now:
                return BotOutcome(False, "the opportunity had already expired")
            self._queue[opportunity.id] = opportunity
            self.advised.append(opportunity)
            self.clock.call_at(opportunity.expires_at, self.expire)
            logger.info(
                "bot {} advises {}: {} [{}]",
                runtime.name,
                opportunity.describe(),
                opportunity.rationale,
                opportunity.id,
            )
            return BotOutcome(True, f"queued {opportunity.id} for the trader")
        request = _request(opportunity, runtime.source)
        outcome = self.submit_for(runtime, request, runtime.algo)
        logger.info("bot {} (auto) {}: {}", runtime.name, opportunity.describe(), outcome.message)
        return outcome

    def approve(self, opportunity_id: str) -> BotOutcome:
        """Send a queued opportunity as the bot's order (its budget and risk apply)."""
        opportunity = self._queued(opportunity_id)
        runtime = self._runtime(opportunity.bot)
        if runtime.state is BotState.ERRORED:
            return BotOutcome(False, f"bot {runtime.name} has errored; its advice is void")
        request = _request(opportunity, runtime.source)
        outcome = self.submit_for(runtime, request, runtime.algo)
        if outcome.ok:
            del self._queue[opportunity_id]
            self.version += 1
        return outcome

    def reject(self, opportunity_id: str) -> BotOutcome:
        """Drop a queued opportunity."""
        opportunity = self._queued(opportunity_id)
        del self._queue[opportunity_id]
        self.version += 1
        logger.info("trader rejected {} from bot {}", opportunity.describe(), opportunity.bot)
        return BotOutcome(True, f"rejected {opportunity.describe()} from bot {opportunity.bot}")

    def take_for_edit(self, opportunity_id: str) -> str:
        """Remove a queued opportunity and return its order line, for the trader to edit and
        send as their own order."""
        opportunity = self._queued(opportunity_id)
        del self._queue[opportunity_id]
        self.version += 1
        return opportunity.order_line

    def _queued(self, opportunity_id: str) -> Opportunity:
        self.expire()
        opportunity = self._queue.get(opportunity_id)
        if opportunity is None:
            raise BotError(f"opportunity {opportunity_id} is no longer queued (taken or expired).")
        return opportunity

    def _drop_queued(self, name: str) -> None:
        for key in [k for k, opp in self._queue.items() if opp.bot == name]:
            del self._queue[key]
        self.version += 1

    # -- orders ----------------------------------------------------------------------------

    def submit_for(
        self, runtime: _BotRuntime, request: OrderRequest, algo: AlgoSpec | None = None
    ) -> BotOutcome:
        """``request`` as bot ``runtime``'s order: its budget first (for the whole quantity,
        when an algo works it), then the OMS and risk, or the algo."""
        request = replace(request, source=runtime.source)
        refusal = self.budget_refusal(runtime, request)
        if refusal is not None:
            message = f"bot {runtime.name} budget: {refusal}"
            logger.info("{}; {} {} {} not sent", message, request.side, request.qty, request.symbol)
            return BotOutcome(False, message)
        if algo is not None:
            if self.execution is None:
                return BotOutcome(False, "execution algos are not available here")
            started = self.execution.submit(request, algo)
            parent_id = started.parent.id if started.parent is not None else None
            return BotOutcome(started.accepted, started.message, parent_id)
        result = self.oms.submit(request)
        order_id = result.order.id if result.order is not None else None
        return BotOutcome(result.accepted, result.message, order_id)

    def budget_refusal(self, runtime: _BotRuntime, request: OrderRequest) -> str | None:
        """Why the bot's budget refuses ``request`` (one sentence), or None."""
        held = runtime.position(request.symbol)
        if (
            held != ZERO
            and (held > ZERO) != (request.side is Side.BUY)
            and request.qty <= abs(held)
        ):
            return None  # only reduces what the bot holds
        budget = runtime.budget
        if budget.max_daily_loss is not None:
            loss = runtime.day_start_pnl - runtime.total_pnl()
            if loss >= budget.max_daily_loss:
                return (
                    f"today's loss ${loss:,.2f} has reached the ${budget.max_daily_loss:,.2f} limit"
                )
        working = [o for o in self.oms.open_orders() if o.source == runtime.source]
        if budget.max_positions is not None:
            symbols = {p.symbol for p in runtime.portfolio.positions() if p.qty != ZERO}
            symbols |= {o.symbol for o in working}
            if request.symbol not in symbols and len(symbols) >= budget.max_positions:
                return f"it already trades {len(symbols)} symbols, its limit"
        if budget.max_notional is not None:
            price = self._price(request.symbol, request.limit_price)
            if price is None:
                return f"no price for {request.symbol} to measure the order's notional"
            used = runtime.performance().notional
            for order in working:
                mark = self._price(order.symbol, order.limit_price) or ZERO
                used += order.leaves_qty * mark * contract_multiplier(order.symbol)
            total = used + request.qty * price * contract_multiplier(request.symbol)
            if total > budget.max_notional:
                return (
                    f"${total:,.2f} of positions and orders would pass its"
                    f" ${budget.max_notional:,.2f} limit"
                )
        return None

    def _price(self, symbol: str, limit: Decimal | None) -> Decimal | None:
        return limit if limit is not None else self.market.last_price(symbol)

    def _cancel_orders(self, runtime: _BotRuntime) -> None:
        for order in [o for o in self.oms.open_orders() if o.source == runtime.source]:
            self.oms.cancel(order.id)

    def _owner(self, order_id: str) -> _BotRuntime | None:
        """The bot an order belongs to: its own, or a child of an algo the bot started."""
        order = self.oms.order(order_id)
        if order is None:
            return None
        source = order.source
        if source.startswith(ALGO_SOURCE) and self.execution is not None:
            parent = self.execution.parent(source.removeprefix(ALGO_SOURCE))
            source = parent.owner if parent is not None else ""
        if not source.startswith("bot:"):
            return None
        return self._bots.get(source.removeprefix("bot:"))

    # -- callbacks -------------------------------------------------------------------------

    def call(self, runtime: _BotRuntime, callback: Callable[..., object], *args: object) -> None:
        """Run one bot callback; an exception marks the bot errored and goes no further."""
        try:
            callback(*args)
        except Exception as error:
            self._fail(runtime, error)

    def _fail(self, runtime: _BotRuntime, error: Exception) -> None:
        logger.opt(exception=error).error("bot {} raised and is stopped", runtime.name)
        runtime.state = BotState.ERRORED
        runtime.error = f"{type(error).__name__}: {error}"
        keep = self.settings.on_error is OnError.KEEP
        if not keep:
            self._cancel_orders(runtime)
        self._drop_queued(runtime.name)
        message = (
            f"bot {runtime.name} raised {runtime.error} and was stopped; its working orders "
            f"were {'kept' if keep else 'cancelled'}"
        )
        self.bus.publish(
            Topic.ALERT,
            Alert(self.clock.now_ns(), Severity.ERROR, message, source=runtime.source),
        )
        self._changed(runtime)

    def _dispatch(self, symbol: str, method: str, message: object) -> None:
        for runtime in self._by_symbol.get(symbol, ()):
            if runtime.state is BotState.RUNNING:
                self.call(runtime, getattr(runtime.bot, method), message)

    def _on_bar(self, bar: Bar) -> None:
        self._dispatch(bar.symbol, "on_bar", bar)
        if self._queue:
            self.expire()

    def _on_quote(self, quote: Quote) -> None:
        self._dispatch(quote.symbol, "on_quote", quote)

    def _on_trade(self, trade: Trade) -> None:
        self._dispatch(trade.symbol, "on_trade", trade)

    def _on_fill(self, fill: Fill) -> None:
        runtime = self._owner(fill.order_id)
        if runtime is None:
            return
        runtime.apply_fill(fill)
        self.version += 1
        if runtime.state is BotState.RUNNING:
            self.call(runtime, runtime.bot.on_fill, fill)
        self._save(runtime)

    def _on_session(self, event: SessionEvent) -> None:
        if event.phase is SessionPhase.OPEN:
            for runtime in self._bots.values():
                self._new_day(runtime, event.session_date)

    def _new_day(self, runtime: _BotRuntime, day: str) -> None:
        runtime.day = day
        runtime.day_start_pnl = runtime.total_pnl()
        self._save(runtime)

    def _today(self) -> str:
        return ns_to_datetime(self.clock.now_ns(), NEW_YORK).date().isoformat()

    def _changed(self, runtime: _BotRuntime) -> None:
        self.version += 1
        if self._started:
            self._save(runtime)

    def _save(self, runtime: _BotRuntime) -> None:
        if not self.persist:
            return
        try:
            payload = json.dumps(runtime.persisted())
        except (TypeError, ValueError) as error:
            logger.warning("bot {}: its state is not JSON ({}); not saved", runtime.name, error)
            return
        self.journal.set_kv(_KV_PREFIX + runtime.name, payload)


def _request(opportunity: Opportunity, source: str) -> OrderRequest:
    """The order for ``opportunity``; its limit on the symbol's tick grid, rounded away from
    the market (a bot working from adjusted history may name a sub-penny close)."""
    if opportunity.limit is None:
        return OrderRequest(opportunity.symbol, opportunity.side, opportunity.qty, source=source)
    buying = opportunity.side is Side.BUY
    return OrderRequest(
        opportunity.symbol,
        opportunity.side,
        opportunity.qty,
        type=OrderType.LIMIT,
        tif=TimeInForce.DAY,
        limit_price=passive_tick(opportunity.symbol, opportunity.limit, buying),
        source=source,
    )


def _overrides(bot: Bot, method: str) -> bool:
    return getattr(type(bot), method) is not getattr(Bot, method)
