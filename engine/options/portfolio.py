"""Portfolio option risk: aggregate greeks, and Monte Carlo VaR and expected shortfall.

Positions are ``(symbol, qty)`` pairs: a stock symbol holds shares, an OCC symbol holds
contracts. A ``Pricer`` says what the numbers need: each underlying's spot and annual vol,
and each option's terms (strike, years to expiry, rates, vol, multiplier). ``ChainPricer``
reads them from repriced ``OptionChain``s; ``StaticPricer`` takes them as given.

VaR and ES come from full revaluation: each underlying follows a driftless GBM over the
horizon (``horizon_days`` trading days, ``horizon_days / 252`` years, which is also how much
closer every option comes to expiry), shocks independent unless a correlation matrix is
given; options are repriced with Black-Scholes-Merton at their unchanged vols (sticky
strike). The paths run on the options backend's array module (CuPy on a GPU, NumPy
otherwise) and are deterministic for a seed on a given backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Protocol

import numpy as np

from engine.core.errors import InputError
from engine.options.backend import backend
from engine.options.bsm import bs_greeks, bs_price
from engine.options.chain import (
    CONTRACT_MULTIPLIER,
    MIN_T,
    TRADING_DAYS,
    OptionChain,
    to_host,
)
from engine.options.occ import is_occ, parse_occ

CALENDAR_DAYS = 365.0
VOL_POINT = 0.01
PATH_BLOCK = 16_384  # paths revalued at once: bounds memory at paths x options


@dataclass(slots=True, frozen=True)
class OptionTerms:
    """What pricing one option contract needs (T in years, rates and vol annual)."""

    underlying: str
    strike: float
    t: float
    r: float
    q: float
    vol: float
    is_call: bool
    multiplier: int = CONTRACT_MULTIPLIER


class Pricer(Protocol):
    """Market inputs for risk: spots, underlying vols and option terms."""

    def spot(self, underlying: str) -> float: ...

    def underlying_vol(self, underlying: str) -> float: ...

    def option_terms(self, symbol: str) -> OptionTerms: ...


@dataclass(slots=True)
class StaticPricer:
    """A pricer from fixed numbers: spots and annual vols per underlying, terms per option."""

    spots: Mapping[str, float]
    vols: Mapping[str, float]
    options: Mapping[str, OptionTerms] = field(default_factory=dict)

    def spot(self, underlying: str) -> float:
        return _lookup(self.spots, underlying, "price")

    def underlying_vol(self, underlying: str) -> float:
        return _lookup(self.vols, underlying, "volatility")

    def option_terms(self, symbol: str) -> OptionTerms:
        return _lookup(self.options, symbol, "option terms")


class ChainPricer:
    """Reads spots, option terms and model vols from repriced chains.

    An underlying's vol for the GBM shocks is ``vols[underlying]`` when given, else the
    model vol of its chain's nearest-to-the-money contract about a month out.
    """

    def __init__(
        self, chains: Mapping[str, OptionChain], vols: Mapping[str, float] | None = None
    ) -> None:
        self._chains = chains
        self._vols = dict(vols or {})

    def _chain(self, underlying: str) -> OptionChain:
        chain = self._chains.get(underlying)
        if chain is None or not math.isfinite(chain.spot):
            raise InputError(f"there is no priced option chain for {underlying}.")
        return chain

    def spot(self, underlying: str) -> float:
        return self._chain(underlying).spot

    def underlying_vol(self, underlying: str) -> float:
        if underlying in self._vols:
            return self._vols[underlying]
        chain = self._chain(underlying)
        t = np.asarray(to_host(chain.t))
        expiry = chain.contracts[int(np.argmin(np.abs(t - 1.0 / 12.0)))].symbol.expiry
        span = chain.expiry_slice(expiry)
        strike = np.asarray(to_host(chain.strike[span]))
        atm = span.start + int(np.argmin(np.abs(strike - chain.spot)))
        return float(to_host(chain.model_vol[atm]))

    def option_terms(self, symbol: str) -> OptionTerms:
        parsed = parse_occ(symbol)
        for chain in self._chains.values():
            if parsed.root == chain.contracts[0].symbol.root:
                i = chain.index(parsed)
                contract = chain.contracts[i]
                return OptionTerms(
                    underlying=chain.underlying,
                    strike=float(parsed.strike),
                    t=float(to_host(chain.t[i])),
                    r=float(to_host(chain.r[i])),
                    q=float(to_host(chain.q[i])),
                    vol=float(to_host(chain.model_vol[i])),
                    is_call=parsed.right.is_call,
                    multiplier=contract.multiplier,
                )
        raise InputError(f"no option chain lists {symbol}.")


@dataclass(slots=True, frozen=True)
class UnderlyingRisk:
    """Greeks of every position on one underlying, stock and options together.

    ``delta_shares`` is share-equivalent delta and ``delta_dollars`` its value at spot;
    ``gamma_shares`` is the change in share delta per $1 of spot and ``gamma_dollars`` the
    change in dollar delta for a 1% move; ``vega`` is $ per vol point (0.01); ``theta`` is $
    per calendar day; ``value`` is the marked value of the positions.
    """

    underlying: str
    spot: float
    delta_shares: float
    delta_dollars: float
    gamma_shares: float
    gamma_dollars: float
    vega: float
    theta: float
    value: float


@dataclass(slots=True, frozen=True)
class PortfolioGreeks:
    """Per-underlying greeks and the dollar totals across underlyings."""

    by_underlying: tuple[UnderlyingRisk, ...]
    delta_dollars: float
    gamma_dollars: float
    vega: float
    theta: float
    value: float


@dataclass(slots=True, frozen=True)
class VaRResult:
    """Loss at ``confidence`` over ``horizon_days`` (positive = a loss) and the mean loss beyond it."""

    var: float
    expected_shortfall: float
    mean_pnl: float
    horizon_days: float
    confidence: float
    paths: int
    backend: str


@dataclass(slots=True)
class _Book:
    """Positions flattened into arrays: stock shares per underlying, option legs."""

    underlyings: list[str]
    spot: np.ndarray
    vol: np.ndarray
    shares: np.ndarray
    leg_underlying: np.ndarray
    leg_units: np.ndarray  # contracts x multiplier: shares per $1 of option price
    strike: np.ndarray
    t: np.ndarray
    r: np.ndarray
    q: np.ndarray
    leg_vol: np.ndarray
    is_call: np.ndarray


def _lookup(mapping: Mapping, key: str, what: str):
    try:
        return mapping[key]
    except KeyError:
        raise InputError(f"the pricer has no {what} for {key}.") from None


def _book(positions: Iterable[tuple[str, Decimal]], pricer: Pricer, *, need_vol: bool) -> _Book:
    shares: dict[str, float] = {}
    legs: list[tuple[str, float, OptionTerms]] = []
    for symbol, qty in positions:
        quantity = float(qty)
        if quantity == 0:
            continue
        if is_occ(symbol):
            terms = pricer.option_terms(symbol)
            shares.setdefault(terms.underlying, 0.0)
            legs.append((terms.underlying, quantity, terms))
        else:
            shares[symbol] = shares.get(symbol, 0.0) + quantity
    underlyings = sorted(shares)
    where = {u: i for i, u in enumerate(underlyings)}
    return _Book(
        underlyings=underlyings,
        spot=np.array([pricer.spot(u) for u in underlyings], dtype=np.float64),
        vol=np.array(
            [pricer.underlying_vol(u) if need_vol else math.nan for u in underlyings],
            dtype=np.float64,
        ),
        shares=np.array([shares[u] for u in underlyings], dtype=np.float64),
        leg_underlying=np.array([where[u] for u, _, _ in legs], dtype=np.int64),
        leg_units=np.array([qty * terms.multiplier for _, qty, terms in legs], dtype=np.float64),
        strike=np.array([terms.strike for _, _, terms in legs], dtype=np.float64),
        t=np.array([terms.t for _, _, terms in legs], dtype=np.float64),
        r=np.array([terms.r for _, _, terms in legs], dtype=np.float64),
        q=np.array([terms.q for _, _, terms in legs], dtype=np.float64),
        leg_vol=np.array([terms.vol for _, _, terms in legs], dtype=np.float64),
        is_call=np.array([terms.is_call for _, _, terms in legs], dtype=bool),
    )


def aggregate_greeks(positions: Sequence[tuple[str, Decimal]], pricer: Pricer) -> PortfolioGreeks:
    """Greeks of stock and option positions, by underlying and in total (one kernel call)."""
    book = _book(positions, pricer, need_vol=False)
    n = len(book.underlyings)
    delta = book.shares.copy()
    gamma = np.zeros(n)
    vega = np.zeros(n)
    theta = np.zeros(n)
    value = book.shares * book.spot
    if book.strike.size:
        g = bs_greeks(
            book.spot[book.leg_underlying],
            book.strike,
            book.t,
            book.r,
            book.q,
            book.leg_vol,
            book.is_call,
        )
        units = book.leg_units
        at = book.leg_underlying
        np.add.at(delta, at, units * g.delta)
        np.add.at(gamma, at, units * g.gamma)
        np.add.at(vega, at, units * g.vega * VOL_POINT)
        np.add.at(theta, at, units * g.theta / CALENDAR_DAYS)
        np.add.at(value, at, units * g.price)
    rows = tuple(
        UnderlyingRisk(
            underlying=u,
            spot=float(book.spot[i]),
            delta_shares=float(delta[i]),
            delta_dollars=float(delta[i] * book.spot[i]),
            gamma_shares=float(gamma[i]),
            gamma_dollars=float(gamma[i] * book.spot[i] ** 2 * 0.01),
            vega=float(vega[i]),
            theta=float(theta[i]),
            value=float(value[i]),
        )
        for i, u in enumerate(book.underlyings)
    )
    return PortfolioGreeks(
        by_underlying=rows,
        delta_dollars=sum(row.delta_dollars for row in rows),
        gamma_dollars=sum(row.gamma_dollars for row in rows),
        vega=sum(row.vega for row in rows),
        theta=sum(row.theta for row in rows),
        value=sum(row.value for row in rows),
    )


def monte_carlo_var(
    positions: Sequence[tuple[str, Decimal]],
    pricer: Pricer,
    *,
    horizon_days: float = 1.0,
    confidence: float = 0.99,
    paths: int = 100_000,
    seed: int = 0,
    correlation: Sequence[Sequence[float]] | None = None,
    xp: ModuleType | None = None,
) -> VaRResult:
    """Monte Carlo VaR and expected shortfall of the positions by full revaluation.

    ``correlation`` is the underlyings' correlation matrix in sorted-symbol order (identity
    when omitted). VaR is the loss at the empirical ``1 - confidence`` quantile of P&L (the
    ``ceil(paths * (1 - confidence))``-th worst path) and ES the mean loss of those worst
    paths. ``xp`` defaults to the options backend's array module.
    """
    if not 0.5 < confidence < 1.0:
        raise InputError(f"a VaR confidence must be between 0.5 and 1, not {confidence}.")
    if not horizon_days > 0:
        raise InputError(f"a VaR horizon must be a positive number of days, not {horizon_days}.")
    tail = math.ceil(paths * (1.0 - confidence))
    if tail < 1:
        raise InputError(f"{paths} paths cannot resolve a {confidence:.4%} VaR.")
    xp = xp if xp is not None else backend().xp
    book = _book(positions, pricer, need_vol=True)
    n = len(book.underlyings)
    if n == 0:
        raise InputError("there are no positions to measure VaR on.")
    chol = _cholesky(correlation, n, book.underlyings)
    h = horizon_days / TRADING_DAYS
    spot = xp.asarray(book.spot)
    vol = xp.asarray(book.vol)
    shares = xp.asarray(book.shares)
    legs = book.strike.size > 0
    if legs:
        at = xp.asarray(book.leg_underlying)
        units = xp.asarray(book.leg_units)
        strike, r, q = xp.asarray(book.strike), xp.asarray(book.r), xp.asarray(book.q)
        leg_vol, is_call = xp.asarray(book.leg_vol), xp.asarray(book.is_call)
        t_after = xp.maximum(xp.asarray(book.t) - h, MIN_T)
        value_now = bs_price(spot[at], strike, xp.asarray(book.t), r, q, leg_vol, is_call)
    rng = xp.random.default_rng(seed)
    drift = -0.5 * vol * vol * h
    scale = vol * math.sqrt(h)
    pnl = xp.empty(paths, dtype=xp.float64)
    for start in range(0, paths, PATH_BLOCK):
        stop = min(start + PATH_BLOCK, paths)
        z = rng.standard_normal((stop - start, n))
        if chol is not None:
            z = z @ xp.asarray(chol).T
        moved = spot * xp.exp(drift + scale * z)
        block = (moved - spot) @ shares
        if legs:
            value_then = bs_price(moved[:, at], strike, t_after, r, q, leg_vol, is_call)
            block = block + (value_then - value_now) @ units
        pnl[start:stop] = block
    ordered = xp.sort(pnl)
    return VaRResult(
        var=-float(ordered[tail - 1]),
        expected_shortfall=-float(xp.mean(ordered[:tail])),
        mean_pnl=float(xp.mean(pnl)),
        horizon_days=horizon_days,
        confidence=confidence,
        paths=paths,
        backend=xp.__name__,
    )


def _cholesky(
    correlation: Sequence[Sequence[float]] | None, n: int, underlyings: list[str]
) -> np.ndarray | None:
    if correlation is None:
        return None
    matrix = np.asarray(correlation, dtype=np.float64)
    if matrix.shape != (n, n) or not np.allclose(matrix, matrix.T):
        raise InputError(
            f"the correlation matrix must be symmetric {n}x{n}, ordered {', '.join(underlyings)}."
        )
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise InputError("the correlation matrix is not positive definite.") from None
