"""The one seam between a console and the engine.

A console never touches engine objects: it pulls ``EngineSnapshot``s (only
what changed since its ``Cursor``) at 10–30 Hz and sends commands. Everything
here is async and made of immutable records, so the same interface can be
served in process (``LocalClient``, below) or over a socket to an attached
console (the headless daemon) without the console changing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from loguru import logger

from engine.bots.api import BotOutcome, Opportunity
from engine.bots.service import BotView
from engine.core.bus import Topic
from engine.core.clock import NS_PER_SECOND
from engine.core.conflate import SymbolSnapshot
from engine.core.errors import InputError
from engine.core.events import Alert
from engine.core.models import Account, Bar, Order, OrderRequest, Position, Side
from engine.core.prices import ZERO, contract_multiplier, is_option_symbol, ticks_between
from engine.execution import ParentResult, ParentView, parent_view
from engine.execution.service import ID_PREFIX as EXECUTION_ID_PREFIX
from engine.health import HealthSnapshot
from engine.node import Engine
from engine.options.chain import ContractView, OptionChain, to_host
from engine.options.portfolio import (
    PortfolioGreeks,
    VaRResult,
    aggregate_greeks,
    monte_carlo_var,
)
from engine.orders.language import (
    CancelAll,
    CancelOrder,
    Command,
    Flatten,
    Kill,
    OrderSyntaxError,
    PauseAlgo,
    ReplaceOrder,
    ResetKill,
    ResumeAlgo,
    SubmitAlgo,
    SubmitOrder,
    format_algo,
    format_request,
    parse,
)
from engine.risk.engine import LimitUsage
from engine.risk.types import RiskViolation

RECENT_ORDERS = 200  # closed orders kept in a snapshot beside every working one
RECENT_PARENTS = 50  # finished algo parents kept in a snapshot beside the unfinished ones
RECENT_REJECTIONS = 20
PORTFOLIO_RISK_EVERY_S = 3  # engine seconds a portfolio risk result is reused for
VAR_PATHS = 20_000
VAR_SEED = 20_240_315


@dataclass(slots=True, frozen=True)
class Cursor:
    """What a console has already seen; the next snapshot carries only what is newer."""

    market: int = 0
    book: int = 0
    alerts: int = 0


@dataclass(slots=True, frozen=True)
class BookSnapshot:
    orders: tuple[Order, ...]  # working orders, then recent ones, newest first
    positions: tuple[Position, ...]
    account: Account
    day_pnl: Decimal
    gross_exposure: Decimal
    net_exposure: Decimal
    # Execution algos' parent orders: working and paused, then recent ones, newest first.
    # Their children are among ``orders`` (``Order.parent_id``).
    parents: tuple[ParentView, ...] = ()


@dataclass(slots=True, frozen=True)
class Rejection:
    ts_ns: int
    summary: str  # "buy 100000 AAPL"
    reason: str


@dataclass(slots=True, frozen=True)
class RiskSnapshot:
    limits: tuple[LimitUsage, ...]
    kill_engaged: bool
    kill_reason: str
    kill_since_ns: int | None
    rejections: tuple[Rejection, ...]  # newest first


@dataclass(slots=True, frozen=True)
class EngineSnapshot:
    cursor: Cursor
    clock_ns: int
    mode: str
    quotes: tuple[SymbolSnapshot, ...]  # symbols that changed since the cursor
    book: BookSnapshot | None  # None when nothing changed since the cursor
    risk: RiskSnapshot | None
    health: HealthSnapshot
    alerts: tuple[Alert, ...]  # new since the cursor


@dataclass(slots=True, frozen=True)
class Preview:
    """What an order line would do, computed on every keystroke; nothing is sent."""

    line: str
    summary: str = ""  # the canonical form of the command
    error: str | None = None  # a syntax error, one sentence
    error_position: int | None = None
    error_token: str = ""
    request: OrderRequest | None = None
    notional: Decimal | None = None
    reference_price: Decimal | None = None  # the touch the order would trade against
    distance_pct: Decimal | None = None  # price above (+) or below (-) that touch
    distance_ticks: Decimal | None = None
    buying_power_after: Decimal | None = None
    violations: tuple[RiskViolation, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not any(not v.soft for v in self.violations)

    @property
    def needs_confirmation(self) -> bool:
        return self.ok and any(v.soft for v in self.violations)


@dataclass(slots=True, frozen=True)
class Outcome:
    ok: bool
    message: str
    needs_confirmation: bool = False
    order_id: str | None = None


@dataclass(slots=True, frozen=True)
class ChainSnapshot:
    """One underlying's option chain as last repriced, or why there is none (``reason``).

    ``contracts`` are in chain order: expiry, then strike, call before put. ``version``
    grows with every reprice, so a console redraws only when it changed.
    """

    underlying: str
    spot: float
    version: int
    ts_ns: int
    expiries: tuple[date, ...]
    contracts: tuple[ContractView, ...]
    reason: str = ""

    def expiry(self, expiry: date) -> tuple[ContractView, ...]:
        """One expiry's contracts, strike by strike with the call before the put."""
        return tuple(c for c in self.contracts if c.contract.symbol.expiry == expiry)


