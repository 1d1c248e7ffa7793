"""Alpaca's ``trade_updates`` stream on ``websockets``, inside the engine's event loop.

One task connects to ``endpoints.trading_stream_url``, sends ``authenticate`` (key id
and secret) and ``listen`` for ``trade_updates``, then turns every message into an
``OrderUpdate`` published on ``Topic.ORDER_UPDATE``. Messages may arrive as text or
binary frames; both hold JSON.

Failures: a dropped socket, a refused login or a malformed frame never stops the
stream. It reconnects with jittered exponential backoff (half the delay fixed, half
random, doubling up to ``backoff_max_s``), and after every reconnect it publishes a
``Topic.ALERT`` and calls ``on_reconnect`` (the engine wires this to the OMS's
reconciliation, since updates sent while we were away are lost).

Staleness: trade_updates is silent while no order changes, so silence alone is no
fault. Two checks catch a stream that is open but dead: websocket pings every
``stale_after_s / 2`` seconds (a peer that stops answering is dropped), and
expected updates: once Alpaca's REST answer confirms a command (submit, cancel,
replace), an update for that order must arrive within ``stale_after_s``; if none
does, the socket is closed, and the reconnect's reconciliation recovers the state.

Order of updates: Alpaca may repeat or reorder messages. Repeated executions are the
OMS's to ignore (it skips known execution ids). Reordering is handled here: for each
order the newest ``order.updated_at`` seen is kept, and an update older than that
must not move the status backwards. Alpaca stamps several updates with the same
instant (an order's ``new`` and its immediate fill), so at equal ``updated_at`` the
one with less filled, or at an earlier lifecycle stage (new before partially filled
or pending, those before a terminal status), counts as older. An older update
without a fill is dropped; an older fill is still delivered (its execution is real)
but carries the newest status and filled quantity, so the OMS books the shares
without regressing the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import websockets
from loguru import logger

from engine.alpaca.endpoints import AlpacaEndpoints
from engine.alpaca.mapping import OrderIds, TradeUpdateError, order_update_from_alpaca, parse_ts_ns
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, Clock
from engine.core.errors import BrokerError
from engine.core.events import Alert, Severity
from engine.core.models import OrderStatus, OrderUpdate
from engine.health import HealthMonitor, Status

COMPONENT = "alpaca.trade_stream"
_REMEMBERED_ORDERS = 10_000  # per-order newest timestamps kept for the reorder guard
_HANDSHAKE_TIMEOUT_S = 10.0
# Statuses before any fill or pending command, for ordering updates stamped alike.
_EARLY = frozenset({OrderStatus.PENDING_NEW, OrderStatus.ACCEPTED, OrderStatus.NEW})

OnReconnect = Callable[[], Awaitable[None] | None]


class TradeStreamAuthError(BrokerError):
    """Alpaca refused the keys on the trading stream."""


class TradeStream:
    """The trade_updates client. ``start()`` returns once the first connection listens (or fails)."""

    def __init__(
        self,
        endpoints: AlpacaEndpoints,
        bus: MessageBus,
        clock: Clock,
        ids: OrderIds,
        *,
        on_reconnect: OnReconnect | None = None,
        health: HealthMonitor | None = None,
        stale_after_s: float = 20.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._bus = bus
        self._clock = clock
        self._ids = ids
        self._on_reconnect = on_reconnect
        self._health = health
        self._stale_after_s = stale_after_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        self._latest: OrderedDict[str, tuple[int, OrderUpdate]] = OrderedDict()
        # Orders Alpaca has taken a command for, and when its update is due (None: not yet
        # confirmed by the REST answer); an update for the order clears the entry.
        self._expected: dict[str, int | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self.connected = False
        self.connections = 0
        self.reconnects = 0
        self.dropped_stale = 0
        self.stale = 0
        self.malformed = 0

    async def start(self) -> None:
        """Start the stream task and wait for the first connection attempt to finish."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alpaca-trade-stream")
        await self._first.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    # -- connection loop -------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            before = self.connections
            try:
                await self._session()
                reason = "the connection closed"
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, BrokerError, TimeoutError) as error:
                reason = str(error) or type(error).__name__
            finally:
                self.connected = False
                self._first.set()
            if self.connections > before:
                attempt = 0  # the backoff grows only over attempts that never got to listen
            delay = self._backoff(attempt)
            attempt += 1
            self._beat(Status.DOWN, f"disconnected: {reason}")
            self._alert(
                Severity.WARNING,
                f"Alpaca trading stream lost ({reason}); reconnecting in {delay:.1f} s",
            )
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max_s, self._backoff_base_s * (2**attempt))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def _session(self) -> None:
        interval = self._stale_after_s / 2
        async with websockets.connect(
            self._endpoints.trading_stream_url,
            ping_interval=interval,
            ping_timeout=interval,
            open_timeout=_HANDSHAKE_TIMEOUT_S,
            max_queue=1024,
        ) as socket:
            await self._handshake(socket)
            self.connected = True
            self.connections += 1
            reconnected = self.connections > 1
            self._beat(Status.OK, "listening")
            self._first.set()
            if reconnected:
                # Updates missed while away are the reconciliation's to recover, not overdue.
                self._expected = {oid: due for oid, due in self._expected.items() if due is None}
                self.reconnects += 1
                if self._health is not None:
                    self._health.reconnects += 1
                self._alert(
                    Severity.INFO, "Alpaca trading stream reconnected; reconciling with the broker"
                )
                await self._call_on_reconnect()
            watchdog = asyncio.create_task(self._watch(socket), name="alpaca-trade-watchdog")
            try:
                async for frame in socket:
                    self.on_frame(frame)
            finally:
                watchdog.cancel()

    # -- staleness -------------------------------------------------------------------------

    def expect(self, order_id: str) -> None:
        """A command for ``order_id`` is about to be sent: an update for it should follow."""
        self._expected[order_id] = None

    def confirm(self, order_id: str) -> None:
        """Alpaca took the command: its update is due within ``stale_after_s``."""
        if order_id in self._expected:
            self._expected[order_id] = self._clock.now_ns() + int(
                self._stale_after_s * NS_PER_SECOND
            )

    def forget(self, order_id: str) -> None:
        """Alpaca refused the command: no update will come."""
        self._expected.pop(order_id, None)

    async def _watch(self, socket: Any) -> None:
        """Close a socket that delivers no update for an order Alpaca took a command for."""
        while True:
            await asyncio.sleep(self._stale_after_s / 4)
            now = self._clock.now_ns()
            overdue = [oid for oid, due in self._expected.items() if due is not None and due < now]
            if overdue:
                self._expected.clear()
                self.stale += 1
                self._alert(
                    Severity.WARNING,
                    f"Alpaca trading stream is stale: no update for {overdue[0]} "
                    f"{self._stale_after_s:g} s after Alpaca accepted it; reconnecting",
                )
                await socket.close()
                return

    async def _handshake(self, socket: Any) -> None:
        endpoints = self._endpoints
        await socket.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": endpoints.key_id, "secret_key": endpoints.secret_key},
                }
            )
        )
        reply = await asyncio.wait_for(socket.recv(), _HANDSHAKE_TIMEOUT_S)
        status = _authorization_status(reply)
        if status != "authorized":
            raise TradeStreamAuthError(
                "Alpaca refused the API keys on the trading stream; check APCA_API_KEY_ID "
                "and APCA_API_SECRET_KEY"
            )
        await socket.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))

    async def _call_on_reconnect(self) -> None:
        if self._on_reconnect is None:
            return
        try:
            result = self._on_reconnect()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("trade stream on_reconnect callback failed")
            self._alert(Severity.ERROR, "reconciliation after the trading-stream reconnect failed")

    # -- messages --------------------------------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        """Decode one frame (text or binary JSON) and publish the trade updates it holds."""
        try:
            decoded = json.loads(frame)
        except ValueError:
            self.malformed += 1
            logger.warning("trade stream: a frame that is not JSON was ignored")
            return
        for message in decoded if isinstance(decoded, list) else (decoded,):
            if isinstance(message, dict) and message.get("stream") == "trade_updates":
                self._on_trade_update(message.get("data"))

    def _on_trade_update(self, data: Any) -> None:
        try:
            update = order_update_from_alpaca(data, self._ids)
            updated_ns = parse_ts_ns(data["order"].get("updated_at") or data["timestamp"])
        except TradeUpdateError as error:
            logger.warning("trade stream: {}; ignored", error)
            return
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.malformed += 1
            logger.warning("trade stream: a malformed trade update was ignored ({!r})", error)
            return
        self._expected.pop(update.order_id, None)
        update = self.guard(update, updated_ns)
        if update is not None:
            self._bus.publish(Topic.ORDER_UPDATE, update)

    def has_seen(self, order_id: str) -> bool:
        """True once the stream has delivered any update for ``order_id``."""
        return order_id in self._latest

    def guard(self, update: OrderUpdate, updated_ns: int) -> OrderUpdate | None:
        """Apply the reorder rule (see the module docstring); None when the update is dropped."""
        seen = self._latest.get(update.order_id)
        if seen is None or not _older(update, updated_ns, *seen):
            self._latest[update.order_id] = (updated_ns, update)
            self._latest.move_to_end(update.order_id)
            if len(self._latest) > _REMEMBERED_ORDERS:
                self._latest.popitem(last=False)
            return update
        self.dropped_stale += 1
        newest = seen[1]
        if update.fill is None:
            logger.info(
                "order {}: '{}' older than the '{}' already seen was ignored",
                update.order_id,
                update.event.value,
                newest.event.value,
            )
            return None
        return replace(
            update,
            status=newest.status,
            filled_qty=newest.filled_qty,
            filled_avg_price=newest.filled_avg_price,
        )

    def _alert(self, severity: Severity, message: str) -> None:
        logger.log(severity.value.upper(), message)
        self._bus.publish(
            Topic.ALERT, Alert(self._clock.now_ns(), severity, message, source="alpaca")
        )

    def _beat(self, status: Status, detail: str) -> None:
        if self._health is not None:
            self._health.beat(COMPONENT, status, detail)


def _rank(status: OrderStatus) -> int:
    if status.is_terminal:
        return 2
    return 0 if status in _EARLY else 1


def _older(update: OrderUpdate, updated_ns: int, seen_ns: int, newest: OrderUpdate) -> bool:
    """True when ``update`` precedes ``newest``: an earlier ``updated_at``, or the same instant
    with less filled or an earlier stage of the lifecycle (Alpaca stamps several updates alike).
    """
    if updated_ns != seen_ns:
        return updated_ns < seen_ns
    if update.filled_qty != newest.filled_qty:
        return update.filled_qty < newest.filled_qty
    return _rank(update.status) < _rank(newest.status)


def _authorization_status(reply: str | bytes) -> str:
    try:
        message = json.loads(reply)
    except ValueError:
        return ""
    if isinstance(message, list):
        message = message[0] if message else {}
    if not isinstance(message, dict) or message.get("stream") != "authorization":
        return ""
    data = message.get("data") or {}
    return str(data.get("status") or "")
