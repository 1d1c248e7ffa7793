"""The local Alpaca server's two websocket protocols.

Market data (``/v2/iex``, ``/v2/sip``, ``/v1beta1/indicative``,
``/v1beta1/opra``): every server message is an array of objects. With the
handshake header ``Content-Type: application/msgpack`` (what alpaca-py and
tickdeck send) frames are binary msgpack with msgpack Timestamps in ``t``;
otherwise JSON text with RFC 3339 times (the option feeds refuse that with
412). Flow: ``connected`` on open; ``auth`` within 10 s (402 bad keys, 403 a
second auth, 404 too late, 406 the key already holds this feed, 409 SIP when
forbidden: the socket then closes); subscribe/unsubscribe answered with the
whole current set (``corrections``/``cancelErrors`` follow ``trades`` on
stocks); 401 before auth, 405 over the symbol limit (the previous set stays),
410 a channel the feed lacks, 413 ``*`` on option quotes, 400 anything else.
Messages published in the same loop iteration go out in one frame.

Trading (``/stream``): JSON. ``{"action":"authenticate","data":{"key_id",
"secret_key"}}`` (or the data-stream ``auth`` shape) gets one ``authorization``
message; ``listen`` gets ``listening`` and, for ``trade_updates``, every order
update from then on. Server frames are binary, as Alpaca's paper server sends
them (the JSON text is the frame's payload).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import msgpack
from aiohttp import WSMsgType, web
from loguru import logger

from engine.alpaca.server.faults import FaultInjector
from engine.alpaca.server.venue import SimVenue
from engine.alpaca.wire import (
    OrderRecord,
    json_ready,
    stream_bar,
    stream_quote,
    stream_trade,
    trade_update_json,
)
from engine.core.bus import Topic
from engine.core.models import Bar, OrderUpdate, Quote, Trade

Message = dict[str, Any]

STOCK_FEEDS = ("/v2/iex", "/v2/sip")
OPTION_FEEDS = ("/v1beta1/indicative", "/v1beta1/opra")
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
OPTION_CHANNELS = ("trades", "quotes")
AUTH_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0  # how long a server-side close waits for the client's close frame
MAX_MESSAGES_PER_FRAME = 1000  # keeps a frame well under the 1 MiB alpaca-py accepts
MAX_QUEUED_FRAMES = 10_000  # a client this far behind is cut off, as Alpaca drops slow clients
REORDER_HOLD_S = 0.2
MALFORMED_DATA_FRAME = b"\xc1\xc1\xc1"  # 0xc1 is never used in msgpack
MALFORMED_TRADING_FRAME = '{"stream": "trade_updates", "data": '

ERRORS: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    412: "option messages are only available in MsgPack format",
    413: "star subscription is not allowed for option quotes",
    500: "internal error",
}
"""Alpaca's market-data stream error messages, verbatim."""


def error_message(code: int) -> Message:
    return {"T": "error", "code": code, "msg": ERRORS.get(code, "internal error")}