@dataclass(slots=True, frozen=True)
class SmileSnapshot:
    """One expiry's SVI fit: market and fitted vols at the quoted log-moneyness ``k = ln(K/F)``."""

    underlying: str
    expiry: date
    version: int  # the chain version it was fitted to
    t: float  # years to expiry
    k: tuple[float, ...]
    market_vol: tuple[float, ...]
    fitted_vol: tuple[float, ...]
    rmse: float


@dataclass(slots=True, frozen=True)
class PortfolioRisk:
    """Aggregate greeks of the open positions and their Monte Carlo VaR and expected shortfall.

    ``greeks`` is None (and ``reason`` says why) when a position cannot be priced; ``var``
    is None when there is nothing to measure or an underlying has no volatility here.
    """

    ts_ns: int
    horizon_days: float
    confidence: float
    greeks: PortfolioGreeks | None
    var: VaRResult | None
    reason: str = ""


@dataclass(slots=True, frozen=True)
class BotsSnapshot:
    """The bots pane's view: every bot, and the opportunities queued for the trader.

    ``version`` grows with every change, so a pane redraws only when it moved.
    """

    version: int
    clock_ns: int
    bots: tuple[BotView, ...]
    opportunities: tuple[Opportunity, ...]


class EngineClient(Protocol):
    """What a console may ask of an engine, in process or over a socket."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def snapshot(self, cursor: Cursor) -> EngineSnapshot: ...

    async def symbols(self) -> list[str]: ...

    async def bars(self, symbol: str) -> list[Bar]: ...

    async def history(self, symbol: str) -> list[Bar]: ...

    async def preview(self, line: str) -> Preview: ...

    async def execute(self, line: str, *, confirmed: bool = False) -> Outcome: ...

    async def submit(self, request: OrderRequest, *, confirmed: bool = False) -> Outcome: ...

    async def cancel(self, order_ref: str) -> Outcome: ...

    async def kill(self, *, flatten: bool = False) -> Outcome: ...

    async def reset_kill(self) -> Outcome: ...

    async def option_chain(self, symbol: str) -> ChainSnapshot | None: ...

    async def option_smile(self, symbol: str, expiry: date) -> SmileSnapshot | None: ...

    async def portfolio_risk(
        self,
        *,
        horizon_days: float = 1.0,
        confidence: float = 0.99,
        paths: int = VAR_PATHS,
        seed: int = VAR_SEED,
    ) -> PortfolioRisk: ...

    async def bots(self) -> BotsSnapshot: ...

    async def approve_opportunity(self, opportunity_id: str) -> Outcome: ...

    async def reject_opportunity(self, opportunity_id: str) -> Outcome: ...

    async def edit_opportunity(self, opportunity_id: str) -> Outcome: ...

    async def start_bot(self, name: str) -> Outcome: ...

    async def stop_bot(self, name: str) -> Outcome: ...

    async def pause_bot(self, name: str) -> Outcome: ...

    async def cycle_bot_mode(self, name: str) -> Outcome: ...


class LocalClient:
    """The engine in this process; the console and the engine share one event loop."""

    def __init__(self, engine: Engine, *, run_feed: bool = True) -> None:
        """``run_feed=False`` leaves the market still until the caller steps ``engine.driver``
        (deterministic tests and snapshots)."""
        self.engine = engine
        self._run_feed = run_feed
        self._book_version = 1
        self._parents_at = -1  # the execution service's version the book last saw
        self._orders_at = 0
        self._orders_copy: tuple[Order, ...] = ()
        self._feed: asyncio.Task[None] | None = None
        self._chains: dict[str, ChainSnapshot] = {}
        self._risk_key: tuple[object, ...] | None = None
        self._risk_result: PortfolioRisk | None = None
        bus = engine.bus
        for topic in (
            Topic.ORDER,
            Topic.FILL,
            Topic.POSITION,
            Topic.KILL_SWITCH,
            Topic.RISK_REJECT,
        ):
            bus.subscribe(topic, self._book_changed)

    def _book_changed(self, _message: object) -> None:
        self._book_version += 1

    async def start(self) -> None:
        await self.engine.start()
        if self._run_feed:
            self._feed = asyncio.create_task(self.engine.driver.run(), name="market-feed")

    async def stop(self) -> None:
        engine = self.engine
        engine.driver.stop()
        if self._feed is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        await engine.stop(cancel_open=engine.settings.cancel_on_exit)

    # -- snapshots --------------------------------------------------------------------------

    async def snapshot(self, cursor: Cursor) -> EngineSnapshot:
        engine = self.engine
        market_version, quotes = engine.market.changed_since(cursor.market)
        if engine.execution.version != self._parents_at:
            # A parent's state or progress changed, possibly with no order changing (a pause).
            self._parents_at = engine.execution.version
            self._book_version += 1
        book = risk = None
        # Marks move with every quote, so P&L is re-read whenever quotes changed too.
        if cursor.book != self._book_version or quotes:
            book = self._book()
            risk = self._risk()
        alerts = tuple(engine.alerts[cursor.alerts :])
        engine.refresh_health()
        return EngineSnapshot(
            cursor=Cursor(market_version, self._book_version, len(engine.alerts)),
            clock_ns=engine.clock.now_ns(),
            mode=engine.settings.mode.value,
            quotes=tuple(quotes),
            book=book,
            risk=risk,
            health=engine.health.snapshot(),
            alerts=alerts,
        )

    def _orders(self) -> tuple[Order, ...]:
        """Working then recent orders, copied; rebuilt only when an order changed, not per quote."""
        if self._orders_at != self._book_version:
            orders = self.engine.oms.orders()
            working = sorted(
                (o for o in orders if o.is_open), key=lambda o: o.created_ns, reverse=True
            )
            closed = sorted(
                (o for o in orders if not o.is_open), key=lambda o: o.updated_ns, reverse=True
            )
            self._orders_copy = tuple(
                dataclasses.replace(o) for o in working + closed[:RECENT_ORDERS]
            )
            self._orders_at = self._book_version
        return self._orders_copy

    def _book(self) -> BookSnapshot:
        oms = self.engine.oms
        positions = tuple(dataclasses.replace(p) for p in oms.positions())
        net = sum((p.market_value for p in positions), ZERO)
        return BookSnapshot(
            orders=self._orders(),
            positions=positions,
            account=dataclasses.replace(oms.account()),
            day_pnl=oms.day_pnl(),
            gross_exposure=oms.gross_exposure(),
            net_exposure=net,
            parents=self._parents(),
        )

    def _parents(self) -> tuple[ParentView, ...]:
        """Unfinished parents newest first, then the recent finished ones."""
        parents = self.engine.execution.parents()
        working = sorted(
            (p for p in parents if not p.state.is_terminal), key=lambda p: -p.created_ns
        )
        done = sorted((p for p in parents if p.state.is_terminal), key=lambda p: -p.updated_ns)
        return tuple(parent_view(p) for p in working + done[:RECENT_PARENTS])

    def _risk(self) -> RiskSnapshot:
        engine = self.engine
        kill = engine.risk.kill_switch
        rejections = tuple(
            Rejection(
                d.ts_ns,
                f"{d.request.side.value} {d.request.qty} {d.request.symbol}",
                "; ".join(v.message for v in d.violations),
            )
            for d in reversed(engine.oms.rejections()[-RECENT_REJECTIONS:])
        )
        return RiskSnapshot(
            limits=tuple(engine.risk.utilization(engine.oms)),
            kill_engaged=kill.engaged,
            kill_reason=kill.reason,
            kill_since_ns=kill.since_ns,
            rejections=rejections,
        )

    async def symbols(self) -> list[str]:
        return sorted(self.engine.instruments)

    async def bars(self, symbol: str) -> list[Bar]:
        return self.engine.intraday.bars(symbol)

    async def history(self, symbol: str) -> list[Bar]:
        """``symbol``'s backfilled daily bars (the history store's backfill chain), oldest
        first; empty until its backfill is done."""
        return self.engine.history.bars(symbol)

    # -- commands ---------------------------------------------------------------------------

    async def preview(self, line: str) -> Preview:
        try:
            command = parse(line)
        except OrderSyntaxError as error:
            return Preview(
                line, error=str(error), error_position=error.position, error_token=error.token
            )
        if isinstance(command, SubmitAlgo):
            # Risk checks each child as it goes out, not the parent as one order.
            preview = self._preview_order(line, command.request)
            summary = f"{format_algo(command.request, command.spec)} (each child checked by risk)"
            return dataclasses.replace(preview, summary=summary, violations=())
        if not isinstance(command, SubmitOrder):
            return Preview(line, summary=self._describe(command))
        return self._preview_order(line, command.request)

    def _preview_order(self, line: str, request: OrderRequest) -> Preview:
        engine = self.engine
        oms = engine.oms
        self._quote_option(request.symbol)
        decision = engine.risk.check(request, oms)
        quote = engine.market.quote(request.symbol)
        buying = request.side is Side.BUY
        touch = None
        if quote is not None and quote.is_two_sided:
            touch = quote.ask if buying else quote.bid
        price = (
            request.limit_price
            or request.stop_price
            or touch
            or engine.market.last_price(request.symbol)
        )
        multiplier = contract_multiplier(request.symbol)
        notional = request.qty * price * multiplier if price is not None else None
        distance_pct = distance_ticks = None
        order_price = request.limit_price or request.stop_price
        if order_price is not None and touch:
            distance_pct = (order_price - touch) / touch * 100
            distance_ticks = ticks_between(touch, order_price, request.symbol)
        bp_after = None
        if notional is not None:
            position = oms.position_qty(request.symbol)
            adds_risk = (position >= 0) if buying else (position <= 0)
            bp_after = oms.buying_power() - (notional if adds_risk else ZERO)
        return Preview(
            line,
            summary=format_request(request),
            request=request,
            notional=notional,
            reference_price=touch,
            distance_pct=distance_pct,
            distance_ticks=distance_ticks,
            buying_power_after=bp_after,
            violations=decision.violations,
        )

    def _describe(self, command: Command) -> str:
        oms = self.engine.oms
        match command:
            case CancelOrder(order_ref=ref):
                order = oms.resolve(ref)
                return f"cancel {order.id}" if order else f"cancel {ref} (no such order)"
            case CancelAll():
                return f"cancel all {len(oms.open_orders())} open order(s)"
            case ReplaceOrder(order_ref=ref):
                return f"replace {ref}"
            case Flatten(symbol=symbol):
                return f"flatten {symbol or 'all positions'}"
            case Kill():
                return "engage the kill switch: cancel every open order, block new risk"
            case ResetKill():
                return "reset the kill switch"
            case PauseAlgo(parent_ref=ref) | ResumeAlgo(parent_ref=ref):
                verb = "pause" if isinstance(command, PauseAlgo) else "resume"
                parent = self.engine.execution.resolve(ref)
                return f"{verb} {parent.id}" if parent else f"{verb} {ref} (no such algo)"
        return ""

    async def execute(self, line: str, *, confirmed: bool = False) -> Outcome:
        """Parse one order-language line and carry it out."""
        try:
            command = parse(line)
        except InputError as error:
            return Outcome(False, str(error))
        oms = self.engine.oms
        match command:
            case SubmitOrder(request=request):
                return await self.submit(request, confirmed=confirmed)
            case SubmitAlgo(request=request, spec=spec):
                return _algo_outcome(self.engine.execution.submit(request, spec))
            case PauseAlgo(parent_ref=ref):
                return _algo_outcome(self.engine.execution.pause(ref))
            case ResumeAlgo(parent_ref=ref):
                return _algo_outcome(self.engine.execution.resume(ref))
            case CancelOrder(order_ref=ref):
                return await self.cancel(ref)
            case CancelAll():
                result = oms.cancel_all()
                return Outcome(result.accepted, result.message)
            case ReplaceOrder(order_ref=ref, qty=qty, limit_price=limit, stop_price=stop):
                result = oms.replace(
                    ref, qty=qty, limit_price=limit, stop_price=stop, confirmed=confirmed
                )
                return self._submitted(result)
            case Flatten(symbol=symbol):
                results = oms.flatten(symbol)
                if not results:
                    return Outcome(True, "nothing to flatten")
                failed = [r.message for r in results if not r.accepted]
                return Outcome(
                    not failed, "; ".join(failed) or f"{len(results)} closing order(s) sent"
                )
            case Kill():
                return await self.kill()
            case ResetKill():
                return await self.reset_kill()
        return Outcome(False, "that command is not available here")

    async def submit(self, request: OrderRequest, *, confirmed: bool = False) -> Outcome:
        self._quote_option(request.symbol)
        return self._submitted(self.engine.oms.submit(request, confirmed=confirmed))

    def _quote_option(self, symbol: str) -> None:
        """An option the trader names is quoted from now on, so risk and the preview price it."""
        options = self.engine.option_market
        if options is not None and is_option_symbol(symbol):
            options.watch(symbol)

    @staticmethod
    def _submitted(result) -> Outcome:
        decision = result.decision
        needs = decision is not None and decision.needs_confirmation
        order_id = result.order.id if result.order is not None else None
        return Outcome(result.accepted, result.message, needs_confirmation=needs, order_id=order_id)

    async def cancel(self, order_ref: str) -> Outcome:
        """Cancel an order, or an algo's parent (by its id, "algo-3") and its children."""
        if order_ref.lower().startswith(EXECUTION_ID_PREFIX):
            return _algo_outcome(self.engine.execution.cancel(order_ref))
        result = self.engine.oms.cancel(order_ref)
        return Outcome(result.accepted, result.message)

    async def kill(self, *, flatten: bool = False) -> Outcome:
        self.engine.oms.kill("by the trader", flatten=flatten)
        return Outcome(True, "kill switch engaged: open orders cancelled, new risk blocked")

    async def reset_kill(self) -> Outcome:
        self.engine.oms.reset_kill()
        return Outcome(True, "kill switch reset")

    # -- options ----------------------------------------------------------------------------

    async def option_chain(self, symbol: str) -> ChainSnapshot | None:
        """``symbol``'s chain (built on this first request in sim mode, loaded from Alpaca in
        paper and live); a snapshot with only a ``reason`` where there is no chain; None for a
        symbol the engine does not trade."""
        engine = self.engine
        if symbol not in engine.instruments:
            return None
        chain = await engine.load_option_chain(symbol)
        if chain is None:
            return ChainSnapshot(
                symbol, math.nan, 0, 0, (), (), reason=engine.options_unavailable(symbol) or ""
            )
        cached = self._chains.get(symbol)
        if cached is None or cached.version != chain.version:
            cached = self._chains[symbol] = _chain_snapshot(chain)
        return cached

    async def option_smile(self, symbol: str, expiry: date) -> SmileSnapshot | None:
        """The SVI smile of one expiry of ``symbol``'s chain; None without a chain, an expiry
        of that date, or enough out-of-the-money quotes to fit (five)."""
        if symbol not in self.engine.instruments:
            return None
        chain = await self.engine.load_option_chain(symbol)
        if chain is None or expiry not in chain.expiries:
            return None
        try:
            fit = chain.fit_smile(expiry)
        except InputError as error:
            logger.debug("no smile for {} {}: {}", symbol, expiry, error)
            return None
        return SmileSnapshot(
            underlying=symbol,
            expiry=expiry,
            version=chain.version,
            t=fit.t,
            k=tuple(fit.k.tolist()),
            market_vol=tuple(fit.market_vol.tolist()),
            fitted_vol=tuple(fit.fitted_vol.tolist()),
            rmse=fit.rmse,
        )

    async def portfolio_risk(
        self,
        *,
        horizon_days: float = 1.0,
        confidence: float = 0.99,
        paths: int = VAR_PATHS,
        seed: int = VAR_SEED,
    ) -> PortfolioRisk:
        """Greeks and VaR/ES of the open positions, reused within a ``PORTFOLIO_RISK_EVERY_S``
        bucket of engine time while the book is unchanged (the same seed gives the same VaR)."""
        engine = self.engine
        now = engine.clock.now_ns()
        bucket = now // (PORTFOLIO_RISK_EVERY_S * NS_PER_SECOND)
        key = (self._book_version, bucket, horizon_days, confidence, paths, seed)
        if key == self._risk_key and self._risk_result is not None:
            return self._risk_result
        held = [(p.symbol, p.qty) for p in engine.oms.positions() if p.qty != ZERO]
        result = self._measure(held, now, horizon_days, confidence, paths, seed)
        self._risk_key, self._risk_result = key, result
        return result

    def _measure(
        self,
        held: list[tuple[str, Decimal]],
        now_ns: int,
        horizon_days: float,
        confidence: float,
        paths: int,
        seed: int,
    ) -> PortfolioRisk:
        def risk(greeks: PortfolioGreeks | None, var: VaRResult | None, reason: str = ""):
            return PortfolioRisk(now_ns, horizon_days, confidence, greeks, var, reason)

        options = self.engine.option_market
        if options is None:
            return risk(None, None, f"{self.engine.settings.mode} mode has no option pricing")
        pricer = options.pricer(held)
        try:
            greeks = aggregate_greeks(held, pricer)
        except InputError as error:
            return risk(None, None, str(error))
        if not held:
            return risk(greeks, None, "no open positions")
        try:
            var = monte_carlo_var(
                held,
                pricer,
                horizon_days=horizon_days,
                confidence=confidence,
                paths=paths,
                seed=seed,
            )
        except InputError as error:
            return risk(greeks, None, str(error))
        return risk(greeks, var)

    # -- bots ------------------------------------------------------------------------------

    async def bots(self) -> BotsSnapshot:
        """Every bot with its performance, and the trader's queue of opportunities."""
        service = self.engine.bots
        opportunities = tuple(service.opportunities())
        return BotsSnapshot(
            service.version, self.engine.clock.now_ns(), tuple(service.views()), opportunities
        )

    async def approve_opportunity(self, opportunity_id: str) -> Outcome:
        """Send a queued opportunity as its bot's order (the bot's budget and risk apply)."""
        return self._bot_command(lambda: self.engine.bots.approve(opportunity_id))

    async def reject_opportunity(self, opportunity_id: str) -> Outcome:
        return self._bot_command(lambda: self.engine.bots.reject(opportunity_id))

    async def edit_opportunity(self, opportunity_id: str) -> Outcome:
        """Take a queued opportunity off the queue; ``message`` is its order line to edit."""
        return self._bot_command(
            lambda: BotOutcome(True, self.engine.bots.take_for_edit(opportunity_id))
        )

    async def start_bot(self, name: str) -> Outcome:
        return self._bot_command(lambda: BotOutcome(True, self.engine.bots.start_bot(name)))

    async def stop_bot(self, name: str) -> Outcome:
        return self._bot_command(lambda: BotOutcome(True, self.engine.bots.stop_bot(name)))

    async def pause_bot(self, name: str) -> Outcome:
        """Pause ``name``: it keeps its orders and state but gets no data until started again."""
        return self._bot_command(lambda: BotOutcome(True, self.engine.bots.pause_bot(name)))

    async def cycle_bot_mode(self, name: str) -> Outcome:
        return self._bot_command(lambda: BotOutcome(True, self.engine.bots.cycle_mode(name)))

    @staticmethod
    def _bot_command(command: Callable[[], BotOutcome]) -> Outcome:
        try:
            outcome = command()
        except InputError as error:
            return Outcome(False, str(error))
        return Outcome(outcome.ok, outcome.message, order_id=outcome.order_id)


def _algo_outcome(result: ParentResult) -> Outcome:
    order_id = result.parent.id if result.parent is not None else None
    return Outcome(result.accepted, result.message, order_id=order_id)


def _chain_snapshot(chain: OptionChain) -> ChainSnapshot:
    """Every contract's numbers copied to host floats in one pass per column."""

    def host(array) -> list[float]:
        return to_host(array).tolist()

    columns = zip(
        chain.contracts,
        *(
            host(column)
            for column in (
                chain.bid,
                chain.ask,
                chain.mid,
                chain.iv,
                chain.model_vol,
                chain.theo,
                chain.edge,
                chain.delta,
                chain.gamma,
                chain.theta,
                chain.vega,
                chain.rho,
            )
        ),
        strict=True,
    )
    return ChainSnapshot(
        underlying=chain.underlying,
        spot=chain.spot,
        version=chain.version,
        ts_ns=chain.ts_ns,
        expiries=chain.expiries,
        contracts=tuple(ContractView(*row) for row in columns),
    )
