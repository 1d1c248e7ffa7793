"""Option chains from Alpaca in paper mode, against the local Alpaca-protocol server.

The server lists a small chain (``/v2/options/contracts``) and quotes it in chain
snapshots (``/v1beta1/options/snapshots/{underlying}``) priced from its sim market;
the loader turns both into an ``OptionChain`` whose model vols come from the quoted
smile. Most tests hold the server's market still (a pace of a thousandth of real
time), so the client prices at the very spot the server quoted at.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from loguru import logger

from engine.alpaca.broker import AlpacaBroker
from engine.alpaca.endpoints import resolve_endpoints
from engine.alpaca.server.rest import listed_contracts
from engine.client import LocalClient
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, LiveClock, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.models import Quote, Trade
from engine.core.prices import option_tick_size
from engine.options.alpaca_chain import (
    AlpacaOptionChains,
    OptionSnapshots,
    calibrated_vols,
    option_feed,
)
from engine.options.bsm import bs_price
from engine.options.chain import (
    OptionChain,
    OptionChainService,
    OptionContract,
    expiry_ns,
    to_host,
)
from engine.options.occ import OptionSymbol, Right
from tests.alpaca.conftest import ALPACA_KEY_ID, ALPACA_SECRET_KEY
from tests.alpaca.test_paper_engine import paper_engine

STILL = 1e-3  # the server's pace: its market barely moves during a test


def next_monday_morning() -> SimClock:
    """The server's clock for the still market: 10:00 New York on the next Monday, so its
    chain (weekly expiries from that Friday) is the same whatever day the tests run."""
    today = datetime.now(NEW_YORK).date()
    monday = today + timedelta(days=7 - today.weekday())
    return SimClock(datetime_to_ns(datetime.combine(monday, dt_time(10, 0), tzinfo=NEW_YORK)))


SNAPSHOTS = "/v1beta1/options/snapshots/"


def endpoints_of(server, data_url: str | None = None):
    return resolve_endpoints(
        env={},
        key_id=ALPACA_KEY_ID,
        secret_key=ALPACA_SECRET_KEY,
        trading_url=server.base_url,
        data_url=data_url or server.data_url,
        stream_url=server.stream_url,
    )


async def get_json(server, path: str) -> tuple[int, dict]:
    headers = {"APCA-API-KEY-ID": ALPACA_KEY_ID, "APCA-API-SECRET-KEY": ALPACA_SECRET_KEY}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.data_url + path, headers=headers) as response,
    ):
        return response.status, await response.json()


async def until(condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


class Rig:
    """A loader on its own bus and market view, whose AAPL price is the server's."""

    def __init__(self, server, *, refresh_s: float = 3600.0) -> None:
        self.server = server
        self.bus = MessageBus()
        self.clock = LiveClock()
        self.market = MarketView(self.bus)
        self.service = OptionChainService(self.bus, self.clock, self.market)
        self.endpoints = endpoints_of(server)
        self.broker = AlpacaBroker(self.bus, self.clock, self.endpoints)
        self.watched: set[str] = set()
        self.chains = AlpacaOptionChains(
            self.broker,
            OptionSnapshots(self.endpoints),
            self.service,
            self.bus,
            self.clock,
            watched=lambda _underlying: self.watched,
            refresh_s=refresh_s,
        )
        self.follow()

    def follow(self) -> None:
        """Give the client the server's current AAPL price, as the stream would."""
        price = self.server.venue.view.last_price("AAPL")
        self.bus.publish(Topic.TRADE, Trade("AAPL", self.clock.now_ns(), price, 100))

    async def snapshots(self) -> dict[str, dict]:
        _, page = await get_json(self.server, f"{SNAPSHOTS}AAPL?limit=1000")
        return page["snapshots"]


@pytest_asyncio.fixture
async def rig(alpaca_server_factory):
    server = await alpaca_server_factory(
        symbols=("AAPL", "MSFT"), speed=STILL, clock=next_monday_morning()
    )
    rig = Rig(server)
    yield rig
    await rig.chains.stop()
    rig.service.close()


def host(array) -> np.ndarray:
    return np.asarray(to_host(array))


# ---- the server's chain snapshots ------------------------------------------------------


