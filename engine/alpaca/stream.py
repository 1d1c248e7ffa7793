"""Alpaca's market-data stream: one upstream websocket per feed for the whole process.

tickdeck is the hub: bots, the console and attached consoles all call
``subscribe``/``unsubscribe`` on the one ``AlpacaMarketData``, which counts
every consumer's requests per (channel, symbol) and keeps the desired set on
the wire, re-sent after every reconnect. Records go out on the ``MessageBus``
(see ``engine.alpaca.codec`` for the topic of each message type).

The connection runs inside the engine's asyncio loop. A reader task moves raw
frames from the socket into a ``BoundedQueue`` (oldest frames dropped and
counted when the consumer falls behind: memory stays bounded); the dispatcher
decodes, normalizes and publishes them. Errors are handled as Alpaca documents
them: 402 stops (wrong keys), 406 waits slowly for the key's one connection,
405 keeps the symbols that fit, 409 on sip/opra falls back to iex/indicative.
Dropped or silent sockets reconnect with jittered exponential backoff; after a
reconnect the gap is filled from REST minute bars, published before live data.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import aiohttp
import msgpack
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from engine.alpaca.codec import FrameDecoder, MalformedFrame, control_messages
from engine.alpaca.mapping import bar_from_alpaca
from engine.circuit import CircuitBreaker
from engine.core.bus import BoundedQueue, MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, Clock, ns_to_datetime
from engine.core.errors import BrokerError, InputError
from engine.core.events import Alert, Severity
from engine.core.models import Bar
from engine.health import HealthMonitor, Status

COMPONENT = "alpaca.data"
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
OPTION_CHANNELS = ("trades", "quotes")
FEED_PATHS = {
    "iex": "/v2/iex",
    "sip": "/v2/sip",
    "delayed_sip": "/v2/delayed_sip",
    "test": "/v2/test",
    "indicative": "/v1beta1/indicative",
    "opra": "/v1beta1/opra",
}
OPTION_FEEDS = frozenset({"indicative", "opra"})
# A plan without the paid feed answers 409; the free feed of the same market is the fallback.
FALLBACK_FEED = {"sip": "iex", "opra": "indicative"}
NS_PER_MINUTE = 60 * NS_PER_SECOND

MSG_402 = (
    "Alpaca rejected the API keys (402 auth failed): check APCA_API_KEY_ID and APCA_API_SECRET_KEY"
)
MSG_406 = (
    "another client is using this key's one market-data connection (406 connection limit exceeded)"
)

BackfillFn = Callable[[Sequence[str], int, int], Awaitable[list[Bar]]]


class StreamEndpoints(Protocol):
    """What the stream needs of ``engine.alpaca.endpoints.AlpacaEndpoints``."""

    key_id: str
    secret_key: str
    data_url: str
    data_stream_url: str


class StreamState(StrEnum):
    STOPPED = "stopped"  # before run() and after stop()
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    LIVE = "live"
    BACKING_OFF = "backing_off"
    FAILED = "failed"  # gave up: the keys or the plan are wrong; see ``last_error``


@dataclass(slots=True)
class StreamStats:
    """Counters for the health pane. ``last_message_ns`` is engine-clock time of the last frame."""

    events: int = 0  # records published on the bus
    frames: int = 0
    msgs_per_s: float = 0.0  # records per second, sampled about once a second
    reconnects: int = 0
    last_message_ns: int | None = None
    dropped: int = 0  # messages lost because the consumer fell behind the socket
    malformed: int = 0  # frames and messages that could not be read
    backfilled: int = 0  # bars published from REST to fill reconnect gaps


class _Fatal(Exception):
    """Stop for good: retrying cannot help."""


class _Retry(Exception):
    """Close and reconnect; ``delay_s`` overrides the backoff (0 for at once)."""

    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class _Silent(Exception):
    """The socket stayed open but sent nothing for too long."""


_END = object()  # the reader's last queue item: the connection is over
# (key id, stream host, options?) of every stream running in this process: Alpaca allows one.
_ACTIVE: set[tuple[str, str, bool]] = set()


def stream_base(data_stream_url: str) -> str:
    """The stream host without a feed path (``AlpacaEndpoints.data_stream_url`` ends with one)."""
    base = data_stream_url.rstrip("/")
    for path in FEED_PATHS.values():
        if base.endswith(path):
            return base.removesuffix(path)
    return base


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Equal jitter: half the capped exponential delay, plus up to the other half at random.

    Spreading retries keeps a fleet of clients from reconnecting in lockstep (429 storms).
    """
    capped = min(cap_s, base_s * 2 ** min(attempt, 32))
    return capped / 2 + rng.uniform(0, capped / 2)


