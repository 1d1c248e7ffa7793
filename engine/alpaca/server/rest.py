"""The local Alpaca server's REST routes: trading (``/v2/...``) and market data (``/v2/stocks/...``,
and option chain snapshots at ``/v1beta1/options/snapshots/{underlying}``).

Requests need ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` matching the
server's keys (401 ``40110000`` otherwise). Errors are Alpaca's
``{"code", "message"}``; market-data errors are ``{"message"}`` only, as
Alpaca's data API answers. Paged data endpoints end with ``next_page_token``
null. Query booleans are parsed case-insensitively (alpaca-py sends ``True``).
"""

from __future__ import annotations

import base64
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from aiohttp import web

from engine.alpaca.server.venue import SimVenue, VenueRejection, profiles_for
from engine.alpaca.wire import (
    OrderRecord,
    account_json,
    asset_id,
    asset_json,
    calendar_json,
    clock_json,
    error_body,
    fill_activity_json,
    order_json,
    position_json,
    rest_bar,
    rest_quote,
    rest_trade,
    rfc3339,
)
from engine.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from engine.core.models import Order, OrderClass, OrderStatus, OrderType, Side, TimeInForce
from engine.core.prices import ZERO
from engine.options.bsm import bs_greeks
from engine.options.chain import (
    DEFAULT_RATE,
    MIN_T,
    NS_PER_YEAR,
    QuoteModel,
    SyntheticSurface,
    expiry_ns,
)
from engine.options.iv import implied_vol

SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
DEFAULT_ORDER_LIMIT = 50
MAX_ORDER_LIMIT = 500
DEFAULT_BAR_LIMIT = 1000
MAX_BAR_LIMIT = 10_000
_ONE_MINUTE = ("1Min", "1T")
OPTION_DATA_FEEDS = ("opra", "indicative")
DEFAULT_SNAPSHOT_LIMIT = 100
MAX_SNAPSHOT_LIMIT = 1000
SNAPSHOT_SIZE = 50  # contracts shown at the money on each side of a snapshot quote


class ApiError(Exception):
    """An Alpaca error answer: HTTP ``status``, 8-digit ``code`` (None on the data API), message."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        body: dict[str, Any] = (
            error_body(self.code, self.message)
            if self.code is not None
            else {"message": self.message}
        )
        return web.json_response(body, status=self.status)


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ApiError(422, 42210000, f"invalid {name}") from None
    if not number.is_finite():
        raise ApiError(422, 42210000, f"invalid {name}")
    return number.normalize() if number == number.to_integral() else number


def _enum(kind: type, value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ApiError(422, 42210000, f"invalid {name}: {value}") from None


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


def _moment(value: str, name: str) -> int:
    """ns of an RFC 3339 time or a date (midnight UTC), as the APIs accept both."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, 42210000, f"invalid {name}: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return datetime_to_ns(parsed)