class _Connection:
    """One websocket: an ordered outbox drained by a writer task, and an optional silence."""

    __slots__ = ("authed", "key_id", "outbox", "request", "silent_until", "writer", "ws")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.outbox: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.silent_until = 0.0
        self.authed = False
        self.key_id = ""
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, frame: bytes | str) -> None:
        if asyncio.get_running_loop().time() < self.silent_until:
            return
        self.outbox.put_nowait(frame)

    def drop(self) -> None:
        """Cut the TCP connection with no close frame, as a network failure would."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _write(self) -> None:
        while True:
            frame = await self.outbox.get()
            if frame is None or self.ws.closed:
                return
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except ConnectionError:
                return

    async def finish(self) -> None:
        """Send what is queued, then close the socket."""
        self.outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self.writer
        await self.ws.close()


class _DataConnection(_Connection):
    __slots__ = ("feed", "msgpack", "pending", "subscriptions")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, feed: str) -> None:
        super().__init__(request, ws)
        self.feed = feed
        self.msgpack = request.headers.get("Content-Type", "").lower() == "application/msgpack"
        channels = OPTION_CHANNELS if feed in OPTION_FEEDS else STOCK_CHANNELS
        self.subscriptions: dict[str, set[str]] = {channel: set() for channel in channels}
        self.pending: list[Message] = []

    def encode(self, messages: list[Message]) -> bytes | str:
        if self.msgpack:
            return msgpack.packb(messages, use_bin_type=True)
        return json.dumps([json_ready(m) for m in messages])

    def control(self, message: Message) -> None:
        self.send(self.encode([message]))

    def wants(self, channel: str, symbol: str) -> bool:
        symbols = self.subscriptions.get(channel)
        return symbols is not None and (symbol in symbols or "*" in symbols)

    def push(self, message: Message) -> None:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(message)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if self.outbox.qsize() >= MAX_QUEUED_FRAMES:
            # Alpaca "may disconnect a slow client without a message" (error 407): so does this.
            logger.warning("alpaca server: dropping a slow data-stream client on {}", self.feed)
            self.drop()
            return
        for start in range(0, len(batch), MAX_MESSAGES_PER_FRAME):
            self.send(self.encode(batch[start : start + MAX_MESSAGES_PER_FRAME]))

    def ack(self) -> Message:
        """The whole current subscription set, as Alpaca confirms every change."""
        ack: Message = {"T": "subscription"}
        for channel, symbols in self.subscriptions.items():
            ack[channel] = sorted(symbols)
        if self.feed in STOCK_FEEDS:
            ack["corrections"] = ack["cancelErrors"] = sorted(self.subscriptions["trades"])
        return ack


class _Hub(abc.ABC):
    """What both stream hubs share: the open connections and the fault hooks."""

    def __init__(self, faults: FaultInjector, key_id: str, secret_key: str) -> None:
        self._faults = faults
        self._key_id = key_id
        self._secret_key = secret_key
        self._connections: list[Any] = []
        self._malformed_pending = 0

    def authenticated(self) -> int:
        """How many sockets are authenticated (on the trading stream: listening to trade_updates)."""
        return sum(1 for c in self._connections if c.authed)

    def drop_all(self) -> int:
        connections = list(self._connections)
        for connection in connections:
            connection.drop()
        return len(connections)

    def silence(self, seconds: float) -> int:
        until = asyncio.get_running_loop().time() + seconds
        for connection in self._connections:
            connection.silent_until = until
        return len(self._connections)

    def malformed(self, count: int) -> None:
        authed = [c for c in self._connections if c.authed]
        if not authed:
            self._malformed_pending += count
            return
        for connection in authed:
            for _ in range(count):
                connection.send(self._malformed_frame())

    def _on_authed(self, connection: Any) -> None:
        count, self._malformed_pending = self._malformed_pending, 0
        for _ in range(count):
            connection.send(self._malformed_frame())

    @abc.abstractmethod
    def _malformed_frame(self) -> bytes | str:
        """A frame the stream's clients cannot parse, in that stream's encoding."""

    async def close_all(self) -> None:
        for connection in list(self._connections):
            await connection.ws.close()


class DataStreamHub(_Hub):
    """Market-data websockets: the venue's quotes, trades and bars to every subscriber."""

    def __init__(
        self, venue: SimVenue, faults: FaultInjector, key_id: str, secret_key: str
    ) -> None:
        super().__init__(faults, key_id, secret_key)
        self._venue = venue
        venue.bus.subscribe(Topic.QUOTE, self._on_quote)
        venue.bus.subscribe(Topic.TRADE, self._on_trade)
        venue.bus.subscribe(Topic.BAR, self._on_bar)

    def _malformed_frame(self) -> bytes | str:
        return MALFORMED_DATA_FRAME

    def _fan_out(self, channel: str, symbol: str, build: Callable[[], Message]) -> None:
        message: Message | None = None
        for connection in self._connections:
            if connection.authed and connection.wants(channel, symbol):
                if message is None:
                    message = build()
                connection.push(message)

    def _on_quote(self, quote: Quote) -> None:
        self._fan_out("quotes", quote.symbol, lambda: stream_quote(quote))

    def _on_trade(self, trade: Trade) -> None:
        trade_id = self._venue.trade_ids
        self._fan_out("trades", trade.symbol, lambda: stream_trade(trade, trade_id))

    def _on_bar(self, bar: Bar) -> None:
        def build() -> Message:
            recorded = self._venue.recorded_bar(bar)
            return stream_bar(bar, recorded.trade_count, recorded.vwap)

        self._fan_out("bars", bar.symbol, build)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        feed = request.path
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        connection = _DataConnection(request, ws, feed)
        self._connections.append(connection)
        loop = asyncio.get_running_loop()
        timeout = loop.call_later(AUTH_TIMEOUT_S, self._auth_timeout, connection)
        try:
            connection.control({"T": "success", "msg": "connected"})
            if feed in OPTION_FEEDS and not connection.msgpack:
                connection.control(error_message(412))
                await connection.finish()
                return ws
            async for frame in ws:
                message = _decode(frame)
                if message is None:
                    connection.control(error_message(400))
                    continue
                if self._on_message(connection, message):
                    await connection.finish()
                    break
        finally:
            timeout.cancel()
            self._connections.remove(connection)
            connection.writer.cancel()
        return ws

    def _auth_timeout(self, connection: _DataConnection) -> None:
        if not connection.authed and not connection.ws.closed:
            connection.control(error_message(404))
            connection.outbox.put_nowait(None)
            asyncio.get_running_loop().create_task(connection.ws.close())

    def _on_message(self, connection: _DataConnection, message: Message) -> bool:
        """Handle one client message; True when the server closes the socket after it."""
        action = message.get("action")
        if action == "auth":
            return self._auth(connection, message)
        if action in ("subscribe", "unsubscribe"):
            if not connection.authed:
                connection.control(error_message(401))
            else:
                self._subscribe(connection, message, action == "subscribe")
            return False
        connection.control(error_message(400))
        return False

    def _auth(self, connection: _DataConnection, message: Message) -> bool:
        if connection.authed:
            connection.control(error_message(403))
            return False
        code = self._faults.take_auth_rejection("data")
        key = message.get("key")
        if code is None and (key != self._key_id or message.get("secret") != self._secret_key):
            code = 402
        if code is None and connection.feed == "/v2/sip" and self._faults.sip_forbidden:
            code = 409
        if code is None and any(
            c.authed and c.feed == connection.feed and c.key_id == key for c in self._connections
        ):
            code = 406
        if code is not None:
            logger.info("alpaca server: data auth on {} refused with {}", connection.feed, code)
            connection.control(error_message(code))
            return True
        connection.authed = True
        connection.key_id = str(key)
        connection.control({"T": "success", "msg": "authenticated"})
        self._on_authed(connection)
        return False

    def _subscribe(self, connection: _DataConnection, message: Message, add: bool) -> None:
        changes: dict[str, list[str]] = {}
        for channel, symbols in message.items():
            if channel == "action":
                continue
            if channel not in connection.subscriptions:
                connection.control(error_message(410))
                return
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                connection.control(error_message(400))
                return
            changes[channel] = symbols
        options = connection.feed in OPTION_FEEDS
        if add and options and "*" in changes.get("quotes", ()):
            connection.control(error_message(413))
            return
        proposed = {channel: set(symbols) for channel, symbols in connection.subscriptions.items()}
        for channel, symbols in changes.items():
            if add:
                proposed[channel].update(symbols)
            else:
                proposed[channel].difference_update(symbols)
        limit = self._faults.max_symbols
        if limit is not None:
            counted = (proposed["trades"] | proposed["quotes"]) - {"*"}
            if len(counted) > limit:
                connection.control(error_message(405))
                return
        connection.subscriptions = proposed
        connection.control(connection.ack())


