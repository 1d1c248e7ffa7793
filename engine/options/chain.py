"""Option chains laid out for vectorized pricing, synthetic chains for the sim, and the service
that reprices every chain once per batch of underlying ticks.

An ``OptionChain`` holds one underlying's contracts, expiry-major then strike then call before
put, as parallel arrays (strike, expiry, call flag, rate, dividend yield, model vol, bid, ask)
on the options backend's array module (CuPy on a GPU, NumPy otherwise). ``reprice`` fills the
outputs (time to expiry, theoretical value, greeks, implied vol of the mid) with one call to
``bs_greeks`` and one to ``implied_vol`` for the whole chain. Money leaves this module as
``Decimal`` only through ``option_order_price``, on the option tick grid.

A synthetic chain gives each sim underlying a realistic surface: weekly and monthly expiries
to a year, strikes on listed increments around spot, an SVI smile per expiry with put skew
and an upward term structure of ATM vol starting a little above the symbol's realized vol,
and a sim market maker's bid/ask around theoretical whose width grows away from the money.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from types import ModuleType
from typing import Any

import numpy as np
from loguru import logger

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_MS, NS_PER_SECOND, Clock, TimerHandle, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.prices import option_tick_size
from engine.data.calibration import SymbolProfile
from engine.options.backend import backend
from engine.options.bsm import bs_greeks
from engine.options.iv import implied_vol
from engine.options.occ import OptionSymbol, Right, parse_occ
from engine.options.svi import SVIFit, SVIParams, fit_svi

NS_PER_YEAR = 365 * 86_400 * NS_PER_SECOND  # ACT/365: calendar time, as option markets quote
MIN_T = 60 * NS_PER_SECOND / NS_PER_YEAR  # a minute: the kernels' T=0 limit is undefined ATM
TRADING_DAYS = 252
CONTRACT_MULTIPLIER = 100
DEFAULT_RATE = 0.045
EXPIRY_TIME = time(16, 0)  # equity options stop trading at the 4 pm ET close
PENNY_TICK = 0.01
NICKEL_TICK = 0.05
NICKEL_ABOVE = 3.0  # penny-pilot grid: $0.01 below $3, $0.05 from $3
WEEKLIES = 6
MONTHLIES = 12
MAX_STRIKES_PER_EXPIRY = 61


@dataclass(slots=True, frozen=True)
class OptionContract:
    """One listed contract of a chain: its OCC symbol and the shares one contract controls."""

    symbol: OptionSymbol
    underlying: str
    multiplier: int = CONTRACT_MULTIPLIER

    @property
    def occ(self) -> str:
        """The compact OCC symbol, as orders and Alpaca name the contract."""
        return str(self.symbol)


@dataclass(slots=True, frozen=True)
class ContractView:
    """One contract's latest numbers, on the host, for the console (NaN where unknown)."""

    contract: OptionContract
    bid: float
    ask: float
    mid: float
    iv: float
    model_vol: float
    theo: float
    edge: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@dataclass(slots=True, frozen=True)
class SyntheticSurface:
    """A skewed, term-structured vol surface: one raw SVI smile per expiry, centred ATM-forward.

    ATM vol rises from ``atm_short`` towards ``atm_long`` with time constant ``term_years``.
    The ATM skew (d vol / d log-moneyness) is ``skew_1m * atm_vol`` at one month and decays as
    ``1/sqrt(T)``; ``rho`` tilts the smile (negative: puts richer) and ``curvature`` sets the
    SVI ``sigma`` (how round the bottom is) at one year.
    """

    atm_short: float
    atm_long: float
    term_years: float = 0.25
    skew_1m: float = -0.5
    rho: float = -0.7
    curvature: float = 0.2

    @classmethod
    def from_profile(cls, profile: SymbolProfile, premium: float = 0.02) -> SyntheticSurface:
        """ATM vol from the symbol's realized vol plus a small variance-risk premium."""
        realized = profile.daily_vol * math.sqrt(TRADING_DAYS)
        return cls(atm_short=realized + premium, atm_long=realized + 2.0 * premium)

    def atm_vol(self, t: float) -> float:
        """ATM vol for an expiry ``t`` years away."""
        return float(self._atm(np, np.float64(max(t, MIN_T))))

    def smile(self, t: float) -> SVIParams:
        """The raw SVI smile for an expiry ``t`` years away (k = ln(K/F), ATM at k = 0)."""
        a, b, sigma = self._svi(np, np.float64(max(t, MIN_T)))
        return SVIParams(a=float(a), b=float(b), rho=self.rho, m=0.0, sigma=float(sigma))

    def vols(self, xp: ModuleType, k, t):
        """Model vols at log-moneyness ``k`` and times ``t`` (arrays of one shape on ``xp``)."""
        t = xp.maximum(t, MIN_T)
        a, b, sigma = self._svi(xp, t)
        w = a + b * (self.rho * k + xp.sqrt(k * k + sigma * sigma))
        return xp.sqrt(xp.maximum(w, 0.0) / t)

    def _atm(self, xp: ModuleType, t):
        return self.atm_long + (self.atm_short - self.atm_long) * xp.exp(-t / self.term_years)

    def _svi(self, xp: ModuleType, t):
        # ATM total variance atm**2 * t at k = 0 and ATM slope dw/dk = b * rho = 2 * atm * t * skew.
        atm = self._atm(xp, t)
        skew = self.skew_1m * atm * xp.sqrt((1.0 / 12.0) / xp.maximum(t, 1.0 / 52.0))
        b = 2.0 * atm * t * skew / self.rho
        sigma = self.curvature * (0.25 + xp.sqrt(t))
        return atm * atm * t - b * sigma, b, sigma


