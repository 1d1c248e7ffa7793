"""Option chains from Alpaca (paper and live): listed contracts, snapshot quotes, calibrated vols.

``AlpacaOptionChains.load`` builds an underlying's ``OptionChain`` from every page of the
trading API's ``/v2/options/contracts`` (each contract's ``size`` is its multiplier) and the
market-data API's chain snapshots (``/v1beta1/options/snapshots/{underlying}``), whose latest
quotes become the chain's bid/ask. Both are asked for expiries out to a year: left alone,
Alpaca lists only the contracts expiring this week. The model vol theo is priced at comes from the market:
per expiry, an SVI smile fitted to the quoted mids' implied vols (``OptionChain.fit_smile``);
where the fit fails (too few out-of-the-money quotes, no convergence, a poor fit), the
expiry's quoted vols interpolated by strike. Theo and edge then say where a quote sits
against its own expiry's smile.

A background task refreshes every loaded chain's quotes every few seconds and recalibrates
it; the fits run in a worker thread on a shallow copy of the chain (``reprice`` and
``set_quotes`` replace arrays rather than write into them, so the copy stays consistent),
so the event loop never waits on them. Each refresh publishes the watched contracts' quotes
on ``Topic.QUOTE``, which marks their positions and lets risk price them. A malformed
snapshot row is skipped with one log line; a failed refresh keeps the last quotes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import numpy as np
from loguru import logger

from engine.alpaca import mapping
from engine.alpaca.codec import parse_rfc3339_ns
from engine.alpaca.endpoints import AlpacaEndpoints
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_SECOND, Clock, ns_to_datetime
from engine.core.errors import BrokerError, BrokerUnavailable, DataError, InputError
from engine.core.models import Quote
from engine.core.prices import ZERO, to_decimal
from engine.options.chain import (
    OptionChain,
    OptionChainService,
    OptionContract,
    expiry_ns,
    to_host,
)
from engine.options.occ import parse_occ

REFRESH_S = 5.0
RETRY_S = 30.0  # a failed load is tried again on a request this long after it failed
HORIZON_DAYS = 366  # expiries out to a year, as the sim's chains (Alpaca's default: this week)
SNAPSHOT_PATH = "/v1beta1/options/snapshots/"
SNAPSHOT_PAGE_LIMIT = 1000  # Alpaca's maximum page
MAX_FIT_RMSE = 0.05  # five vol points: a worse smile says the fit missed the quotes
_FETCH_ERRORS = (BrokerError, aiohttp.ClientError, OSError, TimeoutError)
_UNREADABLE = (KeyError, TypeError, ValueError)  # a listing or page of an unexpected shape


def option_feed(stock_feed: str) -> str:
    """The options feed that goes with a stock feed: OPRA with a SIP subscription, else the
    free indicative feed."""
    return "opra" if stock_feed == "sip" else "indicative"


@dataclass(slots=True, frozen=True)
class SnapshotQuote:
    """One contract's latest quote from a chain snapshot; ``ask`` 0 means no offer."""

    symbol: str
    ts_ns: int
    bid: Decimal
    bid_size: int
    ask: Decimal
    ask_size: int
    iv: float | None  # Alpaca's implied vol, when it reports one

    def quote(self) -> Quote | None:
        """As a market quote (None without an offer)."""
        if self.ask <= ZERO:
            return None
        return Quote(self.symbol, self.ts_ns, self.bid, self.bid_size, self.ask, self.ask_size)


def parse_snapshot(symbol: str, raw: Any) -> SnapshotQuote:
    """One ``snapshots`` entry; ``DataError`` naming the contract and the fault if malformed."""
    try:
        parse_occ(symbol)
        quote = raw["latestQuote"]
        bid, ask = to_decimal(quote["bp"]), to_decimal(quote["ap"])
        bid_size, ask_size = int(quote["bs"]), int(quote["as"])
        ts_ns = parse_rfc3339_ns(quote["t"])
        iv = raw.get("impliedVolatility")
        iv = float(iv) if iv is not None else None
    except KeyError as error:
        raise DataError(symbol, f"the option snapshot has no {error.args[0]!r}") from None
    except (InputError, TypeError, ValueError, AttributeError) as error:
        raise DataError(symbol, f"the option snapshot is malformed: {error}") from None
    if bid < ZERO or ask < ZERO or bid_size < 0 or ask_size < 0:
        raise DataError(symbol, f"negative price or size in the snapshot quote {bid} x {ask}")
    if ask > ZERO and bid > ask:
        raise DataError(symbol, f"crossed snapshot quote: bid {bid} above ask {ask}")
    if iv is not None and not (math.isfinite(iv) and iv > 0):
        iv = None
    return SnapshotQuote(symbol, ts_ns, bid, bid_size, ask, ask_size, iv)