def _array_len(frame: object) -> int:
    """Messages in a frame, read from the msgpack array header alone (for drop counts)."""
    if not isinstance(frame, bytes) or not frame:
        return 0
    head = frame[0]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC and len(frame) >= 3:
        return int.from_bytes(frame[1:3], "big")
    if head == 0xDD and len(frame) >= 5:
        return int.from_bytes(frame[1:5], "big")
    return 1


def _rfc3339(ts_ns: int) -> str:
    return ns_to_datetime(ts_ns, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RestBarBackfill:
    """Default gap filler: ``GET {data_url}/v2/stocks/bars`` (1Min), following ``next_page_token``.

    Prices are read from the JSON text straight into Decimal. ``feed`` is the
    REST feed to ask (the stream sets it to iex after a sip fallback).
    """

    def __init__(self, endpoints: StreamEndpoints, *, feed: str = "iex", timeout_s: float = 10.0):
        self._endpoints = endpoints
        self.feed = feed
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __call__(self, symbols: Sequence[str], start_ns: int, end_ns: int) -> list[Bar]:
        params = {
            "symbols": ",".join(symbols),
            "timeframe": "1Min",
            "start": _rfc3339(start_ns),
            "end": _rfc3339(end_ns),
            "limit": "10000",
            "feed": self.feed,
            "sort": "asc",
        }
        headers = {
            "APCA-API-KEY-ID": self._endpoints.key_id,
            "APCA-API-SECRET-KEY": self._endpoints.secret_key,
        }
        url = self._endpoints.data_url.rstrip("/") + "/v2/stocks/bars"
        bars: list[Bar] = []
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                async with session.get(url, params=params, headers=headers) as response:
                    text = await response.text()
                    if response.status != 200:
                        raise BrokerError(
                            f"Alpaca's bar history answered HTTP {response.status}: {_message_of(text)}"
                        )
                page = json.loads(text, parse_float=Decimal)
                for symbol, rows in (page.get("bars") or {}).items():
                    bars.extend(bar_from_alpaca(symbol, row) for row in rows)
                token = page.get("next_page_token")
                if not token:
                    break
                params["page_token"] = token
        bars.sort(key=lambda bar: (bar.ts_ns, bar.symbol))
        return bars


def _message_of(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text[:200]


class AlpacaMarketData:
    """The process's one market-data connection to Alpaca (per feed endpoint).

    ``endpoints`` is an ``AlpacaEndpoints``; the feed's path is taken from
    ``feed``, not from ``endpoints.data_stream_url``. ``channels`` are the
    channels ``subscribe`` uses when none are given. ``silence_timeout_s``:
    reconnect when a subscribed socket sends nothing for this long (Alpaca
    sends no heartbeats on data streams; use ``None`` or a longer value outside
    market hours, when quiet symbols may go silent). ``backfill`` fills
    reconnect gaps (default: ``RestBarBackfill``; ``None`` for the default).
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        endpoints: StreamEndpoints,
        *,
        feed: str = "iex",
        channels: Iterable[str] = ("trades", "quotes"),
        health: HealthMonitor | None = None,
        backfill: BackfillFn | None = None,
        silence_timeout_s: float | None = 15.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        connection_limit_retry_s: float = 30.0,
        backfill_timeout_s: float = 15.0,
        queue_frames: int = 256,
        rng: random.Random | None = None,
    ) -> None:
        if feed not in FEED_PATHS:
            raise InputError(f"unknown Alpaca feed '{feed}': use one of {', '.join(FEED_PATHS)}")
        self._bus = bus
        self._clock = clock
        self._endpoints = endpoints
        self.feed = feed
        self._options = feed in OPTION_FEEDS
        self._default_channels = self._check_channels(channels)
        self._health = health
        self._default_backfill = RestBarBackfill(endpoints, feed=feed) if backfill is None else None
        self._backfill = backfill or self._default_backfill
        # Gap fills stop asking a data service that keeps failing; see engine.circuit.
        self.circuit = CircuitBreaker("data", health=health)
        self.silence_timeout_s = silence_timeout_s
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._connection_limit_retry_s = connection_limit_retry_s
        self._backfill_timeout_s = backfill_timeout_s
        self._queue_frames = queue_frames
        self._rng = rng or random.Random()
        self._decoder = FrameDecoder(options=self._options)
        self._refs: Counter[tuple[str, str]] = Counter()
        self._rejected: set[tuple[str, str]] = set()
        self._newly_rejected: list[tuple[str, str]] = []
        self._pending: deque[tuple[str, tuple[tuple[str, str], ...]]] = deque()
        self._send_lock = asyncio.Lock()
        self._ws: ClientConnection | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._outage_since: int | None = None  # engine time the live stream was lost
        self._fallback_warned = False
        self._conn_limit_warned = False
        self._last_data_ns: int | None = None  # engine time of the last data frame, for gap fills
        self._rate_mark: tuple[int, int] | None = None
        self.state = StreamState.STOPPED
        self.stats = StreamStats()
        self.last_error = ""

    # ---- subscriptions -------------------------------------------------------------------

    def _check_channels(self, channels: Iterable[str]) -> tuple[str, ...]:
        allowed = OPTION_CHANNELS if self._options else STOCK_CHANNELS
        chosen = tuple(channels)
        for channel in chosen:
            if channel not in allowed:
                raise InputError(
                    f"'{channel}' is not a channel of the {self.feed} feed: use {', '.join(allowed)}"
                )
        return chosen

    @property
    def subscriptions(self) -> dict[str, frozenset[str]]:
        """The desired set, per channel: every consumer's requests, less what the plan refused."""
        wanted: dict[str, set[str]] = {}
        for (channel, symbol), count in self._refs.items():
            if count > 0 and (channel, symbol) not in self._rejected:
                wanted.setdefault(channel, set()).add(symbol)
        return {channel: frozenset(symbols) for channel, symbols in wanted.items()}

    @property
    def rejected(self) -> frozenset[tuple[str, str]]:
        """(channel, symbol) pairs the plan's symbol limit kept off the stream (405)."""
        return frozenset(self._rejected)

    def subscribe(self, symbols: Iterable[str], channels: Iterable[str] | None = None) -> None:
        """Add one consumer's interest; new (channel, symbol) pairs go upstream at once if live."""
        added = []
        for pair in self._pairs(symbols, channels):
            self._refs[pair] += 1
            if self._refs[pair] == 1 and pair not in self._rejected:
                added.append(pair)
        if added:
            self._request("subscribe", added)

    def unsubscribe(self, symbols: Iterable[str], channels: Iterable[str] | None = None) -> None:
        """Drop one consumer's interest; a pair leaves the wire when no consumer wants it."""
        removed = []
        for pair in self._pairs(symbols, channels):
            if self._refs[pair] <= 0:
                continue
            self._refs[pair] -= 1
            if self._refs[pair] == 0:
                del self._refs[pair]
                if pair in self._rejected:
                    self._rejected.discard(pair)
                else:
                    removed.append(pair)
        if removed:
            self._request("unsubscribe", removed)

    def _pairs(
        self, symbols: Iterable[str], channels: Iterable[str] | None
    ) -> list[tuple[str, str]]:
        chosen = self._default_channels if channels is None else self._check_channels(channels)
        names = [s.strip().upper() for s in symbols]
        return [(channel, symbol) for channel in chosen for symbol in names if symbol]

    def _request(self, action: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Send a (un)subscribe now if connected; otherwise the next connection sends the full set."""
        if self._ws is None or self.state is not StreamState.LIVE:
            return
        asyncio.get_running_loop().create_task(self._send_request(action, tuple(pairs)))

    async def _send_request(self, action: str, pairs: tuple[tuple[str, str], ...]) -> None:
        message: dict[str, object] = {"action": action}
        for channel, symbol in pairs:
            message.setdefault(channel, []).append(symbol)  # type: ignore[union-attr]
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                return
            # Alpaca answers every request in order (an ack or an error): the FIFO pairs them up.
            self._pending.append((action, pairs))
            try:
                await ws.send(msgpack.packb(message))
            except WebSocketException:
                logger.debug("market-data {} not sent: the connection closed", action)

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, authenticate, subscribe and read until ``stop()`` or a fatal error.

        An instance runs once; a second instance streaming the same keys and
        market in this process is refused (Alpaca allows one connection: share
        this one through ``subscribe``).
        """
        slot = (self._endpoints.key_id, stream_base(self._endpoints.data_stream_url), self._options)
        if slot in _ACTIVE:
            raise InputError(
                "this process already streams Alpaca market data with these keys: subscribe on "
                "that stream instead of opening a second connection (Alpaca allows one)"
            )
        _ACTIVE.add(slot)
        try:
            await self._run()
        finally:
            _ACTIVE.discard(slot)
            self._ws = None

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        attempt = 0
        first = True
        while not self._stopping:
            if not first:
                self.stats.reconnects += 1
                if self._health is not None:
                    self._health.reconnects += 1
            first = False
            delay: float | None = None
            events_before = self.stats.events
            lost = ""
            try:
                await self._session()
            except _Fatal as exc:
                self._fail(str(exc))
                return
            except _Retry as exc:
                logger.info("market-data stream reconnecting: {}", exc)
                delay = exc.delay_s
            except _Silent as exc:
                lost = str(exc)
            except (OSError, WebSocketException, TimeoutError, MalformedFrame) as exc:
                lost = f"connection to {self._url()} lost: {_describe(exc)}"
            finally:
                self._ws = None
            if self._stopping:
                break
            if lost:
                logger.warning("market-data {}", lost)
                if self.state is StreamState.LIVE and self._outage_since is None:
                    self._outage_since = self._clock.now_ns()
                    self._alert(
                        Severity.WARNING,
                        "Alpaca market data stopped (the connection was lost or went silent): "
                        "reconnecting, quotes may be stale",
                    )
            if self.stats.events > events_before:
                attempt = 0  # data flowed: the connection was good, start the backoff over
            if delay is None:
                delay = self._backoff(attempt)
                attempt += 1
            self._set_state(StreamState.BACKING_OFF, f"retrying in {delay:.1f} s")
            if delay > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        self._set_state(StreamState.STOPPED)

    def stop(self) -> None:
        """Ask ``run()`` to close the connection and return (call from the engine's loop)."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self._backoff_base_s, self._backoff_cap_s, self._rng)

    def _url(self) -> str:
        return stream_base(self._endpoints.data_stream_url) + FEED_PATHS[self.feed]

    async def _session(self) -> None:
        self._set_state(StreamState.CONNECTING, self._url())
        async with connect(
            self._url(),
            additional_headers={"Content-Type": "application/msgpack"},
            max_size=2**24,
            open_timeout=10,
            close_timeout=2,
            ping_interval=10,
            ping_timeout=20,
        ) as ws:
            self._ws = ws
            await self._handshake(ws)
            self._pending.clear()
            self._set_state(StreamState.LIVE, self.feed)
            self._conn_limit_warned = False
            if self._outage_since is not None:
                seconds = (self._clock.now_ns() - self._outage_since) / NS_PER_SECOND
                self._outage_since = None
                self._alert(Severity.INFO, f"Alpaca market data is back after {seconds:.0f} s")
            subscriptions = self.subscriptions
            if subscriptions:
                pairs = tuple(
                    (c, s) for c, symbols in subscriptions.items() for s in sorted(symbols)
                )
                await self._send_request("subscribe", pairs)
            gap_start = self._last_data_ns
            queue = BoundedQueue(self._queue_frames)
            error: list[BaseException] = []
            reader = asyncio.get_running_loop().create_task(self._read(ws, queue, error))
            try:
                if gap_start is not None and not self._options:
                    await self._fill_gap(gap_start, self._clock.now_ns())
                await self._dispatch(queue, error)
            finally:
                reader.cancel()

    async def _handshake(self, ws: ClientConnection) -> None:
        async with asyncio.timeout(10):
            hello = control_messages(await ws.recv())
        if not any(m.get("T") == "success" and m.get("msg") == "connected" for m in hello):
            self._raise_for_errors(hello)
            raise _Retry("the server did not say 'connected'")
        self._set_state(StreamState.AUTHENTICATING)
        auth = {
            "action": "auth",
            "key": self._endpoints.key_id,
            "secret": self._endpoints.secret_key,
        }
        await ws.send(msgpack.packb(auth))
        async with asyncio.timeout(10):
            reply = control_messages(await ws.recv())
        self._raise_for_errors(reply)
        if not any(m.get("T") == "success" and m.get("msg") == "authenticated" for m in reply):
            raise _Retry("the server did not confirm authentication")

    def _raise_for_errors(self, controls: list[dict]) -> None:
        """Act on an error during the handshake."""
        for m in controls:
            if m.get("T") != "error":
                continue
            code, text = m.get("code"), m.get("msg", "")
            if code == 402:
                raise _Fatal(MSG_402)
            if code == 406:
                if not self._conn_limit_warned:
                    self._alert(Severity.WARNING, MSG_406)
                    self._conn_limit_warned = True
                delay = max(self._connection_limit_retry_s, self._backoff(0))
                raise _Retry(MSG_406, delay)
            if code == 409:
                self._fall_back()
            raise _Retry(f"Alpaca refused the market-data login ({code} {text})")

    def _fall_back(self) -> None:
        """409 insufficient subscription: switch to the free feed (once), or give up."""
        fallback = FALLBACK_FEED.get(self.feed)
        if fallback is None:
            raise _Fatal(
                f"Alpaca's plan for these keys does not include the {self.feed} feed "
                "(409 insufficient subscription)"
            )
        if not self._fallback_warned:
            self._alert(
                Severity.WARNING,
                f"Alpaca's plan for these keys does not include the {self.feed} feed "
                f"(409 insufficient subscription): falling back to {fallback}",
            )
            self._fallback_warned = True
        self.feed = fallback
        if self._default_backfill is not None:
            self._default_backfill.feed = fallback
        raise _Retry(f"switching to the {fallback} feed", 0.0)

    # ---- reading and dispatch -------------------------------------------------------------

    async def _read(
        self, ws: ClientConnection, queue: BoundedQueue, error: list[BaseException]
    ) -> None:
        """Socket -> queue; never blocks on the consumer (the queue drops its oldest frames)."""
        try:
            while True:
                timeout = self.silence_timeout_s if self._refs else None
                try:
                    async with asyncio.timeout(timeout):
                        frame = await ws.recv()
                except TimeoutError:
                    raise _Silent(
                        f"no market data for {timeout:g} s on a subscribed connection: reconnecting"
                    ) from None
                if queue.full():
                    self.stats.dropped += _array_len(queue.get_nowait())
                queue.put_nowait(frame)
        except Exception as exc:
            # Handed to the dispatcher, which raises it in run()'s task.
            error.append(exc)
        finally:
            if queue.full():
                self.stats.dropped += _array_len(queue.get_nowait())
            queue.put_nowait(_END)

    async def _dispatch(self, queue: BoundedQueue, error: list[BaseException]) -> None:
        handle = self._handle_frame
        while True:
            frame = await queue.get()
            if frame is _END:
                if error:
                    raise error[0]
                return
            handle(frame)
            # Let the reader drain the socket between frames, so a slow consumer drops old
            # frames here instead of stalling the socket.
            await asyncio.sleep(0)

    def _handle_frame(self, frame: bytes | str) -> None:
        stats = self.stats
        try:
            if not isinstance(frame, bytes):
                raise MalformedFrame("a text frame arrived where msgpack was expected")
            decoded = self._decoder.decode(frame, self._bus.publish)
        except MalformedFrame as exc:
            stats.malformed += 1
            logger.warning("skipped a malformed market-data frame: {}", exc)
            return
        now = self._clock.now_ns()
        stats.frames += 1
        stats.last_message_ns = now
        if decoded.published:
            stats.events += decoded.published
            self._last_data_ns = now
        if decoded.malformed:
            stats.malformed += decoded.malformed
            logger.warning("skipped {} malformed market-data message(s)", decoded.malformed)
        if decoded.controls:
            self._on_controls(decoded.controls)
        mark = self._rate_mark
        if mark is None or now - mark[0] >= NS_PER_SECOND:
            if mark is not None:
                stats.msgs_per_s = (stats.events - mark[1]) * NS_PER_SECOND / (now - mark[0])
            self._rate_mark = (now, stats.events)
            if self._health is not None:
                self._health.beat(COMPONENT, Status.OK, f"live on {self.feed}")

    def _on_controls(self, controls: list[dict]) -> None:
        for m in controls:
            kind = m.get("T")
            if kind == "subscription":
                if self._pending:
                    self._pending.popleft()
            elif kind == "error":
                self._on_live_error(m)
        if self._newly_rejected and not self._pending:
            names = ", ".join(f"{symbol} ({channel})" for channel, symbol in self._newly_rejected)
            self._alert(
                Severity.WARNING,
                f"Alpaca's symbol limit kept {len(self._newly_rejected)} subscription(s) off the "
                f"stream (405 symbol limit exceeded): {names}",
            )
            self._newly_rejected.clear()

    def _on_live_error(self, m: dict) -> None:
        code, text = m.get("code"), m.get("msg", "")
        request = self._pending.popleft() if self._pending else None
        if code == 405 and request is not None:
            action, pairs = request
            if len(pairs) > 1:
                # The server kept its previous set: offer the pairs one by one to keep what fits.
                for pair in pairs:
                    self._request(action, (pair,))
            else:
                self._rejected.update(pairs)
                self._newly_rejected.extend(pairs)
            return
        if code == 409:
            self._fall_back()
        if code in (402, 406):
            self._raise_for_errors([m])
        logger.warning("Alpaca's market-data stream reported an error: {} {}", code, text)

    async def _fill_gap(self, start_ns: int, end_ns: int) -> None:
        """Publish the complete minute bars missed while disconnected, before any live data."""
        symbols = sorted(
            {symbol for symbols in self.subscriptions.values() for symbol in symbols} - {"*"}
        )
        start_minute = start_ns - start_ns % NS_PER_MINUTE
        if not symbols or end_ns - start_minute < NS_PER_MINUTE:
            return
        try:
            self.circuit.check()
            async with asyncio.timeout(self._backfill_timeout_s):
                bars = await self._backfill(symbols, start_minute, end_ns)
        except (BrokerError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            self.circuit.failed(exc)
            self._alert(
                Severity.WARNING,
                f"could not backfill {(end_ns - start_ns) / NS_PER_SECOND:.0f} s of market data "
                f"after a reconnect: {exc}",
            )
            return
        self.circuit.succeeded()
        last_live = self._decoder.last_bar_ns
        published = 0
        for bar in bars:
            # A live bar for the minute already went out; a bar whose minute is not over will.
            if bar.ts_ns < start_minute or bar.ts_ns + NS_PER_MINUTE > end_ns:
                continue
            if bar.ts_ns <= last_live.get(bar.symbol, -1):
                continue
            self._bus.publish(Topic.BAR, bar)
            last_live[bar.symbol] = bar.ts_ns
            published += 1
        self.stats.backfilled += published
        if published:
            self._alert(
                Severity.INFO,
                f"backfilled {published} one-minute bar(s) for {len(symbols)} symbol(s) "
                "missed while the market-data stream was reconnecting",
            )

    # ---- state, health and alerts -----------------------------------------------------------

    def _set_state(self, state: StreamState, detail: str = "") -> None:
        if state is not self.state:
            logger.info("market-data stream {}{}", state.value, f" ({detail})" if detail else "")
        self.state = state
        if self._health is not None:
            status = {
                StreamState.LIVE: Status.OK,
                StreamState.FAILED: Status.DOWN,
                StreamState.STOPPED: Status.DOWN,
            }.get(state, Status.DEGRADED)
            self._health.beat(COMPONENT, status, f"{state.value} {detail}".strip())

    def _fail(self, message: str) -> None:
        self.last_error = message
        self._alert(Severity.ERROR, message)
        self._set_state(StreamState.FAILED, message)

    def _alert(self, severity: Severity, message: str) -> None:
        log = {Severity.ERROR: logger.error, Severity.WARNING: logger.warning}.get(
            severity, logger.info
        )
        log("{}", message)
        self._bus.publish(
            Topic.ALERT, Alert(self._clock.now_ns(), severity, message, source=COMPONENT)
        )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