@dataclass(slots=True, frozen=True)
class QuoteModel:
    """The sim market maker's quote: theo +/- half a spread, on the option tick grid.

    The spread is ``vol_spread * (1 + wing * |z|)`` vol points of vega plus ``pct`` of theo,
    never under two ticks, where ``z`` is log-moneyness in standard deviations: wide in the
    wings, tight at the money. A bid below one tick is no bid (0).
    """

    vol_spread: float = 0.004
    wing: float = 2.0
    pct: float = 0.01

    def quote(self, xp: ModuleType, theo, vega, z):
        """(bid, ask) arrays around ``theo`` given vega and standardized moneyness ``z``."""
        spread = vega * self.vol_spread * (1.0 + self.wing * xp.abs(z)) + self.pct * theo
        half = 0.5 * xp.maximum(spread, 2.0 * _tick(xp, theo))
        # Each side rounds outwards on the grid of its own price level; the small nudge keeps
        # exact tick multiples from moving a tick in binary.
        low, high = theo - half, theo + half
        bid = xp.floor(low / _tick(xp, low) + 1e-9) * _tick(xp, low)
        bid = xp.where(bid < PENNY_TICK, 0.0, bid)
        ask = xp.maximum(xp.ceil(high / _tick(xp, high) - 1e-9) * _tick(xp, high), PENNY_TICK)
        return bid, ask


def _tick(xp: ModuleType, price):
    return xp.where(price < NICKEL_ABOVE, PENNY_TICK, NICKEL_TICK)