class TradingStreamHub(_Hub):
    """The ``/stream`` websocket: authorization, listen, and ``trade_updates``."""

    def __init__(
        self, venue: SimVenue, faults: FaultInjector, key_id: str, secret_key: str
    ) -> None:
        super().__init__(faults, key_id, secret_key)
        self._listening: set[_Connection] = set()
        self._held: str | None = None
        self._held_timer: asyncio.TimerHandle | None = None
        venue.on_update(self._on_update)

    def _malformed_frame(self) -> bytes | str:
        return MALFORMED_TRADING_FRAME.encode()

    def authenticated(self) -> int:
        return len(self._listening)

    def _on_update(self, update: OrderUpdate, record: OrderRecord) -> None:
        frame = json.dumps(trade_update_json(update, record))
        if not self._faults.reorder_updates:
            self._release_held()
            self._broadcast(frame)
            return
        if self._held is None:
            self._held = frame
            self._held_timer = asyncio.get_running_loop().call_later(
                REORDER_HOLD_S, self._release_held
            )
            return
        held = self._take_held()
        self._broadcast(frame)
        self._broadcast(held)

    def _take_held(self) -> str:
        held, self._held = self._held or "", None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        return held

    def _release_held(self) -> None:
        if self._held is not None:
            self._broadcast(self._take_held())

    def _broadcast(self, frame: str) -> None:
        payload = frame.encode()
        copies = 2 if self._faults.duplicate_updates else 1
        for connection in self._listening:
            for _ in range(copies):
                connection.send(payload)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        connection = _Connection(request, ws)
        self._connections.append(connection)
        try:
            async for frame in ws:
                message = _decode_json(frame)
                if message is None:
                    continue
                self._on_message(connection, message)
        finally:
            self._connections.remove(connection)
            self._listening.discard(connection)
            connection.writer.cancel()
        return ws

    def _reply(self, connection: _Connection, stream: str, data: Message) -> None:
        connection.send(json.dumps({"stream": stream, "data": data}).encode())

    def _on_message(self, connection: _Connection, message: Message) -> None:
        action = message.get("action")
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        if action in ("authenticate", "auth"):
            key = data.get("key_id", message.get("key"))
            secret = data.get("secret_key", message.get("secret"))
            refused = self._faults.take_auth_rejection("trading") is not None
            if refused or key != self._key_id or secret != self._secret_key:
                self._reply(
                    connection,
                    "authorization",
                    {
                        "status": "unauthorized",
                        "action": "authenticate",
                        "message": "access key verification failed",
                    },
                )
                return
            connection.authed = True
            self._reply(
                connection, "authorization", {"status": "authorized", "action": "authenticate"}
            )
            self._on_authed(connection)
            return
        if action == "listen":
            if not connection.authed:
                self._reply(
                    connection, "authorization", {"status": "unauthorized", "action": "listen"}
                )
                return
            streams = [s for s in data.get("streams", []) if s == "trade_updates"]
            if streams:
                self._listening.add(connection)
            else:
                self._listening.discard(connection)
            self._reply(connection, "listening", {"streams": streams})


def _decode(frame: Any) -> Message | None:
    """A data-stream client message: msgpack in binary frames, JSON in text frames."""
    try:
        if frame.type is WSMsgType.BINARY:
            message = msgpack.unpackb(frame.data)
        elif frame.type is WSMsgType.TEXT:
            message = json.loads(frame.data)
        else:
            return None
    except (ValueError, msgpack.UnpackException):
        return None
    return message if isinstance(message, dict) else None


def _decode_json(frame: Any) -> Message | None:
    if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        message = json.loads(frame.data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
