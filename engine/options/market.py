"""Option contracts as the engine trades them: instruments, quotes, and greeks for risk.

``OptionMarket`` sits between the chains (``OptionChainService``) and the rest of the engine:

* ``instrument`` says whether an OCC symbol is tradable here: its underlying is traded, its
  chain lists it, and it has not expired. Options are never shortable (no naked writing) and
  trade in whole contracts.
* ``watch`` puts a contract's quote on the bus, now and after every reprice of its chain, so
  the market view marks it, risk prices it and the sim venue fills against it. Only watched
  contracts are quoted: publishing every contract of every chain on every tick batch would
  cost far more than anyone looks at. A contract is watched from the first time the console
  previews it, an order names it, or a position holds it.
* ``contract`` and ``portfolio`` are the pre-trade option checks' greeks (``OptionGreeks``):
  dollar delta and vega, from the kernels, over the repriced chains.
* ``pricer`` gives the portfolio VaR its spots, vols and option terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal

from loguru import logger

from engine.core.bus import MessageBus, Topic
from engine.core.clock import Clock
from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.models import Instrument, Position, Quote
from engine.core.prices import ZERO, is_option_symbol
from engine.options.chain import (
    TRADING_DAYS,
    OptionChain,
    OptionChainService,
    expiry_ns,
    option_order_price,
    to_host,
)
from engine.options.occ import OptionSymbol, Right, parse_occ
from engine.options.portfolio import (
    VOL_POINT,
    ChainPricer,
    OptionTerms,
    aggregate_greeks,
)
from engine.risk.types import GreekExposure

QUOTE_SIZE = 20  # contracts shown on each side of a sim option quote


def describe(symbol: OptionSymbol) -> str:
    """'AAPL 19 Jan 24 190 call': how a trader reads an OCC symbol."""
    right = "call" if symbol.right is Right.CALL else "put"
    return f"{symbol.root} {symbol.expiry:%d %b %y} {symbol.strike.normalize():f} {right}"


class OptionMarket:
    """Options of the engine's underlyings; see the module docstring.

    ``underlyings`` lists the traded stock symbols; ``chain_of`` returns (building it if need
    be) an underlying's chain or None; ``annual_vol`` an underlying's annual vol when known
    (the sim calibration), else the chain's ATM vol is used; ``positions`` the book now.
    ``quote_contracts`` makes watched contracts' model quotes market quotes (the sim market
    maker); elsewhere quotes come from the venue's feed.
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        market: MarketView,
        service: OptionChainService,
        *,
        underlyings: Callable[[], Iterable[str]],
        chain_of: Callable[[str], OptionChain | None],
        annual_vol: Callable[[str], float | None],
        positions: Callable[[], Iterable[Position]],
        quote_contracts: bool,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._market = market
        self._underlyings = underlyings
        self._chain_of = chain_of
        self._annual_vol = annual_vol
        self._positions = positions
        self._quote_contracts = quote_contracts
        self._service = service
        self._watched: dict[str, set[str]] = {}  # underlying -> watched OCC symbols
        # Called with each contract as it starts being watched, so a venue's feed can quote it
        # at once where this market does not (``quote_contracts`` off).
        self.on_watch: list[Callable[[str], None]] = []
        service.on_reprice.append(self._repriced)

    # -- contracts ---------------------------------------------------------------------------

    def underlying_of(self, symbol: str) -> str | None:
        """The traded underlying an OCC symbol's root names, or None."""
        try:
            root = parse_occ(symbol).root
        except InputError:
            return None
        for underlying in self._underlyings():
            if underlying.replace(".", "")[:6] == root:
                return underlying
        return None

    def chain(self, symbol: str) -> OptionChain | None:
        """The chain that lists contract ``symbol``, or None."""
        underlying = self.underlying_of(symbol)
        if underlying is None:
            return None
        chain = self._chain_of(underlying)
        if chain is None:
            return None
        try:
            chain.index(symbol)
        except InputError:
            return None
        return chain

    def instrument(self, symbol: str) -> Instrument | None:
        """The contract as an instrument (None when no chain here lists it); starts quoting it."""
        chain = self.chain(symbol) if is_option_symbol(symbol) else None
        if chain is None:
            return None
        parsed = parse_occ(symbol)
        live = expiry_ns(parsed.expiry) > self._clock.now_ns()
        if live and symbol not in self._watched.get(chain.underlying, ()):
            # Deferred: risk may be asking from inside a bus handler; the quote follows at once.
            self._clock.call_later(0, lambda: self.watch(symbol))
        return Instrument(
            symbol=symbol,
            name=describe(parsed),
            tradable=live,
            shortable=False,
            easy_to_borrow=False,
            fractionable=False,
        )

    def watch(self, symbol: str) -> bool:
        """Quote contract ``symbol`` from now on; False when no chain here lists it."""
        chain = self.chain(symbol)
        if chain is None:
            return False
        watched = self._watched.setdefault(chain.underlying, set())
        if symbol not in watched:
            watched.add(symbol)
            logger.debug("quoting option {}", symbol)
            if self._quote_contracts:
                self._publish(chain, (symbol,))
            for listener in self.on_watch:
                listener(symbol)
        return True

    def watched(self, underlying: str) -> frozenset[str]:
        """The contracts of ``underlying`` being quoted."""
        return frozenset(self._watched.get(underlying, ()))

    def watch_held(self) -> None:
        """Watch every option position (after a restart, so held contracts get marked)."""
        for position in self._positions():
            if position.qty != ZERO and is_option_symbol(position.symbol):
                self.watch(position.symbol)

    def _repriced(self, chain: OptionChain) -> None:
        watched = self._watched.get(chain.underlying)
        if watched and self._quote_contracts:
            self._publish(chain, sorted(watched))

    def _publish(self, chain: OptionChain, symbols: Iterable[str]) -> None:
        if not math.isfinite(chain.spot):
            return
        now = self._clock.now_ns()
        bids = to_host(chain.bid)
        asks = to_host(chain.ask)
        for symbol in symbols:
            i = chain.index(symbol)
            bid, ask = float(bids[i]), float(asks[i])
            if not (math.isfinite(bid) and math.isfinite(ask)):
                continue
            quote = Quote(
                symbol=symbol,
                ts_ns=now,
                bid=option_order_price(bid),
                bid_size=QUOTE_SIZE if bid > 0 else 0,
                ask=option_order_price(ask),
                ask_size=QUOTE_SIZE,
            )
            self._bus.publish(Topic.QUOTE, quote)

    def spot(self, underlying: str) -> float:
        """The underlying's last price (else a position's mark); ``InputError`` if none yet."""
        price = self._market.last_price(underlying)
        if price is None:
            for position in self._positions():
                if position.symbol == underlying and position.last_price is not None:
                    price = position.last_price
        if price is None:
            raise InputError(f"there is no price yet for {underlying}.")
        return float(price)

    def annual_vol(self, underlying: str) -> float | None:
        """The underlying's annual vol where the market knows it (the sim calibration)."""
        return self._annual_vol(underlying)

    def existing_chain(self, underlying: str) -> OptionChain | None:
        """The underlying's chain if one is built already (never builds one)."""
        return self._service.chain(underlying)

    # -- greeks for the pre-trade checks (engine.risk.types.OptionGreeks) ----------------

    def contract(self, symbol: str) -> GreekExposure | None:
        """Dollar delta and $ vega per vol point of one contract held long."""
        chain = self.chain(symbol)
        if chain is None or not math.isfinite(chain.spot):
            return None
        i = chain.index(symbol)
        units = chain.contracts[i].multiplier
        delta = float(to_host(chain.delta[i]))
        vega = float(to_host(chain.vega[i]))
        if not (math.isfinite(delta) and math.isfinite(vega)):
            return None
        return GreekExposure(delta * units * chain.spot, vega * units * VOL_POINT)

    def portfolio(self) -> GreekExposure:
        """Dollar delta and vega of every position; ``InputError`` if one cannot be priced."""
        held = self.held()
        if not held:
            return GreekExposure(0.0, 0.0)
        greeks = aggregate_greeks(held, self.pricer(held))
        return GreekExposure(greeks.delta_dollars, greeks.vega)

    # -- the VaR's market inputs ----------------------------------------------------------------

    def held(self) -> list[tuple[str, Decimal]]:
        """Open positions as (symbol, qty) pairs."""
        return [(p.symbol, p.qty) for p in self._positions() if p.qty != ZERO]

    def pricer(self, held: Iterable[tuple[str, Decimal]]) -> _EnginePricer:
        """Spots, vols and option terms for ``held`` (chains are built for held options)."""
        return _EnginePricer(self, held)


class _EnginePricer:
    """Spots from the market view (else the position's mark), annual vols from ``annual_vol``
    else the chain's ATM vol, option terms from the repriced chains."""

    def __init__(self, options: OptionMarket, held: Iterable[tuple[str, Decimal]]) -> None:
        self._options = options
        chains: dict[str, OptionChain] = {}
        for symbol, _ in held:
            # A held option's chain is built if need be; a stock's is used only if it exists.
            if is_option_symbol(symbol):
                chain = options.chain(symbol)
            else:
                chain = options.existing_chain(symbol)
            if chain is not None:
                chains[chain.underlying] = chain
        self._chains = ChainPricer(chains)

    def spot(self, underlying: str) -> float:
        return self._options.spot(underlying)

    def underlying_vol(self, underlying: str) -> float:
        vol = self._options.annual_vol(underlying)
        return vol if vol is not None else self._chains.underlying_vol(underlying)

    def option_terms(self, symbol: str) -> OptionTerms:
        return self._chains.option_terms(symbol)


def annual_from_daily(daily_vol: float) -> float:
    return daily_vol * math.sqrt(TRADING_DAYS)