class OptionChain:
    """One underlying's chain as parallel arrays, repriced in one vectorized pass.

    Inputs (per contract, on ``xp``): ``strike``, ``expiry_ns`` (int64), ``is_call``, ``r``,
    ``q``, ``model_vol`` (the vol theo is priced at), ``bid``/``ask`` (NaN: no quote). Outputs
    after ``reprice``: ``spot`` (the scalar broadcast to every contract), ``t`` (years),
    ``theo`` and ``delta``/``gamma``/``theta``/``vega``/``rho`` (per share; theta per year,
    vega and rho per 1.00), ``iv`` (implied vol of the mid, NaN where there is none or it is
    outside no-arbitrage bounds). A synthetic chain also recomputes ``model_vol`` from its
    surface and re-quotes bid/ask around theo on every reprice.

    The constructor sorts ``contracts`` into chain order and reorders ``model_vol``, ``bid``
    and ``ask`` (given in the order of ``contracts``) with them; every array afterwards,
    including those given to ``set_quotes``, is in chain order (see ``index``).
    """

    def __init__(
        self,
        underlying: str,
        contracts: list[OptionContract],
        *,
        r: float = DEFAULT_RATE,
        q: float = 0.0,
        model_vol: Any = None,
        bid: Any = None,
        ask: Any = None,
        surface: SyntheticSurface | None = None,
        quote_model: QuoteModel | None = None,
        xp: ModuleType | None = None,
    ) -> None:
        if not contracts:
            raise InputError(f"an option chain for {underlying} needs at least one contract.")
        order = sorted(
            range(len(contracts)),
            key=lambda i: (
                contracts[i].symbol.expiry,
                contracts[i].symbol.strike,
                contracts[i].symbol.right is Right.PUT,
            ),
        )
        contracts = [contracts[i] for i in order]
        self.xp = xp = xp if xp is not None else backend().xp
        positions = xp.asarray(order, dtype=xp.int64)
        n = len(contracts)
        self.underlying = underlying
        self.contracts = tuple(contracts)
        self.expiries = tuple(sorted({c.symbol.expiry for c in contracts}))
        self._index = {c.occ: i for i, c in enumerate(contracts)}
        if len(self._index) != n:
            raise InputError(f"the {underlying} chain lists a contract twice.")
        self._slices: dict[date, slice] = {}
        for i, contract in enumerate(contracts):
            found = self._slices.get(contract.symbol.expiry)
            self._slices[contract.symbol.expiry] = slice(found.start if found else i, i + 1)
        self.strike = xp.asarray([float(c.symbol.strike) for c in contracts], dtype=xp.float64)
        self.expiry_ns = xp.asarray([expiry_ns(c.symbol.expiry) for c in contracts], dtype=xp.int64)
        self.is_call = xp.asarray([c.symbol.right.is_call for c in contracts], dtype=bool)
        self.r = xp.full(n, r, dtype=xp.float64)
        self.q = xp.full(n, q, dtype=xp.float64)
        self.model_vol = self._column(model_vol, 0.0 if surface else math.nan)[positions]
        self.bid = self._column(bid, math.nan)[positions]
        self.ask = self._column(ask, math.nan)[positions]
        self.surface = surface
        self.quote_model = quote_model
        self.spot = math.nan
        self.ts_ns = 0
        self.version = 0
        nan = xp.full(n, math.nan, dtype=xp.float64)
        self.t = nan.copy()
        self.theo, self.delta, self.gamma = nan.copy(), nan.copy(), nan.copy()
        self.theta, self.vega, self.rho, self.iv = nan.copy(), nan.copy(), nan.copy(), nan.copy()

    def _column(self, values: Any, fill: float):
        xp = self.xp
        if values is None:
            return xp.full(len(self.contracts), fill, dtype=xp.float64)
        column = xp.asarray(values, dtype=xp.float64)
        if column.shape != (len(self.contracts),):
            raise InputError(f"the {self.underlying} chain needs one value per contract.")
        return column

    def __len__(self) -> int:
        return len(self.contracts)

    @property
    def mid(self):
        """Mid of a two-sided quote (a zero bid counts); NaN without an ask."""
        return 0.5 * (self.bid + self.ask)

    @property
    def edge(self):
        """Theoretical value minus mid: positive where the model says the option is cheap."""
        return self.theo - self.mid

    def index(self, symbol: str | OptionSymbol) -> int:
        """Position of a contract in the arrays; ``InputError`` if the chain lacks it."""
        key = str(symbol) if isinstance(symbol, OptionSymbol) else str(parse_occ(symbol))
        try:
            return self._index[key]
        except KeyError:
            raise InputError(f"the {self.underlying} chain has no contract {key}.") from None

    def expiry_slice(self, expiry: date) -> slice:
        """The contiguous range of one expiry's contracts (strike-major, call before put)."""
        span = self._slices.get(expiry)
        if span is None:
            raise InputError(f"the {self.underlying} chain has no expiry {expiry.isoformat()}.")
        return span

    def set_quotes(self, bid: Any, ask: Any) -> None:
        """Replace the market quotes (one per contract; NaN for a missing side)."""
        self.bid = self._column(bid, math.nan)
        self.ask = self._column(ask, math.nan)

    def reprice(self, spot: float, now_ns: int) -> None:
        """Recompute time to expiry, theo, greeks and mid IV for the whole chain at ``spot``.

        ``now_ns`` is the caller's clock time. A contract at or past its expiry is priced one
        minute before it (``MIN_T``), where the kernels are still defined at the money.
        """
        xp = self.xp
        self.spot = float(spot)
        self.ts_ns = now_ns
        self.t = xp.maximum((self.expiry_ns - now_ns) / NS_PER_YEAR, MIN_T)
        if self.surface is not None:
            forward = self.spot * xp.exp((self.r - self.q) * self.t)
            k = xp.log(self.strike / forward)
            self.model_vol = self.surface.vols(xp, k, self.t)
        greeks = bs_greeks(
            self.spot, self.strike, self.t, self.r, self.q, self.model_vol, self.is_call
        )
        self.theo, self.delta, self.gamma = greeks.price, greeks.delta, greeks.gamma
        self.theta, self.vega, self.rho = greeks.theta, greeks.vega, greeks.rho
        if self.quote_model is not None:
            z = xp.log(self.strike / self.spot) / (self.model_vol * xp.sqrt(self.t))
            self.bid, self.ask = self.quote_model.quote(xp, self.theo, self.vega, z)
        self.iv = implied_vol(
            self.mid, self.spot, self.strike, self.t, self.r, self.q, self.is_call
        )
        self.version += 1

    def fit_smile(self, expiry: date) -> SVIFit:
        """SVI fit of one expiry's mid IVs, from the out-of-the-money side with a real bid.

        In-the-money mids carry the same vol less precisely (their price is mostly intrinsic),
        and a zero bid says the quote only bounds the price. ``InputError`` before the first
        reprice or with fewer than five usable quotes.
        """
        if not math.isfinite(self.spot):
            raise InputError(f"the {self.underlying} chain has no price yet to fit a smile to.")
        span = self.expiry_slice(expiry)
        strike, t, r, q, iv, bid, is_call = (
            np.asarray(to_host(column[span]))
            for column in (self.strike, self.t, self.r, self.q, self.iv, self.bid, self.is_call)
        )
        k = np.log(strike / (self.spot * np.exp((r - q) * t)))
        usable = (is_call == (k >= 0)) & (bid > 0) & np.isfinite(iv)
        return fit_svi(k[usable], iv[usable] ** 2 * t[usable], float(t[0]))

    def view(self, i: int) -> ContractView:
        """Contract ``i``'s latest numbers as host floats."""

        def at(array) -> float:
            return float(to_host(array[i]))

        return ContractView(
            contract=self.contracts[i],
            bid=at(self.bid),
            ask=at(self.ask),
            mid=at(self.mid),
            iv=at(self.iv),
            model_vol=at(self.model_vol),
            theo=at(self.theo),
            edge=at(self.edge),
            delta=at(self.delta),
            gamma=at(self.gamma),
            theta=at(self.theta),
            vega=at(self.vega),
            rho=at(self.rho),
        )

    def views(self, expiry: date) -> list[ContractView]:
        """One expiry's contracts, strike by strike with the call before the put."""
        span = self.expiry_slice(expiry)
        return [self.view(i) for i in range(span.start, span.stop)]