@pytest.mark.asyncio
async def test_snapshots_page_through_every_listed_contract(rig):
    seen: dict[str, dict] = {}
    token = ""
    pages = 0
    while True:
        query = f"?limit=30&feed=indicative{f'&page_token={token}' if token else ''}"
        status, page = await get_json(rig.server, f"{SNAPSHOTS}AAPL{query}")
        assert status == 200
        seen.update(page["snapshots"])
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    listed = {c["symbol"] for c in listed_contracts(rig.server.venue, ["AAPL"])}
    assert (pages, set(seen)) == (3, listed)  # 88 contracts: 30 + 30 + 28


@pytest.mark.asyncio
async def test_an_unknown_underlying_has_empty_snapshots(rig):
    status, page = await get_json(rig.server, f"{SNAPSHOTS}ZZZZ")
    assert (status, page) == (200, {"snapshots": {}, "next_page_token": None})


@pytest.mark.asyncio
async def test_a_stock_feed_is_not_an_option_feed(rig):
    status, page = await get_json(rig.server, f"{SNAPSHOTS}AAPL?feed=sip")
    assert (status, page) == (400, {"message": "invalid feed: sip"})


@pytest.mark.asyncio
async def test_snapshot_quotes_sit_on_the_option_tick_grid(rig):
    for symbol, snapshot in (await rig.snapshots()).items():
        quote = snapshot["latestQuote"]
        bid, ask = Decimal(str(quote["bp"])), Decimal(str(quote["ap"]))
        assert bid % option_tick_size(bid) == 0, symbol
        assert ask % option_tick_size(ask) == 0, symbol
        assert 0 <= bid < ask, symbol


@pytest.mark.asyncio
async def test_snapshot_greeks_have_the_sign_of_their_right(rig):
    priced = {s: v for s, v in (await rig.snapshots()).items() if "greeks" in v}
    assert len(priced) > 70  # all but mids outside the no-arbitrage bounds
    for symbol, snapshot in priced.items():
        greeks = snapshot["greeks"]
        assert set(greeks) == {"delta", "gamma", "theta", "vega", "rho"}
        assert snapshot["impliedVolatility"] > 0
        call = symbol[-9] == "C"
        assert (greeks["delta"] > 0) == call and greeks["gamma"] > 0 and greeks["vega"] > 0


@pytest.mark.asyncio
async def test_snapshot_filters_match_the_contract_filters(rig):
    _, page = await get_json(rig.server, f"{SNAPSHOTS}AAPL?type=put&strike_price_gte=0")
    assert page["snapshots"] and all(symbol[-9] == "P" for symbol in page["snapshots"])


# ---- the loader --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_chain_lists_every_contract_the_server_lists(rig):
    chain = await rig.chains.load("AAPL")
    listed = listed_contracts(rig.server.venue, ["AAPL"])
    assert {c.occ for c in chain.contracts} == {c["symbol"] for c in listed}
    assert {c.multiplier for c in chain.contracts} == {100}


@pytest.mark.asyncio
async def test_the_chain_quotes_equal_the_snapshots(rig):
    chain = await rig.chains.load("AAPL")
    snapshots = await rig.snapshots()
    bid, ask = host(chain.bid), host(chain.ask)
    for i, contract in enumerate(chain.contracts):
        quote = snapshots[contract.occ]["latestQuote"]
        assert (bid[i], ask[i]) == (quote["bp"], quote["ap"]), contract.occ


@pytest.mark.asyncio
async def test_the_mid_ivs_round_trip_through_the_kernels(rig):
    chain = await rig.chains.load("AAPL")
    iv, mid, t = host(chain.iv), host(chain.mid), host(chain.t)
    strike, is_call = host(chain.strike), host(chain.is_call)
    priced = np.isfinite(iv)
    assert priced.sum() > 70
    prices = bs_price(
        chain.spot,
        strike[priced],
        t[priced],
        host(chain.r)[0],
        host(chain.q)[0],
        iv[priced],
        is_call[priced],
    )
    np.testing.assert_allclose(prices, mid[priced], rtol=0, atol=1e-8)


@pytest.mark.asyncio
async def test_calibrated_theo_is_within_a_few_cents_of_mid_for_liquid_strikes(rig):
    chain = await rig.chains.load("AAPL")
    strike, is_call, bid = host(chain.strike), host(chain.is_call), host(chain.bid)
    edge = host(chain.edge)
    # Liquid: out of the money (the side the smile is fitted to) with a real bid.
    liquid = (is_call == (strike >= chain.spot)) & (bid > 0)
    assert liquid.sum() >= 20
    assert np.all(np.abs(edge[liquid]) <= 0.03), edge[liquid]
    assert np.all(np.isfinite(host(chain.model_vol)))


