"""``AlpacaServer``: a local Alpaca-protocol server over tickdeck's sim market and sim venue.

One aiohttp application on one port (127.0.0.1 only) serves the trading REST
API, the market-data REST API, the trading stream at ``/stream`` and the
market-data streams at ``/v2/iex``, ``/v2/sip``, ``/v1beta1/indicative`` and
``/v1beta1/opra``. ``POST /_faults`` takes a fault as JSON (see
``FaultInjector.apply``); it needs no keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from loguru import logger

from engine.alpaca.server.faults import HTTP_FAULT_BODIES, FaultInjector
from engine.alpaca.server.rest import ApiError, MarketDataRoutes, TradingRoutes
from engine.alpaca.server.streams import (
    OPTION_FEEDS,
    STOCK_FEEDS,
    DataStreamHub,
    TradingStreamHub,
)
from engine.alpaca.server.venue import SimVenue, VenueRejection
from engine.alpaca.wire import error_body
from engine.core.clock import Clock, LiveClock
from engine.core.errors import InputError

LOOPBACK = "127.0.0.1"
TRADING_STREAM_PATH = "/stream"
FAULTS_PATH = "/_faults"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AlpacaServer:
    """A local Alpaca: REST and both streams on one loopback port, fills from the sim venue.

    ``seed`` fixes the market and the order ids; ``speed`` paces the sim
    market against the wall clock (1.0 is real time; the clock starts at
    ``clock``'s now, or at the next weekday 09:30 New York time outside the
    session); ``latency_ms`` is the venue's command latency. Only requests
    carrying ``key_id``/``secret_key`` are served.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        seed: int = 7,
        symbols: Sequence[str] = ("AAPL", "MSFT", "SPY"),
        key_id: str = "PKTEST",
        secret_key: str = "SECRET",
        speed: float = 1.0,
        latency_ms: float = 0,
        clock: Clock | None = None,
    ) -> None:
        if host != LOOPBACK:
            raise InputError(f"the local Alpaca server binds {LOOPBACK} only, not {host}")
        self._port = port
        self._key_id = key_id
        self._secret_key = secret_key
        start_ns = (clock or LiveClock()).now_ns()
        self.venue = SimVenue(
            seed=seed,
            symbols=tuple(symbols),
            speed=speed,
            latency_ms=latency_ms,
            start_ns=start_ns,
        )
        self.faults = FaultInjector()
        self._data = DataStreamHub(self.venue, self.faults, key_id, secret_key)
        self._trading = TradingStreamHub(self.venue, self.faults, key_id, secret_key)
        self.faults.targets = {"data": self._data, "trading": self._trading}
        self._streams = {TRADING_STREAM_PATH, *STOCK_FEEDS, *OPTION_FEEDS}
        self._runner: web.AppRunner | None = None
        self._bound_port = 0

    @property
    def port(self) -> int:
        """The port it listens on (known after ``start``)."""
        return self._bound_port

    @property
    def base_url(self) -> str:
        """Trading REST base (``APCA_API_BASE_URL``); the trading stream is ``/stream`` on it."""
        return f"http://{LOOPBACK}:{self._bound_port}"

    @property
    def data_url(self) -> str:
        """Market-data REST base (``APCA_API_DATA_URL``)."""
        return self.base_url

    @property
    def stream_url(self) -> str:
        """Market-data stream base (``APCA_API_STREAM_URL``); the feed path is appended."""
        return f"ws://{LOOPBACK}:{self._bound_port}"

    @property
    def trading_stream_url(self) -> str:
        return f"ws://{LOOPBACK}:{self._bound_port}{TRADING_STREAM_PATH}"

    def connected(self, stream: str) -> int:
        """Authenticated sockets on ``stream``: "data", or "trading" (those listening to
        trade_updates). Tests wait on it to know a client has (re)connected."""
        hubs = {"data": self._data, "trading": self._trading}
        if stream not in hubs:
            raise InputError(f'stream must be "data" or "trading", not "{stream}"')
        return hubs[stream].authenticated()

    async def start(self) -> None:
        """Open the first sim session and start serving."""
        await self.venue.start()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(FAULTS_PATH, self._faults_endpoint)
        app.router.add_get(TRADING_STREAM_PATH, self._trading.handle)
        for path in (*STOCK_FEEDS, *OPTION_FEEDS):
            app.router.add_get(path, self._data.handle)
        TradingRoutes(self.venue, self.venue.start_ns).add_to(app)
        MarketDataRoutes(self.venue).add_to(app)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
        logger.info("alpaca server: listening on {}", self.base_url)

    async def stop(self) -> None:
        """Close every socket, stop the market and the venue."""
        await self._data.close_all()
        await self._trading.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.venue.stop()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path == FAULTS_PATH:
            return await handler(request)
        upgrade = path in self._streams
        status = self.faults.take_http_error(path, upgrade=upgrade)
        if status is not None:
            code, message = HTTP_FAULT_BODIES[status]
            return web.json_response(error_body(code, message), status=status)
        if not upgrade and (
            request.headers.get("APCA-API-KEY-ID") != self._key_id
            or request.headers.get("APCA-API-SECRET-KEY") != self._secret_key
        ):
            return web.json_response(error_body(40110000, "request is not authorized"), status=401)
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()
        except VenueRejection as refusal:
            return web.json_response(error_body(refusal.code, str(refusal)), status=refusal.status)
        except web.HTTPNotFound:
            return web.json_response(error_body(40410000, "endpoint not found"), status=404)

    async def _faults_endpoint(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise InputError("a fault is a JSON object")
            result = self.faults.apply(body)
        except (ValueError, InputError) as error:
            return web.json_response({"message": str(error)}, status=400)
        return web.json_response({"ok": True, "result": result})
