"""AlpacaBroker: the Broker protocol over alpaca-py's TradingClient and the trade_updates stream.

REST calls run in worker threads (``asyncio.to_thread``), so the event loop never
waits on the network. Commands (``submit``, ``cancel``, ``replace``) return at once
and schedule their call; the outcome arrives as ``OrderUpdate`` on
``Topic.ORDER_UPDATE``: from the trade stream when Alpaca accepts, or from here
when it refuses (a ``rejected``, ``order_cancel_rejected`` or
``order_replace_rejected`` whose reason is Alpaca's own message). Commands for one
order run in the order they were given: a cancel waits for its order's submit.

Retries: 429 is retried for every call after ``Retry-After`` (or the backoff when
absent); 5xx and unreachable-host errors are retried for idempotent calls (queries,
cancel) and for submit, which the client_order_id makes idempotent (a retried
submit that Alpaca already took answers 422 "client_order_id must be unique", taken
here as accepted: the trade stream reports the order). Replace is never retried on
5xx, since a lost answer may have created the new order.

Prices and quantities leave the engine as Decimal and become floats only inside
alpaca-py's request models (its wire format is JSON numbers). A price on the tick
grid or a share count has a float whose shortest repr is the same digits, so what
goes on the wire is exactly what the engine decided.

The REST answer to a submit is published too (``new``, ``accepted`` or
``pending_new``) unless the stream already reported the order, so the OMS hears of
an accepted order even while the stream is down.

Fills after a gap (``fills_since``) come from the FILL account activities
(``GET /v2/account/activities/FILL``), whose ids are the trade stream's execution ids,
so the OMS can tell known fills from missed ones. Fills are not derived from closed
orders: such fills could not carry the execution ids and would be counted twice.
A server without the activities endpoint (404) yields no fills, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from decimal import Decimal
from typing import Any

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, ContractType, QueryOrderStatus
from alpaca.trading.enums import OrderClass as AlpacaOrderClass
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    GetOptionContractsRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from loguru import logger

from engine.alpaca.endpoints import AlpacaEndpoints
from engine.alpaca.mapping import (
    MarketClock,
    OptionContract,
    OrderIds,
    TradingDay,
    account_from_alpaca,
    error_from_response,
    fill_from_activity,
    instrument_from_alpaca,
    market_clock_from_alpaca,
    option_contract_from_alpaca,
    order_from_alpaca,
    parse_ts_ns,
    position_from_alpaca,
    retry_after_ns,
    trading_day_from_alpaca,
)
from engine.alpaca.trade_stream import TradeStream
from engine.circuit import CircuitBreaker
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_SECOND, Clock, ns_to_datetime
from engine.core.errors import BrokerError, BrokerRejected, BrokerUnavailable, RateLimited
from engine.core.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    TradeEvent,
)
from engine.health import HealthMonitor, Status

COMPONENT = "alpaca.rest"
_PAGE_SIZE = 100
_ORDERS_LIMIT = 500
# Statuses a REST answer to submit may report; the trade stream reports everything after.
_SUBMIT_EVENTS = {
    OrderStatus.PENDING_NEW: TradeEvent.PENDING_NEW,
    OrderStatus.ACCEPTED: TradeEvent.ACCEPTED,
    OrderStatus.NEW: TradeEvent.NEW,
}
_ORDER_CLASSES = {
    OrderClass.BRACKET: AlpacaOrderClass.BRACKET,
    OrderClass.OCO: AlpacaOrderClass.OCO,
    OrderClass.OTO: AlpacaOrderClass.OTO,
}

OnReconnect = Callable[[], Awaitable[None] | None]


class AlpacaBroker:
    """Alpaca paper or live trading, per ``endpoints.paper``.

    ``on_reconnect`` (settable after construction too) runs after every trade-stream
    reconnect; the engine points it at the OMS's reconciliation.
    """

    name = "alpaca"

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        endpoints: AlpacaEndpoints,
        *,
        health: HealthMonitor | None = None,
        on_reconnect: OnReconnect | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        stale_after_s: float = 20.0,
        rng: random.Random | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._endpoints = endpoints
        self._health = health
        self.on_reconnect = on_reconnect
        self._max_attempts = max(1, max_attempts)
        self._backoff_ns = int(backoff_s * NS_PER_SECOND)
        self._rng = rng or random.Random()
        self.ids = OrderIds()
        self._client = TradingClient(
            api_key=endpoints.key_id,
            secret_key=endpoints.secret_key,
            paper=endpoints.paper,
            raw_data=True,
            url_override=endpoints.trading_url,
        )
        # alpaca-py would retry 429s itself with a fixed 3 s sleep inside our worker thread,
        # ignoring Retry-After; the retries here honour it and keep the thread free.
        self._client._retry = 0
        # Trading REST calls stop hitting an Alpaca that keeps failing; see engine.circuit.
        self.circuit = CircuitBreaker("broker", health=health)
        self.stream = TradeStream(
            endpoints,
            bus,
            clock,
            self.ids,
            on_reconnect=self._reconnected,
            health=health,
            stale_after_s=stale_after_s,
            backoff_base_s=backoff_s,
            rng=self._rng,
        )
        self._instruments: dict[str, Instrument] = {}
        self._listing: Callable[[str], Instrument | None] | None = None
        self._status: dict[str, OrderStatus] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the tradable assets, then connect the trade stream.

        ``BrokerError`` when Alpaca cannot be reached or refuses the keys: the OMS must
        not start trading on a broker it cannot see.
        """
        self._bus.subscribe(Topic.ORDER_UPDATE, self._remember)
        assets = await self._call(
            self._client.get_all_assets,
            GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY),
        )
        self._instruments = {
            instrument.symbol: instrument for instrument in map(instrument_from_alpaca, assets)
        }
        logger.info(
            "alpaca {}: {} tradable assets loaded from {}",
            "paper" if self._endpoints.paper else "LIVE",
            len(self._instruments),
            self._endpoints.trading_url,
        )
        await self.stream.start()

    async def stop(self) -> None:
        await self.stream.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._bus.unsubscribe(Topic.ORDER_UPDATE, self._remember)

    async def _reconnected(self) -> None:
        if self.on_reconnect is not None:
            result = self.on_reconnect()
            if inspect.isawaitable(result):
                await result

    def _remember(self, update: OrderUpdate) -> None:
        self._status[update.order_id] = update.status
        if update.broker_order_id:
            self.ids.learn(update.broker_order_id, update.order_id)

    # -- commands --------------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        self._status[order.id] = order.status
        self._schedule(order.id, self._submit(order))

    def cancel(self, order_id: str) -> None:
        self._schedule(order_id, self._cancel(order_id))

    def replace(self, order_id: str, new_order: Order) -> None:
        self.ids.expect_replacement(order_id, new_order.id)
        self._status[new_order.id] = new_order.status
        # A command for the replacement (a cancel) must wait for the replace itself.
        self._schedule(order_id, self._replace(order_id, new_order), also=new_order.id)

    def _schedule(
        self, order_id: str, command: Coroutine[Any, Any, None], *, also: str | None = None
    ) -> None:
        """Run ``command`` after the commands already given for ``order_id`` (and ``also``)."""
        keys = (order_id,) if also is None else (order_id, also)
        priors = {task for key in keys if (task := self._inflight.get(key)) is not None}
        task = asyncio.get_running_loop().create_task(self._after(priors, command))
        self._tasks.add(task)
        for key in keys:
            self._inflight[key] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            for key in keys:
                if self._inflight.get(key) is finished:
                    del self._inflight[key]

        task.add_done_callback(done)

    @staticmethod
    async def _after(priors: set[asyncio.Task[None]], command: Coroutine[Any, Any, None]) -> None:
        if priors:
            try:
                # Only the order of commands matters here; the earlier ones reported their outcome.
                await asyncio.wait(priors)
            except asyncio.CancelledError:
                command.close()
                raise
        await command

    async def _submit(self, order: Order) -> None:
        try:
            request = order_request(order)
        except ValueError as error:
            self._publish_refusal(TradeEvent.REJECTED, order.id, f"invalid order: {error}")
            return
        self.stream.expect(order.id)
        try:
            raw = await self._call(self._client.submit_order, request, submit=True)
        except BrokerError as error:
            self.stream.forget(order.id)
            self._publish_refusal(TradeEvent.REJECTED, order.id, str(error))
            return
        self.stream.confirm(order.id)
        if raw is None:
            logger.info("order {}: a retried submit had already been accepted", order.id)
            return
        self._publish_accepted(raw)

    async def _cancel(self, order_id: str) -> None:
        self.stream.expect(order_id)
        try:
            broker_id = await self._broker_id(order_id)
            await self._call(self._client.cancel_order_by_id, broker_id)
        except BrokerError as error:
            self.stream.forget(order_id)
            self._publish_refusal(TradeEvent.ORDER_CANCEL_REJECTED, order_id, str(error))
            return
        self.stream.confirm(order_id)

    async def _replace(self, order_id: str, new_order: Order) -> None:
        try:
            request = replace_request(new_order)
        except ValueError as error:
            self._publish_refusal(
                TradeEvent.ORDER_REPLACE_REJECTED, order_id, f"invalid replacement: {error}"
            )
            return
        self.stream.expect(order_id)
        try:
            broker_id = await self._broker_id(order_id)
            raw = await self._call(self._client.replace_order_by_id, broker_id, request)
        except BrokerError as error:
            self.stream.forget(order_id)
            self._publish_refusal(TradeEvent.ORDER_REPLACE_REJECTED, order_id, str(error))
            return
        self.stream.confirm(order_id)
        self.ids.learn(raw.get("id"), raw.get("client_order_id"))

    async def _broker_id(self, order_id: str) -> str:
        known = self.ids.broker_id(order_id)
        if known is not None:
            return known
        raw = await self._call(self._client.get_order_by_client_id, order_id)
        self.ids.learn(raw.get("id"), raw.get("client_order_id"))
        return raw["id"]

    def _publish_accepted(self, raw: dict[str, Any]) -> None:
        """Report the submit answer's status, through the stream's reorder guard.

        The trade stream reports the same and everything after; publishing here too
        keeps the OMS current while the stream is down. Once the stream has spoken for
        the order (a fill can beat the answer), the answer is old news and is dropped.
        """
        self.ids.learn(raw.get("id"), raw.get("client_order_id"))
        order = order_from_alpaca(raw, self.ids)
        event = _SUBMIT_EVENTS.get(order.status)
        if event is None or self.stream.has_seen(order.id):
            return
        update = OrderUpdate(
            event=event,
            order_id=order.id,
            ts_ns=order.updated_ns,
            status=order.status,
            filled_qty=order.filled_qty,
            filled_avg_price=order.filled_avg_price,
            broker_order_id=order.broker_order_id,
        )
        guarded = self.stream.guard(update, order.updated_ns)
        if guarded is not None:
            self._bus.publish(Topic.ORDER_UPDATE, guarded)

    def _publish_refusal(self, event: TradeEvent, order_id: str, reason: str) -> None:
        # A refused cancel or replace leaves the order as it stands; a refused submit rejects it.
        if event is TradeEvent.REJECTED:
            status = OrderStatus.REJECTED
        else:
            status = self._status.get(order_id, OrderStatus.REJECTED)
        logger.warning("alpaca {} for {}: {}", event.value, order_id, reason)
        self._bus.publish(
            Topic.ORDER_UPDATE,
            OrderUpdate(event, order_id, self._clock.now_ns(), status, reason=reason),
        )

    # -- queries ---------------------------------------------------------------------------

    async def account(self) -> Account:
        return account_from_alpaca(await self._call(self._client.get_account))

    async def positions(self) -> list[Position]:
        return [
            position_from_alpaca(raw) for raw in await self._call(self._client.get_all_positions)
        ]

    async def open_orders(self) -> list[Order]:
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=_ORDERS_LIMIT, nested=False)
        return self._orders(await self._call(self._client.get_orders, request))

    async def orders(self, status: str = "all", after_ns: int | None = None) -> list[Order]:
        """Orders by Alpaca's query status (open, closed, all), optionally created after a time."""
        request = GetOrdersRequest(
            status=QueryOrderStatus(status),
            limit=_ORDERS_LIMIT,
            after=ns_to_datetime(after_ns) if after_ns is not None else None,
            direction=Sort.ASC,
        )
        return self._orders(await self._call(self._client.get_orders, request))

    def _orders(self, raws: list[dict[str, Any]]) -> list[Order]:
        for raw in raws:
            self.ids.learn(raw.get("id"), raw.get("client_order_id"))
        return [order_from_alpaca(raw, self.ids) for raw in raws]

    async def get_order(self, order_id: str) -> Order | None:
        try:
            raw = await self._call(self._client.get_order_by_client_id, order_id)
        except BrokerRejected as error:
            if error.status == 404:
                return None
            raise
        self.ids.learn(raw.get("id"), raw.get("client_order_id"))
        return order_from_alpaca(raw, self.ids)

    async def fills_since(self, ts_ns: int) -> list[Fill]:
        fills: list[Fill] = []
        params: dict[str, Any] = {
            "after": ns_to_datetime(ts_ns - 1).isoformat(),
            "direction": "asc",
            "page_size": _PAGE_SIZE,
        }
        while True:
            try:
                page = await self._call(self._client.get, "/account/activities/FILL", params)
            except BrokerRejected as error:
                if error.status != 404:
                    raise
                logger.warning(
                    "the broker has no FILL activities endpoint; fills missed while away "
                    "cannot be recovered"
                )
                return fills
            page = page or []
            fills.extend(
                fill_from_activity(raw, self.ids)
                for raw in page
                if raw.get("activity_type", "FILL") == "FILL"
                and parse_ts_ns(raw["transaction_time"]) >= ts_ns
            )
            if len(page) < _PAGE_SIZE:
                return fills
            params["page_token"] = page[-1]["id"]

    def instrument(self, symbol: str) -> Instrument | None:
        found = self._instruments.get(symbol)
        if found is None and self._listing is not None:
            found = self._listing(symbol)
        return found

    def list_instruments(self, lookup: Callable[[str], Instrument | None]) -> None:
        """Also know what ``lookup`` resolves: the option contracts of the loaded chains
        (Alpaca's asset list holds equities only)."""
        self._listing = lookup

    async def clock(self) -> MarketClock:
        """``/v2/clock``: is the market open, and when it next opens and closes."""
        return market_clock_from_alpaca(await self._call(self._client.get_clock))

    async def calendar(self, start: date, end: date) -> list[TradingDay]:
        """``/v2/calendar``: the regular session of every trading day from ``start`` to ``end``."""
        raws = await self._call(self._client.get_calendar, GetCalendarRequest(start=start, end=end))
        return [trading_day_from_alpaca(raw) for raw in raws]

    async def option_contracts(
        self,
        underlying: str,
        *,
        expiration_gte: date | None = None,
        expiration_lte: date | None = None,
        kind: str | None = None,
        strike_gte: Decimal | None = None,
        strike_lte: Decimal | None = None,
        limit: int = _ORDERS_LIMIT,
    ) -> list[OptionContract]:
        """Active option contracts on ``underlying`` (``kind`` "call" or "put"), every page."""
        contracts: list[OptionContract] = []
        token: str | None = None
        while True:
            request = GetOptionContractsRequest(
                underlying_symbols=[underlying],
                expiration_date_gte=expiration_gte,
                expiration_date_lte=expiration_lte,
                type=ContractType(kind) if kind else None,
                strike_price_gte=str(strike_gte) if strike_gte is not None else None,
                strike_price_lte=str(strike_lte) if strike_lte is not None else None,
                limit=limit,
                page_token=token,
            )
            page = await self._call(self._client.get_option_contracts, request)
            contracts.extend(
                option_contract_from_alpaca(raw) for raw in page.get("option_contracts") or ()
            )
            token = page.get("next_page_token")
            if not token:
                return contracts

    # -- REST calls with retries -----------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, submit: bool = False) -> Any:
        """Run one alpaca-py call in a thread; typed errors; retries per the module docstring.

        With ``submit``, a retry answered 422 about the client_order_id returns None: the
        earlier attempt reached Alpaca.
        """
        retry_server = fn != self._client.replace_order_by_id
        attempt = 0
        while True:
            try:
                self.circuit.check()
                result = await asyncio.to_thread(fn, *args)
            except APIError as api_error:
                error = _typed(api_error)
            except requests.RequestException as network_error:
                error = BrokerUnavailable(
                    f"Alpaca cannot be reached at {self._endpoints.trading_url} "
                    f"({type(network_error).__name__})"
                )
            except BrokerUnavailable as open_circuit:
                self._beat(Status.DEGRADED, str(open_circuit))
                raise
            else:
                self.circuit.succeeded()
                self._beat(Status.OK, "")
                return result
            self.circuit.failed(error)
            if (
                submit
                and attempt > 0
                and isinstance(error, BrokerRejected)
                and error.status == 422
                and "client_order_id must be unique" in error.message
            ):
                return None
            retryable = isinstance(error, RateLimited) or (
                retry_server
                and (
                    isinstance(error, BrokerUnavailable)
                    or (isinstance(error, BrokerRejected) and error.status >= 500)
                )
            )
            attempt += 1
            if not retryable or attempt >= self._max_attempts:
                self._beat(Status.DEGRADED, str(error))
                raise error
            delay_ns = self._backoff_ns * (2 ** (attempt - 1))
            if isinstance(error, RateLimited):
                delay_ns = retry_after_ns(error, delay_ns)
            else:
                delay_ns = delay_ns // 2 + int(self._rng.uniform(0, delay_ns / 2))
            logger.warning(
                "alpaca {}: {}; retry {} in {:.2f} s",
                getattr(fn, "__name__", "call"),
                error,
                attempt,
                delay_ns / NS_PER_SECOND,
            )
            await asyncio.sleep(delay_ns / NS_PER_SECOND)

    def _beat(self, status: Status, detail: str) -> None:
        if self._health is not None:
            self._health.beat(COMPONENT, status, detail)