def to_host(value):
    """A NumPy value from a NumPy or CuPy one (CuPy arrays copy to the host with ``get``)."""
    getter = getattr(value, "get", None)
    return getter() if callable(getter) else value


def expiry_ns(expiry: date) -> int:
    """When an equity option stops trading: 4 pm America/New_York on its expiry date."""
    return datetime_to_ns(datetime.combine(expiry, EXPIRY_TIME, tzinfo=NEW_YORK))


def years_to_expiry(expiry: date, now_ns: int) -> float:
    """ACT/365 years from ``now_ns`` to the expiry's close (negative once it has passed)."""
    return (expiry_ns(expiry) - now_ns) / NS_PER_YEAR


def option_order_price(value: float, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """A model price as an order price: a Decimal on the option tick grid."""
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{value} is not a price an option order can carry.")
    price = Decimal(repr(value))
    tick = option_tick_size(price)
    return (price / tick).quantize(Decimal(1), rounding=rounding) * tick


def strike_increment(spot: float) -> float:
    """The listed strike spacing around ``spot`` for a US equity."""
    for ceiling, step in ((25.0, 0.5), (100.0, 1.0), (250.0, 2.5), (1000.0, 5.0)):
        if spot < ceiling:
            return step
    return 10.0


def synthetic_expiries(today: date) -> list[date]:
    """Weekly Fridays for six weeks, then third-Friday monthlies out to a year, after ``today``."""
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    expiries = {friday + timedelta(weeks=w) for w in range(WEEKLIES)}
    year, month = today.year, today.month
    for _ in range(MONTHLIES + 1):
        expiries.add(_third_friday(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(d for d in expiries if d >= today)


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def synthetic_strikes(spot: float, t: float, vol: float) -> list[Decimal]:
    """Listed strikes from 2.5 standard deviations below to 2 above spot (at least +/-10%)."""
    step = strike_increment(spot)
    spread = vol * math.sqrt(max(t, 1.0 / 52.0))
    low = spot * min(math.exp(-2.5 * spread), 0.9)
    high = spot * max(math.exp(2.0 * spread), 1.1)
    while (high - low) / step + 1 > MAX_STRIKES_PER_EXPIRY:
        step *= 2.0
    first = math.ceil(low / step)
    last = math.floor(high / step)
    scale = Decimal(repr(step))
    return [scale * n for n in range(max(first, 1), last + 1)]


def synthetic_chain(
    profile: SymbolProfile,
    now_ns: int,
    *,
    spot: float | None = None,
    r: float = DEFAULT_RATE,
    q: float = 0.0,
    surface: SyntheticSurface | None = None,
    quote_model: QuoteModel | None = None,
    xp: ModuleType | None = None,
) -> OptionChain:
    """A sim underlying's chain, priced and quoted at ``spot`` (default: the profile's start)."""
    spot = float(profile.start_price) if spot is None else float(spot)
    surface = surface or SyntheticSurface.from_profile(profile)
    today = datetime.fromtimestamp(now_ns / NS_PER_SECOND, tz=NEW_YORK).date()
    root = profile.symbol.replace(".", "")[:6]
    contracts = []
    for expiry in synthetic_expiries(today):
        t = years_to_expiry(expiry, now_ns)
        if t <= 0:
            continue
        for strike in synthetic_strikes(spot, t, surface.atm_vol(t)):
            for right in (Right.CALL, Right.PUT):
                symbol = OptionSymbol(root=root, expiry=expiry, right=right, strike=strike)
                contracts.append(OptionContract(symbol=symbol, underlying=profile.symbol))
    chain = OptionChain(
        profile.symbol,
        contracts,
        r=r,
        q=q,
        surface=surface,
        quote_model=quote_model or QuoteModel(),
        xp=xp,
    )
    chain.reprice(spot, now_ns)
    return chain


class OptionChainService:
    """Keeps every chain repriced against its underlying, at most once per batch of ticks.

    A quote or trade of an underlying only marks its chain dirty and, if no flush is pending,
    schedules one ``interval_ns`` later on the injected clock; the flush reprices each dirty
    chain once at the market view's latest price. ``reprice(symbol)`` does it now, on demand.
    ``version`` grows with every reprice, for the console to poll.
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        market: MarketView,
        *,
        interval_ns: int = 100 * NS_PER_MS,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._market = market
        self._interval_ns = interval_ns
        self._chains: dict[str, OptionChain] = {}
        self._dirty: set[str] = set()
        self._timer: TimerHandle | None = None
        self._handlers: dict[str, Callable[[Any], None]] = {}
        self.version = 0
        self.reprices = 0
        # Called with each chain just repriced (the sim quotes watched contracts from it).
        self.on_reprice: list[Callable[[OptionChain], None]] = []

    def add_chain(self, chain: OptionChain) -> None:
        """Track ``chain``: its underlying's ticks now trigger (coalesced) reprices."""
        symbol = chain.underlying
        self._chains[symbol] = chain
        if symbol not in self._handlers:
            self._handlers[symbol] = self._on_tick
            self._bus.subscribe(Topic.QUOTE, self._on_tick, symbol=symbol)
            self._bus.subscribe(Topic.TRADE, self._on_tick, symbol=symbol)
        self.version += 1

    def add_synthetic(self, profile: SymbolProfile, **kwargs: Any) -> OptionChain:
        """Build and track a synthetic chain at the underlying's latest price (else its start)."""
        last = self._market.last_price(profile.symbol)
        spot = float(last) if last is not None else None
        chain = synthetic_chain(profile, self._clock.now_ns(), spot=spot, **kwargs)
        self.add_chain(chain)
        return chain

    def chain(self, symbol: str) -> OptionChain | None:
        """The latest chain of an underlying (None when it has none)."""
        return self._chains.get(symbol)

    def symbols(self) -> list[str]:
        """Underlyings with a chain, sorted."""
        return sorted(self._chains)

    def reprice(self, symbol: str) -> OptionChain:
        """Reprice ``symbol``'s chain now at the latest price; ``InputError`` if it has none."""
        chain = self._chains.get(symbol)
        if chain is None:
            raise InputError(f"there is no option chain for {symbol}.")
        self._dirty.discard(symbol)
        self._reprice(chain)
        return chain

    def flush(self) -> int:
        """Reprice every dirty chain once; returns how many were repriced."""
        self._timer = None
        dirty, self._dirty = self._dirty, set()
        count = 0
        for symbol in sorted(dirty):
            if self._reprice(self._chains[symbol]):
                count += 1
        return count

    def close(self) -> None:
        """Stop listening to the bus and drop any pending flush."""
        for symbol, handler in self._handlers.items():
            self._bus.unsubscribe(Topic.QUOTE, handler, symbol=symbol)
            self._bus.unsubscribe(Topic.TRADE, handler, symbol=symbol)
        self._handlers.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_tick(self, message: Any) -> None:
        self._dirty.add(message.symbol)
        if self._timer is None:
            self._timer = self._clock.call_later(self._interval_ns, self.flush)

    def _reprice(self, chain: OptionChain) -> bool:
        last = self._market.last_price(chain.underlying)
        if last is None:
            logger.debug("no price yet for {}; its chain keeps its last values", chain.underlying)
            return False
        chain.reprice(float(last), self._clock.now_ns())
        self.reprices += 1
        self.version += 1
        for listener in self.on_reprice:
            listener(chain)
        return True