@pytest.mark.asyncio
async def test_a_refresh_picks_up_the_new_quotes_and_publishes_watched_ones(
    alpaca_server_factory,
):
    server = await alpaca_server_factory(
        symbols=("AAPL",), speed=STILL, clock=next_monday_morning()
    )
    rig = Rig(server, refresh_s=0.1)
    try:
        chain = await rig.chains.load("AAPL")
        symbol = chain.contracts[len(chain) // 2].occ
        rig.watched.add(symbol)
        seen: list[Quote] = []
        rig.bus.subscribe(Topic.QUOTE, seen.append, symbol=symbol)
        before = host(chain.ask).copy()
        # The server's market jumps five dollars; its next snapshots are priced there.
        moved = server.venue.view.last_price("AAPL") + 5
        server.venue.bus.publish(
            Topic.TRADE, Trade("AAPL", server.venue.clock.now_ns(), moved, 100)
        )
        await until(lambda: not np.array_equal(host(chain.ask), before), what="a refresh")
        snapshots = await rig.snapshots()
        ask = host(chain.ask)
        assert all(
            ask[i] == snapshots[c.occ]["latestQuote"]["ap"] for i, c in enumerate(chain.contracts)
        )
        await until(lambda: bool(seen), what="the watched contract's quote")
        assert seen[-1].ask == Decimal(str(snapshots[symbol]["latestQuote"]["ap"]))
    finally:
        await rig.chains.stop()
        rig.service.close()


@pytest.mark.asyncio
async def test_snapshots_are_read_page_by_page(rig):
    snapshots = OptionSnapshots(rig.endpoints, page_limit=25)
    try:
        quotes = await snapshots.fetch("AAPL")
    finally:
        await snapshots.close()
    assert len(quotes) == 88


@pytest.mark.asyncio
async def test_concurrent_requests_share_one_load(rig):
    first, second = await asyncio.gather(rig.chains.ensure("AAPL"), rig.chains.ensure("AAPL"))
    assert first is not None and first is second is rig.chains.chain("AAPL")


@pytest.mark.asyncio
async def test_a_failed_load_is_remembered_and_not_retried_at_once(rig):
    rig.server.faults.http_error(503, path_prefix=SNAPSHOTS)
    assert await rig.chains.ensure("AAPL") is None
    # The server would answer now; the failure stands until the retry interval has passed.
    assert await rig.chains.ensure("AAPL") is None
    assert rig.chains.failure("AAPL") == (
        "Alpaca's option chain snapshots answered HTTP 503: service unavailable"
    )


@pytest.mark.asyncio
async def test_a_preloaded_chain_loads_in_the_background_and_tells_its_listeners(rig):
    loaded: list[OptionChain] = []
    rig.chains.on_load.append(loaded.append)
    rig.chains.preload("AAPL")
    await until(lambda: bool(loaded), what="the preloaded chain")
    assert loaded == [rig.chains.chain("AAPL")]


def test_the_options_feed_follows_the_stock_subscription():
    assert (option_feed("sip"), option_feed("iex")) == ("opra", "indicative")


# ---- malformed rows, from a small server of our own ---------------------------------------


GOOD = "AAPL261218C00135000"
MALFORMED = {
    "AAPL261218P00135000": {"greeks": {}},  # no latestQuote
    "AAPL261218C00140000": {
        "latestQuote": {"bp": "abc", "bs": 1, "ap": 1.2, "as": 1, "t": "2026-11-20T15:00:00Z"}
    },
    "AAPL261218P00140000": {
        "latestQuote": {"bp": 2.5, "bs": 1, "ap": 2.0, "as": 1, "t": "2026-11-20T15:00:00Z"}
    },
    "NOT-A-CONTRACT": {
        "latestQuote": {"bp": 1.0, "bs": 1, "ap": 1.1, "as": 1, "t": "2026-11-20T15:00:00Z"}
    },
}


@pytest_asyncio.fixture
async def malformed_feed(alpaca_server):
    async def chain(request: web.Request) -> web.Response:
        good = {
            "latestQuote": {
                "ap": 1.53, "as": 38, "ax": "C", "bp": 1.47, "bs": 38, "bx": "C", "c": "A",
                "t": "2026-11-20T15:00:00.000000001Z",
            },
            "impliedVolatility": 0.34,
        }  # fmt: skip
        return web.json_response({"snapshots": {GOOD: good, **MALFORMED}, "next_page_token": None})

    app = web.Application()
    app.router.add_get(SNAPSHOTS + "{underlying}", chain)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield endpoints_of(alpaca_server, f"http://127.0.0.1:{port}")
    await runner.cleanup()


@pytest.mark.asyncio
async def test_a_malformed_snapshot_row_is_skipped_with_one_log_line(malformed_feed):
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    snapshots = OptionSnapshots(malformed_feed)
    try:
        quotes = await snapshots.fetch("AAPL")
    finally:
        logger.remove(sink)
        await snapshots.close()
    assert list(quotes) == [GOOD]
    good = quotes[GOOD]
    assert (good.bid, good.ask, good.bid_size, good.iv) == (
        Decimal("1.47"),
        Decimal("1.53"),
        38,
        0.34,
    )
    assert len(lines) == len(MALFORMED)
    assert all(any(symbol in line for line in lines) for symbol in MALFORMED)


# ---- calibration where the smile cannot be fitted ---------------------------------------------


def test_an_expiry_too_thin_to_fit_takes_its_quoted_vols_interpolated_by_strike():
    expiry = date(2031, 6, 20)
    now_ns = expiry_ns(expiry) - int(0.5 * 365 * 86_400 * 1e9)  # half a year out
    spot, t, r = 100.0, 0.5, 0.045
    vols = {90: 0.30, 100: 0.25, 110: 0.22}  # quoted: the out-of-the-money side at each strike
    contracts, bid, ask = [], [], []
    for strike in (90, 100, 105, 110):
        for right in (Right.CALL, Right.PUT):
            symbol = OptionSymbol("XYZ", expiry, right, Decimal(strike))
            contracts.append(OptionContract(symbol, "XYZ"))
            forward = spot * math.exp(r * t)
            out_of_the_money = right.is_call == (strike >= forward)
            if strike in vols and out_of_the_money:
                price = float(bs_price(spot, strike, t, r, 0.0, vols[strike], right.is_call))
                bid.append(price)
                ask.append(price)
            else:
                bid.append(math.nan)
                ask.append(math.nan)
    chain = OptionChain("XYZ", contracts, bid=bid, ask=ask, xp=np)
    chain.reprice(spot, now_ns)
    model = calibrated_vols(chain)
    # Strikes 90, 100, 105, 110, call then put; 105 lies halfway between 100 and 110.
    expected = [0.30, 0.30, 0.25, 0.25, 0.235, 0.235, 0.22, 0.22]
    np.testing.assert_allclose(model, expected, atol=1e-9)


# ---- the engine in paper mode -----------------------------------------------------------


@pytest_asyncio.fixture
async def paper(alpaca_server_factory, tmp_path):
    server = await alpaca_server_factory(symbols=("AAPL", "MSFT"), speed=5.0)
    engine = paper_engine(server, tmp_path)
    client = LocalClient(engine)
    await client.start()
    await until(lambda: engine.market.quote("AAPL") is not None, what="the first AAPL quote")
    yield server, engine, client
    await client.stop()


@pytest.mark.asyncio
async def test_a_paper_console_gets_the_alpaca_chain(paper):
    server, _, client = paper
    snapshot = await client.option_chain("AAPL")
    assert snapshot.reason == ""
    listed = {c["symbol"] for c in listed_contracts(server.venue, ["AAPL"])}
    assert {view.contract.occ for view in snapshot.contracts} == listed
    assert len(snapshot.expiries) == 4


@pytest.mark.asyncio
async def test_a_paper_option_order_preview_is_priced_at_the_snapshot_ask(paper):
    _, engine, client = paper
    snapshot = await client.option_chain("AAPL")
    call = next(
        view
        for view in snapshot.contracts
        if view.contract.symbol.right is Right.CALL and view.bid > 0 and view.ask < 3
    )
    preview = await client.preview(f"buy 2 {call.contract.occ}")
    quote = engine.alpaca_options.snapshot(call.contract.occ)
    assert preview.reference_price == quote.ask
    assert preview.notional == 2 * 100 * quote.ask
    assert preview.violations == ()


@pytest.mark.asyncio
async def test_a_failed_alpaca_load_says_why(paper):
    server, _, client = paper
    server.faults.http_error(403, path_prefix=SNAPSHOTS)
    snapshot = await client.option_chain("MSFT")
    assert snapshot.contracts == ()
    assert snapshot.reason == (
        "the MSFT option chain could not be loaded from Alpaca: "
        "Alpaca's option chain snapshots answered HTTP 403: forbidden"
    )