class TradingRoutes:
    """``/v2`` trading endpoints over the venue's Alpaca order book and the sim venue."""

    def __init__(self, venue: SimVenue, created_ns: int) -> None:
        self._venue = venue
        self._created_ns = created_ns

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v2/account", self.account)
        app.router.add_get("/v2/account/activities", self.activities)
        app.router.add_get("/v2/account/activities/{activity_type}", self.activities)
        app.router.add_post("/v2/orders", self.submit)
        app.router.add_get("/v2/orders", self.list_orders)
        app.router.add_delete("/v2/orders", self.cancel_all)
        app.router.add_get("/v2/orders:by_client_order_id", self.order_by_client_id)
        app.router.add_get("/v2/orders/{order_id}", self.get_order)
        app.router.add_patch("/v2/orders/{order_id}", self.replace)
        app.router.add_delete("/v2/orders/{order_id}", self.cancel)
        app.router.add_get("/v2/positions", self.positions)
        app.router.add_delete("/v2/positions", self.close_all)
        app.router.add_get("/v2/positions/{symbol}", self.position)
        app.router.add_delete("/v2/positions/{symbol}", self.close_position)
        app.router.add_get("/v2/assets", self.assets)
        app.router.add_get("/v2/assets/{symbol}", self.asset)
        app.router.add_get("/v2/clock", self.clock)
        app.router.add_get("/v2/calendar", self.calendar)
        app.router.add_get("/v2/options/contracts", self.option_contracts)
        app.router.add_get("/v2/options/contracts/{symbol}", self.option_contract)

    # -- account and positions ---------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        broker = self._venue.broker
        body = account_json(await broker.account(), await broker.positions(), self._created_ns)
        return web.json_response(body)

    async def activities(self, request: web.Request) -> web.Response:
        """FILL activities (the only kind the sim venue has), paged by the last activity's id."""
        query = request.query
        kind = request.match_info.get("activity_type") or query.get("activity_types", "FILL")
        if "FILL" not in kind.upper().split(","):
            return web.json_response([])
        after = _moment(query["after"], "after") if "after" in query else None
        until = _moment(query["until"], "until") if "until" in query else None
        cumulative: dict[str, Decimal] = {}
        rows = []
        for fill in await self._venue.broker.fills_since(0):
            cum_qty = cumulative[fill.order_id] = cumulative.get(fill.order_id, ZERO) + fill.qty
            if after is not None and fill.ts_ns <= after:
                continue
            if until is not None and fill.ts_ns > until:
                continue
            record = self._venue.record_by_client(fill.order_id)
            if record is not None:
                rows.append(fill_activity_json(fill, record, cum_qty))
        if query.get("direction", "desc") == "desc":
            rows.reverse()
        token = query.get("page_token")
        if token:
            ids = [row["id"] for row in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        size = min(int(query.get("page_size", 100)), 100)
        return web.json_response(rows[:size])

    async def positions(self, request: web.Request) -> web.Response:
        return web.json_response([position_json(p) for p in await self._venue.broker.positions()])

    async def position(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request.match_info["symbol"])
        for position in await self._venue.broker.positions():
            if position.symbol == symbol:
                return web.json_response(position_json(position))
        raise ApiError(404, 40410000, "position does not exist")

    async def close_position(self, request: web.Request) -> web.Response:
        record = await self._close(self._symbol(request.match_info["symbol"]), request.query)
        return web.json_response(order_json(record))

    async def close_all(self, request: web.Request) -> web.Response:
        if _flag(request.query.get("cancel_orders")):
            await self._cancel_open()
        results = []
        for position in await self._venue.broker.positions():
            try:
                record = await self._close(position.symbol, {})
                results.append(
                    {"symbol": position.symbol, "status": 200, "body": order_json(record)}
                )
            except VenueRejection as refusal:
                results.append(
                    {
                        "symbol": position.symbol,
                        "status": refusal.status,
                        "body": error_body(refusal.code, str(refusal)),
                    }
                )
        return web.json_response(results, status=207)

    async def _close(self, symbol: str, query: Any) -> OrderRecord:
        held = next(
            (p.qty for p in await self._venue.broker.positions() if p.symbol == symbol), ZERO
        )
        if held == ZERO:
            raise ApiError(404, 40410000, "position does not exist")
        qty = abs(held)
        if query.get("qty") is not None:
            qty = _decimal(query["qty"], "qty") or ZERO
        elif query.get("percentage") is not None:
            qty = qty * (_decimal(query["percentage"], "percentage") or ZERO) / 100
        order = self._new_order(
            symbol=symbol,
            side=Side.SELL if held > ZERO else Side.BUY,
            qty=qty,
            type=OrderType.MARKET,
            tif=TimeInForce.DAY,
            client_order_id=None,
        )
        return await self._venue.submit(order)

    # -- orders ------------------------------------------------------------------------

    def _new_order(self, **fields: Any) -> Order:
        now = self._venue.clock.now_ns()
        client_order_id = fields.pop("client_order_id") or str(uuid.uuid4())
        return Order(
            id=client_order_id,
            status=OrderStatus.PENDING_NEW,
            created_ns=now,
            updated_ns=now,
            **fields,
        )

    async def submit(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("notional") is not None:
            raise ApiError(422, 42210000, "notional orders are not supported by the local server")
        qty = _decimal(body.get("qty"), "qty")
        if qty is None or qty <= ZERO:
            raise ApiError(422, 42210000, "qty must be > 0")
        symbol = str(body.get("symbol", "")).upper()
        if self._venue.broker.instrument(symbol) is None:
            raise ApiError(422, 42210000, f"asset {symbol} not found")
        client_order_id = body.get("client_order_id")
        if client_order_id is not None and len(str(client_order_id)) > 128:
            raise ApiError(422, 42210000, "client_order_id must be no more than 128 characters")
        order = self._new_order(
            symbol=symbol,
            side=_enum(Side, body.get("side"), "side"),
            qty=qty,
            type=_enum(OrderType, body.get("type", body.get("order_type")), "order type"),
            tif=_enum(TimeInForce, body.get("time_in_force"), "time_in_force"),
            limit_price=_decimal(body.get("limit_price"), "limit_price"),
            stop_price=_decimal(body.get("stop_price"), "stop_price"),
            trail_price=_decimal(body.get("trail_price"), "trail_price"),
            trail_percent=_decimal(body.get("trail_percent"), "trail_percent"),
            extended_hours=bool(body.get("extended_hours", False)),
            client_order_id=str(client_order_id) if client_order_id is not None else None,
            **_legs(body),
        )
        record = await self._venue.submit(order)
        return web.json_response(order_json(record))

    async def list_orders(self, request: web.Request) -> web.Response:
        query = request.query
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(422, 42210000, f"invalid status: {status}")
        limit = min(int(query.get("limit", DEFAULT_ORDER_LIMIT)), MAX_ORDER_LIMIT)
        symbols = {s for s in query.get("symbols", "").upper().split(",") if s}
        after = _moment(query["after"], "after") if "after" in query else None
        until = _moment(query["until"], "until") if "until" in query else None
        side = query.get("side")
        chosen: list[tuple[int, int, OrderRecord]] = []
        for arrival, record in enumerate(self._venue.orders.values()):
            order = record.order
            if status != "all" and order.status.is_open != (status == "open"):
                continue
            if symbols and order.symbol not in symbols:
                continue
            if side and order.side.value != side:
                continue
            if after is not None and record.submitted_ns <= after:
                continue
            if until is not None and record.submitted_ns >= until:
                continue
            chosen.append((record.submitted_ns, arrival, record))
        # Orders submitted at one sim instant keep their arrival order.
        chosen.sort(key=lambda c: c[:2], reverse=query.get("direction", "desc") == "desc")
        return web.json_response([order_json(c[2]) for c in chosen[:limit]])

    def _record(self, request: web.Request) -> OrderRecord:
        record = self._venue.record(request.match_info["order_id"])
        if record is None:
            raise ApiError(404, 40410000, "order not found")
        return record

    async def get_order(self, request: web.Request) -> web.Response:
        return web.json_response(order_json(self._record(request)))

    async def order_by_client_id(self, request: web.Request) -> web.Response:
        record = self._venue.record_by_client(request.query.get("client_order_id", ""))
        if record is None:
            raise ApiError(404, 40410000, "order not found")
        return web.json_response(order_json(record))

    async def replace(self, request: web.Request) -> web.Response:
        old = self._record(request)
        body = await _json_body(request)
        changes = {
            "qty": _decimal(body.get("qty"), "qty"),
            "limit_price": _decimal(body.get("limit_price"), "limit_price"),
            "stop_price": _decimal(body.get("stop_price"), "stop_price"),
            "trail_price": _decimal(body.get("trail"), "trail"),
        }
        tif = body.get("time_in_force")
        if all(v is None for v in changes.values()) and tif in (None, old.order.tif.value):
            raise ApiError(422, 42210000, "order parameters are not changed")
        previous = old.order
        new_order = self._new_order(
            symbol=previous.symbol,
            side=previous.side,
            qty=changes["qty"] if changes["qty"] is not None else previous.qty,
            type=previous.type,
            tif=_enum(TimeInForce, tif, "time_in_force") if tif else previous.tif,
            limit_price=changes["limit_price"] or previous.limit_price,
            stop_price=changes["stop_price"] or previous.stop_price,
            trail_price=changes["trail_price"] or previous.trail_price,
            trail_percent=previous.trail_percent,
            extended_hours=previous.extended_hours,
            client_order_id=body.get("client_order_id"),
        )
        record = await self._venue.replace(old, new_order)
        return web.json_response(order_json(record))

    async def cancel(self, request: web.Request) -> web.Response:
        await self._venue.cancel(self._record(request))
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        return web.json_response(await self._cancel_open(), status=207)

    async def _cancel_open(self) -> list[dict[str, Any]]:
        results = []
        for record in [r for r in self._venue.orders.values() if r.order.status.is_open]:
            try:
                await self._venue.cancel(record)
                results.append({"id": record.alpaca_id, "status": 200})
            except VenueRejection as refusal:
                results.append(
                    {
                        "id": record.alpaca_id,
                        "status": refusal.status,
                        "body": error_body(refusal.code, str(refusal)),
                    }
                )
        return results

    # -- reference data ----------------------------------------------------------------

    def _symbol(self, symbol_or_id: str) -> str:
        for symbol in self._venue.symbols:
            if symbol_or_id.upper() == symbol or symbol_or_id == asset_id(symbol):
                return symbol
        return symbol_or_id.upper()

    async def assets(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status not in (None, "active"):
            return web.json_response([])
        instruments = self._venue.market.instruments()
        return web.json_response([asset_json(instruments[s]) for s in self._venue.symbols])

    async def asset(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request.match_info["symbol"])
        instrument = self._venue.broker.instrument(symbol)
        if instrument is None:
            raise ApiError(404, 40410000, "asset not found")
        return web.json_response(asset_json(instrument))

    async def clock(self, request: web.Request) -> web.Response:
        now_ns = self._venue.clock.now_ns()
        now = ns_to_datetime(now_ns, NEW_YORK)
        day = now.date()
        is_open = day.weekday() < 5 and SESSION_OPEN <= now.time() < SESSION_CLOSE
        next_open = _next_weekday(day if now.time() < SESSION_OPEN else day + timedelta(days=1))
        close_day = day if now.time() < SESSION_CLOSE else day + timedelta(days=1)
        next_close = _next_weekday(close_day)
        body = clock_json(
            now_ns,
            is_open,
            datetime_to_ns(datetime.combine(next_open, SESSION_OPEN, tzinfo=NEW_YORK)),
            datetime_to_ns(datetime.combine(next_close, SESSION_CLOSE, tzinfo=NEW_YORK)),
        )
        return web.json_response(body)

    async def calendar(self, request: web.Request) -> web.Response:
        today = ns_to_datetime(self._venue.clock.now_ns(), NEW_YORK).date()
        try:
            start = date.fromisoformat(request.query.get("start", today.isoformat())[:10])
            end = date.fromisoformat(request.query.get("end", start.isoformat())[:10])
        except ValueError:
            raise ApiError(422, 42210000, "invalid start or end date") from None
        days = []
        day = start
        while day <= end:
            if day.weekday() < 5:
                days.append(calendar_json(day, "09:30", "16:00"))
            day += timedelta(days=1)
        return web.json_response(days)

    def _contracts(self, underlyings: list[str]) -> list[dict[str, Any]]:
        return listed_contracts(self._venue, underlyings)

    async def option_contracts(self, request: web.Request) -> web.Response:
        query = request.query
        underlyings = [s for s in query.get("underlying_symbols", "").upper().split(",") if s]
        chosen = self._contracts([s for s in underlyings if s in self._venue.symbols])
        chosen = _filter_contracts(chosen, query)
        limit = int(query.get("limit", 100))
        offset = _page_offset(query.get("page_token"))
        page = chosen[offset : offset + limit]
        token = _page_token(offset + limit) if offset + limit < len(chosen) else None
        return web.json_response({"option_contracts": page, "next_page_token": token})

    async def option_contract(self, request: web.Request) -> web.Response:
        wanted = request.match_info["symbol"]
        for contract in self._contracts(list(self._venue.symbols)):
            if wanted in (contract["symbol"], contract["id"]):
                return web.json_response(contract)
        raise ApiError(404, 40410000, f"option contract {wanted} not found")


def listed_contracts(venue: SimVenue, underlyings: list[str]) -> list[dict[str, Any]]:
    """A small synthetic chain: four weekly expiries, eleven strikes around the session's
    reference price (the previous close), so the listing stays put while the price moves."""
    today = ns_to_datetime(venue.clock.now_ns(), NEW_YORK).date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
    references = venue.market.references()
    contracts = []
    for underlying in underlyings:
        quote = venue.view.quote(underlying)
        price = (
            references.get(underlying)
            or venue.view.last_price(underlying)
            or (quote.mid if quote is not None else Decimal(100))
        )
        step = Decimal(5) if price >= 100 else Decimal(1)
        center = (price / step).to_integral_value() * step
        for week in range(4):
            expiry = friday + timedelta(weeks=week)
            for offset in range(-5, 6):
                strike = center + offset * step
                for kind in ("call", "put"):
                    contracts.append(_contract(underlying, expiry, kind, strike))
    return contracts


def _filter_contracts(chosen: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    """The contracts matching the contract filters both option endpoints take."""
    if "type" in query:
        chosen = [c for c in chosen if c["type"] == query["type"]]
    for key, keep in (
        ("root_symbol", lambda c, v: c["root_symbol"] == v.upper()),
        ("expiration_date", lambda c, v: c["expiration_date"] == v),
        ("expiration_date_gte", lambda c, v: c["expiration_date"] >= v),
        ("expiration_date_lte", lambda c, v: c["expiration_date"] <= v),
        ("strike_price_gte", lambda c, v: Decimal(c["strike_price"]) >= _strike(v)),
        ("strike_price_lte", lambda c, v: Decimal(c["strike_price"]) <= _strike(v)),
    ):
        if key in query:
            chosen = [c for c in chosen if keep(c, query[key])]
    return chosen


def _strike(value: str) -> Decimal:
    strike = _decimal(value, "strike price")
    if strike is None:
        raise ApiError(422, 42210000, "invalid strike price")
    return strike


def _next_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _contract(underlying: str, expiry: date, kind: str, strike: Decimal) -> dict[str, Any]:
    symbol = f"{underlying}{expiry:%y%m%d}{kind[0].upper()}{int(strike * 1000):08d}"
    return {
        "id": asset_id(symbol),
        "symbol": symbol,
        "name": f"{underlying} {expiry:%b %d %Y} {strike} {kind.title()}",
        "status": "active",
        "tradable": True,
        "expiration_date": expiry.isoformat(),
        "root_symbol": underlying,
        "underlying_symbol": underlying,
        "underlying_asset_id": asset_id(underlying),
        "type": kind,
        "style": "american",
        "strike_price": str(strike),
        "multiplier": "100",
        "size": "100",
        "open_interest": None,
        "open_interest_date": None,
        "close_price": None,
        "close_price_date": None,
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise ApiError(400, None, "invalid page_token") from None


def _legs(body: dict[str, Any]) -> dict[str, Any]:
    """``order_class`` and the bracket legs' prices, as the engine's Order holds them."""
    take_profit = body.get("take_profit") or {}
    stop_loss = body.get("stop_loss") or {}
    return {
        "order_class": _enum(OrderClass, body.get("order_class") or "simple", "order_class"),
        "take_profit_price": _decimal(take_profit.get("limit_price"), "take_profit.limit_price"),
        "stop_loss_price": _decimal(stop_loss.get("stop_price"), "stop_loss.stop_price"),
        "stop_loss_limit_price": _decimal(stop_loss.get("limit_price"), "stop_loss.limit_price"),
    }


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, 40010000, "request body format is invalid") from None
    if not isinstance(body, dict):
        raise ApiError(400, 40010000, "request body format is invalid")
    return body


class MarketDataRoutes:
    """Historical bars (from the venue's recorded minute bars) and latest quotes/trades/bars."""

    def __init__(self, venue: SimVenue) -> None:
        self._venue = venue
        self._surfaces: dict[str, SyntheticSurface] = {}

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v2/stocks/bars", self.bars)
        app.router.add_get("/v2/stocks/quotes/latest", self.latest_quotes)
        app.router.add_get("/v2/stocks/trades/latest", self.latest_trades)
        app.router.add_get("/v2/stocks/bars/latest", self.latest_bars)
        app.router.add_get("/v2/stocks/{symbol}/bars", self.symbol_bars)
        app.router.add_get("/v1beta1/options/snapshots/{underlying_symbol}", self.option_chain)

    def _symbols(self, text: str) -> list[str]:
        symbols = [s for s in text.upper().split(",") if s]
        if not symbols:
            raise ApiError(400, None, "missing symbols")
        return [s for s in symbols if s in self._venue.bars]

    def _page(self, symbols: list[str], query: Any) -> tuple[list[tuple[str, dict]], str | None]:
        timeframe = query.get("timeframe", "1Min")
        if timeframe not in _ONE_MINUTE:
            raise ApiError(400, None, f"the local server has 1Min bars only, not {timeframe}")
        start = _moment(query["start"], "start") if "start" in query else 0
        end = _moment(query["end"], "end") if "end" in query else None
        limit = min(int(query.get("limit", DEFAULT_BAR_LIMIT)), MAX_BAR_LIMIT)
        rows = [
            (symbol, rest_bar(r.bar, r.trade_count, r.vwap))
            for symbol in symbols
            for r in self._venue.bars[symbol]
            if r.bar.ts_ns >= start and (end is None or r.bar.ts_ns <= end)
        ]
        if query.get("sort") == "desc":
            rows.reverse()
        offset = _page_offset(query.get("page_token"))
        token = _page_token(offset + limit) if offset + limit < len(rows) else None
        return rows[offset : offset + limit], token

    async def bars(self, request: web.Request) -> web.Response:
        page, token = self._page(self._symbols(request.query.get("symbols", "")), request.query)
        grouped: dict[str, list[dict]] = {}
        for symbol, bar in page:
            grouped.setdefault(symbol, []).append(bar)
        return web.json_response({"bars": grouped, "next_page_token": token})

    async def symbol_bars(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"].upper()
        page, token = self._page(self._symbols(symbol), request.query)
        return web.json_response(
            {"bars": [bar for _, bar in page], "symbol": symbol, "next_page_token": token}
        )

    async def latest_quotes(self, request: web.Request) -> web.Response:
        quotes = {}
        for symbol in self._symbols(request.query.get("symbols", "")):
            quote = self._venue.view.quote(symbol)
            if quote is not None:
                quotes[symbol] = rest_quote(quote)
        return web.json_response({"quotes": quotes})

    async def latest_trades(self, request: web.Request) -> web.Response:
        trades = {}
        for symbol in self._symbols(request.query.get("symbols", "")):
            last = self._venue.last_trades.get(symbol)
            if last is not None:
                trades[symbol] = rest_trade(*last)
        return web.json_response({"trades": trades})

    async def latest_bars(self, request: web.Request) -> web.Response:
        bars = {}
        for symbol in self._symbols(request.query.get("symbols", "")):
            recorded = self._venue.bars[symbol]
            if recorded:
                last = recorded[-1]
                bars[symbol] = rest_bar(last.bar, last.trade_count, last.vwap)
        return web.json_response({"bars": bars})

    # -- option chain snapshots ----------------------------------------------------------------

    async def option_chain(self, request: web.Request) -> web.Response:
        """``/v1beta1/options/snapshots/{underlying}``: every listed contract's latest quote,
        implied vol and greeks, priced now from the underlying's price; paged by ``limit``."""
        underlying = request.match_info["underlying_symbol"].upper()
        query = request.query
        feed = query.get("feed")
        if feed is not None and feed not in OPTION_DATA_FEEDS:
            raise ApiError(400, None, f"invalid feed: {feed}")
        try:
            limit = int(query.get("limit", DEFAULT_SNAPSHOT_LIMIT))
        except ValueError:
            raise ApiError(400, None, "invalid limit") from None
        if not 1 <= limit <= MAX_SNAPSHOT_LIMIT:
            raise ApiError(400, None, f"limit must be between 1 and {MAX_SNAPSHOT_LIMIT}")
        listed = [underlying] if underlying in self._venue.symbols else []
        chosen = _filter_contracts(listed_contracts(self._venue, listed), query)
        offset = _page_offset(query.get("page_token"))
        page = chosen[offset : offset + limit]
        token = _page_token(offset + limit) if offset + limit < len(chosen) else None
        snapshots = self._snapshots(underlying, page) if page else {}
        return web.json_response({"snapshots": snapshots, "next_page_token": token})

    def _surface(self, underlying: str) -> SyntheticSurface:
        surface = self._surfaces.get(underlying)
        if surface is None:
            profile = profiles_for([underlying])[underlying]
            surface = self._surfaces[underlying] = SyntheticSurface.from_profile(profile)
        return surface

    def _snapshots(self, underlying: str, contracts: list[dict[str, Any]]) -> dict[str, Any]:
        """Black-Scholes quotes on the venue's skewed surface at its last price, on the option
        tick grid; implied vol and greeks of each mid, as Alpaca reports them (theta per day,
        vega and rho per vol or rate point). A mid outside the no-arbitrage bounds has none."""
        now = self._venue.clock.now_ns()
        last = self._venue.view.last_price(underlying)
        if last is None:
            return {}
        spot = float(last)
        strike = np.array([float(c["strike_price"]) for c in contracts])
        expiry = np.array([expiry_ns(date.fromisoformat(c["expiration_date"])) for c in contracts])
        is_call = np.array([c["type"] == "call" for c in contracts])
        t = np.maximum((expiry - now) / NS_PER_YEAR, MIN_T)
        rate = DEFAULT_RATE
        k = np.log(strike / (spot * np.exp(rate * t)))
        vol = self._surface(underlying).vols(np, k, t)
        model = bs_greeks(spot, strike, t, rate, 0.0, vol, is_call)
        z = np.log(strike / spot) / (vol * np.sqrt(t))
        bid, ask = QuoteModel().quote(np, model.price, model.vega, z)
        bid, ask = np.round(bid, 2), np.round(ask, 2)
        iv = implied_vol(0.5 * (bid + ask), spot, strike, t, rate, 0.0, is_call)
        greeks = bs_greeks(spot, strike, t, rate, 0.0, np.where(np.isfinite(iv), iv, vol), is_call)
        # Displayed size shrinks away from the money, as market makers quote the wings thinner.
        size = np.maximum(1, np.round(SNAPSHOT_SIZE * np.exp(-np.abs(z)))).astype(int)
        stamp = rfc3339(now)
        snapshots: dict[str, Any] = {}
        for i, contract in enumerate(contracts):
            snapshot: dict[str, Any] = {
                "latestQuote": {
                    "ap": float(ask[i]),
                    "as": int(size[i]),
                    "ax": "C",
                    "bp": float(bid[i]),
                    "bs": int(size[i]) if bid[i] > 0 else 0,
                    "bx": "C",
                    "c": "A",
                    "t": stamp,
                }
            }
            if math.isfinite(iv[i]):
                snapshot["impliedVolatility"] = float(iv[i])
                snapshot["greeks"] = {
                    "delta": float(greeks.delta[i]),
                    "gamma": float(greeks.gamma[i]),
                    "rho": float(greeks.rho[i]) / 100.0,
                    "theta": float(greeks.theta[i]) / 365.0,
                    "vega": float(greeks.vega[i]) / 100.0,
                }
            snapshots[contract["symbol"]] = snapshot
        return snapshots