def _typed(error: APIError) -> BrokerError:
    response = error.response
    status = error.status_code
    retry_after = response.headers.get("Retry-After") if response is not None else None
    return error_from_response(status, str(error), retry_after)


# -- engine orders as alpaca-py requests -----------------------------------------------------


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order_request(order: Order) -> Any:
    """The alpaca-py request for ``order`` (client_order_id = ``order.id``).

    ``ValueError`` (alpaca-py's validation, in its words) for a shape Alpaca would refuse.
    """
    common: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": _num(order.qty),
        "side": AlpacaSide(order.side.value),
        "time_in_force": AlpacaTif(order.tif.value),
        "client_order_id": order.id,
        "extended_hours": order.extended_hours or None,
    }
    if order.order_class is not OrderClass.SIMPLE:
        common["order_class"] = _ORDER_CLASSES[order.order_class]
        if order.take_profit_price is not None:
            common["take_profit"] = TakeProfitRequest(limit_price=_num(order.take_profit_price))
        if order.stop_loss_price is not None:
            common["stop_loss"] = StopLossRequest(
                stop_price=_num(order.stop_loss_price),
                limit_price=_num(order.stop_loss_limit_price),
            )
    kind = order.type
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if kind is OrderType.LIMIT:
        return LimitOrderRequest(**common, limit_price=_num(order.limit_price))
    if kind is OrderType.STOP:
        return StopOrderRequest(**common, stop_price=_num(order.stop_price))
    if kind is OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            **common, stop_price=_num(order.stop_price), limit_price=_num(order.limit_price)
        )
    return TrailingStopOrderRequest(
        **common, trail_price=_num(order.trail_price), trail_percent=_num(order.trail_percent)
    )


def replace_request(new_order: Order) -> ReplaceOrderRequest:
    """The PATCH body replacing an order with ``new_order`` (whose id is the new client_order_id).

    alpaca-py's replace takes whole shares only: a fractional quantity is a ``ValueError``.
    """
    if new_order.qty != new_order.qty.to_integral_value():
        raise ValueError("Alpaca replaces whole-share quantities only")
    trail = new_order.trail_price if new_order.trail_price is not None else new_order.trail_percent
    return ReplaceOrderRequest(
        qty=int(new_order.qty),
        time_in_force=AlpacaTif(new_order.tif.value),
        limit_price=_num(new_order.limit_price),
        stop_price=_num(new_order.stop_price),
        trail=_num(trail),
        client_order_id=new_order.id,
    )