class OptionSnapshots:
    """``GET {data_url}/v1beta1/options/snapshots/{underlying}``, every page, with the
    adapter's keys: one aiohttp session, opened on first use, like the bar backfill's."""

    def __init__(
        self,
        endpoints: AlpacaEndpoints,
        *,
        feed: str | None = None,
        timeout_s: float = 10.0,
        page_limit: int = SNAPSHOT_PAGE_LIMIT,
    ) -> None:
        self._endpoints = endpoints
        self.feed = feed or option_feed(endpoints.feed)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._page_limit = page_limit
        self._session: aiohttp.ClientSession | None = None

    async def fetch(
        self, underlying: str, *, expiration_lte: date | None = None
    ) -> dict[str, SnapshotQuote]:
        """Every contract's latest quote (expiring by ``expiration_lte``, if given), by OCC
        symbol; malformed rows are skipped and logged.

        ``BrokerError`` when Alpaca answers with an error or a page is not JSON,
        ``BrokerUnavailable`` when it cannot be reached.
        """
        url = self._endpoints.data_url.rstrip("/") + SNAPSHOT_PATH + underlying
        params = {"feed": self.feed, "limit": str(self._page_limit)}
        if expiration_lte is not None:
            params["expiration_date_lte"] = expiration_lte.isoformat()
        quotes: dict[str, SnapshotQuote] = {}
        while True:
            page = await self._page(url, params)
            rows = page.get("snapshots") or {}
            if not isinstance(rows, dict):
                raise BrokerError("Alpaca's option chain snapshots are not an object")
            for symbol, raw in rows.items():
                try:
                    quotes[symbol] = parse_snapshot(symbol, raw)
                except DataError as error:
                    logger.warning("skipped an option snapshot row: {}", error)
            token = page.get("next_page_token")
            if not token:
                return quotes
            params["page_token"] = token

    async def _page(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {
            "APCA-API-KEY-ID": self._endpoints.key_id,
            "APCA-API-SECRET-KEY": self._endpoints.secret_key,
        }
        try:
            async with self._session.get(url, params=params, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise BrokerUnavailable(
                f"Alpaca's market data cannot be reached at {self._endpoints.data_url} "
                f"({type(error).__name__})"
            ) from None
        if status != 200:
            raise BrokerError(
                f"Alpaca's option chain snapshots answered HTTP {status}: {_message_of(text)}"
            )
        try:
            page = json.loads(text, parse_float=Decimal)
        except ValueError:
            raise BrokerError("Alpaca's option chain snapshots are not JSON") from None
        if not isinstance(page, dict):
            raise BrokerError("Alpaca's option chain snapshots are not an object")
        return page

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _message_of(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text[:200]


def build_chain(
    underlying: str, listed: Iterable[mapping.OptionContract], now_ns: int
) -> OptionChain:
    """An unquoted chain of the listed contracts still trading at ``now_ns``, each with its
    ``size`` as multiplier; a contract whose symbol does not parse is skipped and logged.
    ``InputError`` when none is left."""
    contracts: list[OptionContract] = []
    for listing in listed:
        try:
            symbol = parse_occ(listing.symbol)
        except InputError as error:
            logger.warning("skipped an option contract Alpaca listed: {}", error)
            continue
        if not listing.tradable or expiry_ns(symbol.expiry) <= now_ns:
            continue
        contracts.append(OptionContract(symbol, underlying, multiplier=listing.size))
    if not contracts:
        raise InputError(f"Alpaca lists no tradable option contracts on {underlying}.")
    return OptionChain(underlying, contracts)


def apply_quotes(chain: OptionChain, quotes: Mapping[str, SnapshotQuote]) -> int:
    """Set the chain's bid/ask from the snapshots (NaN where a contract has none, or no
    offer); returns how many contracts are quoted. Snapshots of contracts the chain does
    not list are ignored."""
    n = len(chain)
    bid = np.full(n, math.nan)
    ask = np.full(n, math.nan)
    quoted = 0
    for i, contract in enumerate(chain.contracts):
        snapshot = quotes.get(contract.occ)
        if snapshot is None or snapshot.ask <= ZERO:
            continue
        bid[i], ask[i] = float(snapshot.bid), float(snapshot.ask)
        quoted += 1
    chain.set_quotes(chain.xp.asarray(bid), chain.xp.asarray(ask))
    return quoted


def calibrated_vols(chain: OptionChain) -> np.ndarray:
    """Model vols for every contract of a repriced chain (host array, chain order).

    Per expiry: the SVI smile fitted to its mids' implied vols (``fit_smile``) at each
    strike's log-moneyness, if it converged with an RMSE under five vol points; else the
    expiry's quoted vols interpolated by strike (flat beyond the outermost), preferring the
    out-of-the-money side's; NaN for an expiry with no quoted vol at all.
    """
    strike, t, r, q, iv, is_call = (
        np.asarray(to_host(column))
        for column in (chain.strike, chain.t, chain.r, chain.q, chain.iv, chain.is_call)
    )
    k = np.log(strike / (chain.spot * np.exp((r - q) * t)))
    vols = np.full(len(chain), math.nan)
    for expiry in chain.expiries:
        span = chain.expiry_slice(expiry)
        fitted = None
        try:
            fit = chain.fit_smile(expiry)
        except InputError as error:
            logger.debug("{} {}: no smile fit ({})", chain.underlying, expiry, error)
        else:
            if fit.converged and fit.rmse <= MAX_FIT_RMSE:
                fitted = fit.params.implied_vol(k[span], fit.t)
                if not np.all(np.isfinite(fitted) & (fitted > 0)):
                    fitted = None
            else:
                logger.debug(
                    "{} {}: smile fit rejected (rmse {:.4f})", chain.underlying, expiry, fit.rmse
                )
        if fitted is None:
            fitted = _interpolated(strike[span], k[span], iv[span], is_call[span])
        vols[span] = fitted
    return vols


def _interpolated(strike: np.ndarray, k: np.ndarray, iv: np.ndarray, is_call: np.ndarray):
    quoted = np.isfinite(iv)
    otm = quoted & (is_call == (k >= 0))
    chosen = otm if otm.any() else quoted
    if not chosen.any():
        return np.full(strike.shape, math.nan)
    points = np.unique(strike[chosen])
    means = np.array([iv[chosen][strike[chosen] == x].mean() for x in points])
    return np.interp(strike, points, means)


class ContractLister(Protocol):
    async def option_contracts(
        self,
        underlying: str,
        *,
        expiration_gte: date | None = None,
        expiration_lte: date | None = None,
    ) -> list[mapping.OptionContract]: ...


class AlpacaOptionChains:
    """Chains loaded from Alpaca and kept fresh; see the module docstring.

    ``watched(underlying)`` names the contracts whose quotes go on the bus at each refresh
    (the engine's ``OptionMarket.watched``). Loaded chains are tracked by ``service``, which
    reprices them as their underlyings tick.
    """

    def __init__(
        self,
        contracts: ContractLister,
        snapshots: OptionSnapshots,
        service: OptionChainService,
        bus: MessageBus,
        clock: Clock,
        *,
        watched: Callable[[str], Iterable[str]] = lambda _underlying: (),
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._contracts = contracts
        self._snapshots = snapshots
        self._service = service
        self._bus = bus
        self._clock = clock
        self._watched = watched
        self._refresh_s = refresh_s
        self._chains: dict[str, OptionChain] = {}
        self._quotes: dict[str, dict[str, SnapshotQuote]] = {}
        self._loading: dict[str, asyncio.Task[OptionChain | None]] = {}
        self._failures: dict[str, tuple[str, int]] = {}  # underlying -> (why, retry after ns)
        self._horizon: dict[str, date] = {}  # the last expiry a loaded chain lists
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0
        # Called with each chain once loaded (the engine then watches its held contracts).
        self.on_load: list[Callable[[OptionChain], None]] = []

    def chain(self, underlying: str) -> OptionChain | None:
        """The loaded chain of ``underlying`` (None before ``load``)."""
        return self._chains.get(underlying)

    def snapshot(self, symbol: str) -> SnapshotQuote | None:
        """A contract's latest snapshot quote, from any loaded chain."""
        for quotes in self._quotes.values():
            found = quotes.get(symbol)
            if found is not None:
                return found
        return None

    def failure(self, underlying: str) -> str | None:
        """Why the last load of ``underlying``'s chain failed (None if it did not)."""
        failed = self._failures.get(underlying)
        return failed[0] if failed is not None else None

    async def ensure(self, underlying: str) -> OptionChain | None:
        """The chain, loaded on the first call (concurrent callers share one load); None when
        the load failed, and ``failure`` says why. A failed load is retried by a call made
        ``RETRY_S`` or more after it."""
        chain = self._chains.get(underlying)
        if chain is not None or self._failed_recently(underlying):
            return chain
        return await asyncio.shield(self._start_loading(underlying))

    def preload(self, underlying: str) -> None:
        """Start loading ``underlying``'s chain in the background (no-op if it is loaded or
        loading, or its last load failed less than ``RETRY_S`` ago)."""
        if underlying not in self._chains and not self._failed_recently(underlying):
            self._start_loading(underlying)

    def _failed_recently(self, underlying: str) -> bool:
        failed = self._failures.get(underlying)
        return failed is not None and self._clock.now_ns() < failed[1]

    def _start_loading(self, underlying: str) -> asyncio.Task[OptionChain | None]:
        task = self._loading.get(underlying)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._load_once(underlying), name=f"option-chain-{underlying}"
            )
            self._loading[underlying] = task
        return task

    async def _load_once(self, underlying: str) -> OptionChain | None:
        try:
            chain = await self.load(underlying)
        except (InputError, *_FETCH_ERRORS) as error:
            self._failed(underlying, str(error).rstrip("."))
            return None
        except _UNREADABLE as error:
            self._failed(underlying, f"Alpaca's answer could not be read ({type(error).__name__})")
            return None
        finally:
            self._loading.pop(underlying, None)
        self._failures.pop(underlying, None)
        for listener in self.on_load:
            listener(chain)
        return chain

    def _failed(self, underlying: str, why: str) -> None:
        retry_ns = self._clock.now_ns() + int(RETRY_S * NS_PER_SECOND)
        self._failures[underlying] = (why, retry_ns)
        logger.warning("no option chain for {} from Alpaca: {}", underlying, why)

    async def load(self, underlying: str) -> OptionChain:
        """List, quote and calibrate ``underlying``'s chain, track it, and keep it refreshed.

        ``InputError`` when Alpaca lists no tradable contract, ``BrokerError`` when it
        cannot be asked.
        """
        today = ns_to_datetime(self._clock.now_ns(), NEW_YORK).date()
        self._horizon[underlying] = horizon = today + timedelta(days=HORIZON_DAYS)
        listed = await self._contracts.option_contracts(
            underlying, expiration_gte=today, expiration_lte=horizon
        )
        chain = build_chain(underlying, listed, self._clock.now_ns())
        quotes = await self._snapshots.fetch(underlying, expiration_lte=horizon)
        quoted = apply_quotes(chain, quotes)
        self._service.add_chain(chain)
        await self._calibrate(chain)
        self._quotes[underlying] = quotes
        self._chains[underlying] = chain
        logger.info(
            "option chain for {} from Alpaca: {} contracts over {} expiries, {} quoted",
            underlying,
            len(chain),
            len(chain.expiries),
            quoted,
        )
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._refresh_forever(), name="alpaca-option-chains"
            )
        return chain

    async def refresh(self, underlying: str) -> None:
        """New snapshot quotes for a loaded chain, recalibrated; watched quotes published."""
        chain = self._chains[underlying]
        quotes = await self._snapshots.fetch(underlying, expiration_lte=self._horizon[underlying])
        apply_quotes(chain, quotes)
        self._quotes[underlying] = quotes
        await self._calibrate(chain)
        self.publish(underlying, self._watched(underlying))
        self.refreshes += 1

    def publish(self, underlying: str, symbols: Iterable[str]) -> int:
        """Put the latest snapshot quotes of ``symbols`` on the bus; returns how many."""
        quotes = self._quotes.get(underlying, {})
        published = 0
        for symbol in symbols:
            snapshot = quotes.get(symbol)
            quote = snapshot.quote() if snapshot is not None else None
            if quote is not None:
                self._bus.publish(Topic.QUOTE, quote)
                published += 1
        return published

    async def _calibrate(self, chain: OptionChain) -> None:
        self._service.reprice(chain.underlying)
        if not math.isfinite(chain.spot):
            logger.debug("no price yet for {}: its option vols wait for one", chain.underlying)
            return
        vols = await asyncio.to_thread(calibrated_vols, copy.copy(chain))
        chain.model_vol = chain.xp.asarray(vols)
        self._service.reprice(chain.underlying)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            for underlying in list(self._chains):
                try:
                    await self.refresh(underlying)
                except (InputError, *_FETCH_ERRORS) as error:
                    logger.warning("option quotes for {} not refreshed: {}", underlying, error)
                except _UNREADABLE as error:
                    logger.warning(
                        "option quotes for {} not refreshed: {} ({})",
                        underlying,
                        type(error).__name__,
                        error,
                    )

    async def stop(self) -> None:
        """Stop refreshing and loading, and close the market-data session."""
        tasks = [*self._loading.values(), *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loading.clear()
        self._task = None
        await self._snapshots.close()
