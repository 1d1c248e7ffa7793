"""The local Alpaca server: the real alpaca-py clients and raw websockets against it, unmocked."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import aiohttp
import msgpack
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOptionContractsRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)
from alpaca.trading.stream import TradingStream
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engine.alpaca.server import AlpacaServer
from engine.alpaca.server.dev import serve
from engine.core.clock import datetime_to_ns
from tests.alpaca.conftest import ALPACA_KEY_ID, ALPACA_SECRET_KEY

pytestmark = pytest.mark.asyncio

RECV_TIMEOUT_S = 5.0
MSGPACK = {"Content-Type": "application/msgpack"}
FAR_BELOW = 1.0  # a limit price far below any sim price: the order rests


def trading_client(server: AlpacaServer, secret: str = ALPACA_SECRET_KEY) -> TradingClient:
    return TradingClient(ALPACA_KEY_ID, secret, paper=True, url_override=server.base_url)


async def call(function: Callable[..., Any], *args: Any) -> Any:
    """alpaca-py's REST clients block: run them in a thread, as tickdeck does."""
    return await asyncio.to_thread(function, *args)


def market(symbol: str, qty: float, client_order_id: str) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=client_order_id,
    )


def resting_limit(client_order_id: str, qty: float = 5) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="MSFT",
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        limit_price=FAR_BELOW,
        client_order_id=client_order_id,
    )


async def data_socket(server: AlpacaServer, feed: str = "/v2/iex") -> ClientConnection:
    ws = await connect(server.stream_url + feed, additional_headers=MSGPACK)
    assert await next_data(ws) == [{"T": "success", "msg": "connected"}]
    return ws


async def next_data(ws: ClientConnection) -> Any:
    return msgpack.unpackb(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))


async def auth_data(ws: ClientConnection, key: str = ALPACA_KEY_ID) -> list[dict[str, Any]]:
    await ws.send(msgpack.packb({"action": "auth", "key": key, "secret": ALPACA_SECRET_KEY}))
    return await next_data(ws)


async def authed_data(server: AlpacaServer, feed: str = "/v2/iex") -> ClientConnection:
    ws = await data_socket(server, feed)
    assert await auth_data(ws) == [{"T": "success", "msg": "authenticated"}]
    return ws


async def subscribe(ws: ClientConnection, **channels: list[str]) -> list[dict[str, Any]]:
    await ws.send(msgpack.packb({**channels, "action": "subscribe"}))
    return await next_data(ws)


async def trading_socket(server: AlpacaServer) -> ClientConnection:
    """A trading-stream socket, authenticated as alpaca-py does and listening to trade_updates."""
    ws = await connect(server.trading_stream_url)
    await ws.send(
        json.dumps(
            {
                "action": "authenticate",
                "data": {"key_id": ALPACA_KEY_ID, "secret_key": ALPACA_SECRET_KEY},
            }
        )
    )
    assert (await next_json(ws))["data"]["status"] == "authorized"
    await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    assert await next_json(ws) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    return ws


async def next_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))


async def events_for(ws: ClientConnection, count: int) -> list[str]:
    return [(await next_json(ws))["data"]["event"] for _ in range(count)]


async def post_fault(server: AlpacaServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.base_url + "/_faults", json=body) as response,
    ):
        return response.status, await response.json()


async def get_json(server: AlpacaServer, path: str) -> tuple[int, Any]:
    headers = {"APCA-API-KEY-ID": ALPACA_KEY_ID, "APCA-API-SECRET-KEY": ALPACA_SECRET_KEY}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.base_url + path, headers=headers) as response,
    ):
        return response.status, await response.json()


# ---- trading REST through the real alpaca-py TradingClient ----------------------------


async def test_account_reports_the_sim_venues_starting_cash(alpaca_server):
    account = await call(trading_client(alpaca_server).get_account)
    assert account.cash == "100000"
    assert account.status == "ACTIVE"


async def test_wrong_secret_is_refused_with_401(alpaca_server):
    with pytest.raises(APIError) as refused:
        await call(trading_client(alpaca_server, secret="WRONG").get_account)
    assert refused.value.status_code == 401
    assert refused.value.code == 40110000


async def test_market_order_fills_and_echoes_its_client_order_id(alpaca_server):
    client = trading_client(alpaca_server)
    order = await call(client.submit_order, market("AAPL", 10, "buy-aapl-1"))
    again = await call(client.get_order_by_id, order.id)
    assert again.client_order_id == "buy-aapl-1"
    assert again.status is OrderStatus.FILLED
    assert again.filled_qty == "10"


async def test_filled_market_order_opens_a_position(alpaca_server):
    client = trading_client(alpaca_server)
    await call(client.submit_order, market("AAPL", 10, "buy-aapl-2"))
    positions = await call(client.get_all_positions)
    assert [(p.symbol, p.qty, p.side.value) for p in positions] == [("AAPL", "10", "long")]


async def test_limit_order_below_the_market_rests_as_new(alpaca_server):
    client = trading_client(alpaca_server)
    await call(client.submit_order, resting_limit("rest-1"))
    found = await call(client.get_order_by_client_id, "rest-1")
    assert found.status is OrderStatus.NEW
    assert found.limit_price == "1"


async def test_reused_client_order_id_is_refused_with_422(alpaca_server):
    client = trading_client(alpaca_server)
    await call(client.submit_order, resting_limit("dup-1"))
    with pytest.raises(APIError) as refused:
        await call(client.submit_order, resting_limit("dup-1"))
    assert refused.value.status_code == 422
    assert refused.value.code == 42210000


async def test_order_beyond_buying_power_is_refused_with_403(alpaca_server):
    with pytest.raises(APIError) as refused:
        await call(trading_client(alpaca_server).submit_order, market("AAPL", 100_000, "big-1"))
    assert refused.value.status_code == 403
    assert "insufficient buying power" in refused.value.message


async def test_bracket_order_is_refused_by_the_sim_venue(alpaca_server):
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            alpaca_server.base_url + "/v2/orders",
            headers={"APCA-API-KEY-ID": ALPACA_KEY_ID, "APCA-API-SECRET-KEY": ALPACA_SECRET_KEY},
            json={
                "symbol": "AAPL",
                "qty": 1,
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
                "order_class": "bracket",
                "take_profit": {"limit_price": 500},
                "stop_loss": {"stop_price": 50},
            },
        ) as response,
    ):
        assert response.status == 422
        assert "bracket" in (await response.json())["message"]


async def test_replace_creates_a_new_order_that_replaces_the_old(alpaca_server):
    client = trading_client(alpaca_server)
    old = await call(client.submit_order, resting_limit("to-replace"))
    new = await call(client.replace_order_by_id, old.id, ReplaceOrderRequest(qty=3, limit_price=2))
    old_after = await call(client.get_order_by_id, old.id)
    assert new.id != old.id
    assert (str(new.replaces), new.qty, new.limit_price) == (str(old.id), "3", "2")
    assert old_after.status is OrderStatus.REPLACED
    assert str(old_after.replaced_by) == str(new.id)


async def test_cancel_leaves_the_order_canceled(alpaca_server):
    client = trading_client(alpaca_server)
    order = await call(client.submit_order, resting_limit("to-cancel"))
    await call(client.cancel_order_by_id, order.id)
    assert (await call(client.get_order_by_id, order.id)).status is OrderStatus.CANCELED


async def test_cancel_of_a_filled_order_is_refused_with_422(alpaca_server):
    client = trading_client(alpaca_server)
    order = await call(client.submit_order, market("AAPL", 1, "filled-1"))
    with pytest.raises(APIError) as refused:
        await call(client.cancel_order_by_id, order.id)
    assert refused.value.status_code == 422


async def test_order_list_filters_open_and_closed(alpaca_server):
    client = trading_client(alpaca_server)
    await call(client.submit_order, market("AAPL", 1, "closed-1"))
    await call(client.submit_order, resting_limit("open-1"))
    opened = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN))
    closed = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    everything = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in opened] == ["open-1"]
    assert [o.client_order_id for o in closed] == ["closed-1"]
    assert [o.client_order_id for o in everything] == ["open-1", "closed-1"]  # newest first


async def test_fill_activities_carry_the_trade_streams_execution_ids(alpaca_server):
    ws = await trading_socket(alpaca_server)
    await call(trading_client(alpaca_server).submit_order, market("AAPL", 4, "activity-1"))
    _, fill = await next_json(ws), await next_json(ws)
    await ws.close()
    status, activities = await get_json(alpaca_server, "/v2/account/activities/FILL?direction=asc")
    assert status == 200
    assert [(a["id"], a["qty"], a["cum_qty"], a["type"]) for a in activities] == [
        (fill["data"]["execution_id"], "4", "4", "fill")
    ]
    assert activities[0]["order_id"] == fill["data"]["order"]["id"]


async def test_close_position_sells_what_is_held(alpaca_server):
    client = trading_client(alpaca_server)
    await call(client.submit_order, market("AAPL", 6, "open-pos"))
    closing = await call(client.close_position, "AAPL")
    assert (closing.side, closing.qty) == (OrderSide.SELL, "6")
    assert await call(client.get_all_positions) == []


async def test_missing_position_is_404(alpaca_server):
    with pytest.raises(APIError) as missing:
        await call(trading_client(alpaca_server).get_open_position, "MSFT")
    assert missing.value.status_code == 404


async def test_clock_is_open_at_the_sim_sessions_start(alpaca_server):
    clock = await call(trading_client(alpaca_server).get_clock)
    assert clock.is_open
    assert (clock.next_close.hour, clock.next_close.minute) == (16, 0)


async def test_calendar_lists_weekdays_with_regular_hours(alpaca_server):
    request = GetCalendarRequest(start=date(2024, 1, 5), end=date(2024, 1, 8))
    days = await call(trading_client(alpaca_server).get_calendar, request)
    assert [(d.date.isoformat(), d.open.hour, d.close.hour) for d in days] == [
        ("2024-01-05", 9, 16),
        ("2024-01-08", 9, 16),
    ]


async def test_assets_carry_the_flags_risk_reads(alpaca_server):
    client = trading_client(alpaca_server)
    assets = await call(client.get_all_assets)
    aapl = await call(client.get_asset, "AAPL")
    assert sorted(a.symbol for a in assets) == ["AAPL", "MSFT", "SPY"]
    assert (aapl.tradable, aapl.shortable, aapl.easy_to_borrow, aapl.fractionable) == (
        True,
        True,
        True,
        True,
    )


async def test_option_contracts_page_with_a_token(alpaca_server):
    request = GetOptionContractsRequest(underlying_symbols=["AAPL"], type="call", limit=3)
    page = await call(trading_client(alpaca_server).get_option_contracts, request)
    assert len(page.option_contracts) == 3
    assert all(c.underlying_symbol == "AAPL" for c in page.option_contracts)
    assert page.next_page_token is not None


# ---- market-data REST ----------------------------------------------------------------


async def test_bars_page_until_the_token_is_null(alpaca_server_factory):
    server = await alpaca_server_factory(symbols=("AAPL",), speed=600)
    while len(server.venue.bars["AAPL"]) < 3:
        await asyncio.sleep(0.05)
    status, first = await get_json(server, "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&limit=2")
    token = first["next_page_token"]
    _, second = await get_json(
        server, f"/v2/stocks/bars?symbols=AAPL&timeframe=1Min&limit=100&page_token={token}"
    )
    assert status == 200
    assert len(first["bars"]["AAPL"]) == 2
    assert second["next_page_token"] is None
    assert second["bars"]["AAPL"][0]["t"] > first["bars"]["AAPL"][1]["t"]


async def test_alpaca_py_reads_recorded_bars_with_count_and_vwap(alpaca_server_factory):
    server = await alpaca_server_factory(symbols=("AAPL",), speed=600)
    while len(server.venue.bars["AAPL"]) < 2:
        await asyncio.sleep(0.05)
    recorded = server.venue.bars["AAPL"][0]
    client = StockHistoricalDataClient(
        ALPACA_KEY_ID, ALPACA_SECRET_KEY, url_override=server.data_url
    )
    request = StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute, limit=1)
    bar = (await call(client.get_stock_bars, request)).data["AAPL"][0]
    assert Decimal(str(bar.close)) == recorded.bar.close
    assert (bar.volume, bar.trade_count) == (recorded.bar.volume, recorded.trade_count)
    assert Decimal(str(bar.vwap)) == recorded.vwap


# ---- market-data stream --------------------------------------------------------------


async def test_data_stream_sends_msgpack_quotes_with_timestamps(alpaca_server):
    ws = await authed_data(alpaca_server)
    ack = await subscribe(ws, quotes=["AAPL"])
    quotes = await next_data(ws)
    await ws.close()
    assert ack[0]["quotes"] == ["AAPL"]
    assert quotes[0]["T"] == "q"
    assert quotes[0]["S"] == "AAPL"
    assert isinstance(quotes[0]["t"], msgpack.Timestamp)
    assert 0 < quotes[0]["bp"] < quotes[0]["ap"]


async def test_data_stream_without_msgpack_speaks_json_text(alpaca_server):
    ws = await connect(alpaca_server.stream_url + "/v2/iex")
    connected = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
    await ws.send(json.dumps({"action": "auth", "key": ALPACA_KEY_ID, "secret": ALPACA_SECRET_KEY}))
    await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    await ws.send(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}))
    await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    quotes = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
    await ws.close()
    assert connected == [{"T": "success", "msg": "connected"}]
    assert quotes[0]["t"].endswith("Z")


async def test_option_feed_without_msgpack_gets_412(alpaca_server):
    ws = await connect(alpaca_server.stream_url + "/v1beta1/indicative")
    await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    refused = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
    await ws.close()
    assert refused[0]["code"] == 412


async def test_subscription_ack_adds_corrections_and_cancel_errors_for_trades(alpaca_server):
    ws = await authed_data(alpaca_server)
    ack = await subscribe(ws, trades=["MSFT"], bars=["*"])
    await ws.close()
    assert ack == [
        {
            "T": "subscription",
            "trades": ["MSFT"],
            "quotes": [],
            "bars": ["*"],
            "updatedBars": [],
            "dailyBars": [],
            "statuses": [],
            "lulds": [],
            "corrections": ["MSFT"],
            "cancelErrors": ["MSFT"],
        }
    ]


async def test_wrong_key_gets_402_and_the_socket_closes(alpaca_server):
    ws = await data_socket(alpaca_server)
    reply = await auth_data(ws, key="NOPE")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    assert reply == [{"T": "error", "code": 402, "msg": "auth failed"}]


async def test_second_connection_for_the_same_key_and_feed_gets_406(alpaca_server):
    first = await authed_data(alpaca_server)
    second = await data_socket(alpaca_server)
    reply = await auth_data(second)
    await first.close()
    assert reply == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]


async def test_subscribe_before_auth_gets_401(alpaca_server):
    ws = await data_socket(alpaca_server)
    reply = await subscribe(ws, quotes=["AAPL"])
    await ws.close()
    assert reply == [{"T": "error", "code": 401, "msg": "not authenticated"}]


async def test_bars_on_an_option_feed_get_410(alpaca_server):
    ws = await authed_data(alpaca_server, "/v1beta1/indicative")
    reply = await subscribe(ws, bars=["*"])
    await ws.close()
    assert reply[0]["code"] == 410


async def test_star_option_quotes_get_413(alpaca_server):
    ws = await authed_data(alpaca_server, "/v1beta1/opra")
    reply = await subscribe(ws, quotes=["*"])
    await ws.close()
    assert reply[0]["code"] == 413


# ---- trading stream ------------------------------------------------------------------


async def test_trade_updates_report_new_then_fill_with_execution_fields(alpaca_server):
    ws = await trading_socket(alpaca_server)
    await call(trading_client(alpaca_server).submit_order, market("AAPL", 2, "stream-1"))
    new, fill = await next_json(ws), await next_json(ws)
    await ws.close()
    assert (new["data"]["event"], fill["data"]["event"]) == ("new", "fill")
    assert fill["data"]["order"]["client_order_id"] == "stream-1"
    assert (fill["data"]["qty"], fill["data"]["position_qty"]) == ("2", "2")
    update = TradeUpdate(**fill["data"])  # alpaca-py's own model accepts it
    assert update.order.status is OrderStatus.FILLED
    assert update.price == float(fill["data"]["price"])


async def test_listen_before_authenticate_is_unauthorized(alpaca_server):
    ws = await connect(alpaca_server.trading_stream_url)
    await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    reply = await next_json(ws)
    await ws.close()
    assert reply["data"] == {"status": "unauthorized", "action": "listen"}


async def run_until(stream: Any, done: asyncio.Event) -> None:
    """Run an alpaca-py stream inside this loop (its run() owns a loop) until ``done`` is set."""
    task = asyncio.create_task(stream._run_forever())
    try:
        await asyncio.wait_for(done.wait(), 4 * RECV_TIMEOUT_S)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_alpaca_py_trading_stream_receives_the_fill(alpaca_server):
    updates: list[TradeUpdate] = []
    filled = asyncio.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == "fill":
            filled.set()

    stream = TradingStream(
        ALPACA_KEY_ID, ALPACA_SECRET_KEY, url_override=alpaca_server.trading_stream_url
    )
    stream.subscribe_trade_updates(on_update)

    async def trade_when_listening() -> None:
        while not alpaca_server.connected("trading"):
            await asyncio.sleep(0.01)
        await call(trading_client(alpaca_server).submit_order, market("AAPL", 3, "sdk-stream"))

    trader = asyncio.create_task(trade_when_listening())
    await run_until(stream, filled)
    await trader
    assert [(u.event, u.qty, u.position_qty) for u in updates] == [
        ("new", None, None),
        ("fill", 3.0, 3.0),
    ]


async def test_alpaca_py_data_stream_receives_quotes_and_bars(alpaca_server_factory):
    server = await alpaca_server_factory(symbols=("AAPL",), speed=120)
    quotes, bars = [], []
    got_bar = asyncio.Event()

    async def on_quote(quote: Any) -> None:
        quotes.append(quote)

    async def on_bar(bar: Any) -> None:
        bars.append(bar)
        got_bar.set()

    stream = StockDataStream(
        ALPACA_KEY_ID, ALPACA_SECRET_KEY, url_override=server.stream_url + "/v2/iex"
    )
    stream.subscribe_quotes(on_quote, "AAPL")
    stream.subscribe_bars(on_bar, "*")
    await run_until(stream, got_bar)
    first_ns = datetime_to_ns(bars[0].timestamp)
    (recorded,) = [r for r in server.venue.bars["AAPL"] if r.bar.ts_ns == first_ns]
    assert quotes[0].symbol == "AAPL"
    assert quotes[0].bid_price < quotes[0].ask_price
    assert bars[0].trade_count == recorded.trade_count
    assert Decimal(str(bars[0].vwap)) == recorded.vwap


# ---- faults --------------------------------------------------------------------------


async def test_connected_counts_authenticated_sockets(alpaca_server):
    before = alpaca_server.connected("data")
    ws = await authed_data(alpaca_server)
    during = alpaca_server.connected("data")
    await ws.close()
    assert (before, during) == (0, 1)


async def test_drop_connections_cuts_the_data_socket(alpaca_server):
    ws = await authed_data(alpaca_server)
    dropped = alpaca_server.faults.drop_connections("data")
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    assert dropped == 1


async def test_drop_connections_cuts_the_trading_socket(alpaca_server):
    ws = await trading_socket(alpaca_server)
    alpaca_server.faults.drop_connections("trading")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)


async def test_silent_socket_stays_open_but_sends_nothing(alpaca_server):
    ws = await authed_data(alpaca_server)
    await subscribe(ws, quotes=["AAPL", "MSFT", "SPY"])
    alpaca_server.faults.go_silent("data", 60)
    with pytest.raises(TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), 1.0)
    pong = await ws.ping()
    await asyncio.wait_for(pong, RECV_TIMEOUT_S)
    await ws.close()


async def test_rejected_data_auth_answers_the_injected_code(alpaca_server):
    alpaca_server.faults.reject_auth("data", 406)
    ws = await data_socket(alpaca_server)
    first = await auth_data(ws)
    retry = await authed_data(alpaca_server)
    await retry.close()
    assert first == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]


async def test_rejected_trading_auth_is_unauthorized(alpaca_server):
    alpaca_server.faults.reject_auth("trading", 402)
    ws = await connect(alpaca_server.trading_stream_url)
    await ws.send(
        json.dumps(
            {
                "action": "authenticate",
                "data": {"key_id": ALPACA_KEY_ID, "secret_key": ALPACA_SECRET_KEY},
            }
        )
    )
    reply = await next_json(ws)
    await ws.close()
    assert reply["data"]["status"] == "unauthorized"


async def test_http_error_answers_with_alpacas_error_body(alpaca_server):
    alpaca_server.faults.http_error(503)
    with pytest.raises(APIError) as failed:
        await call(trading_client(alpaca_server).get_account)
    assert (failed.value.status_code, failed.value.code) == (503, 50310000)


async def test_http_error_counts_down_then_requests_succeed(alpaca_server):
    alpaca_server.faults.http_error(429, count=2)
    statuses = [(await get_json(alpaca_server, "/v2/clock"))[0] for _ in range(3)]
    assert statuses == [429, 429, 200]


async def test_http_error_with_a_path_prefix_spares_other_paths(alpaca_server):
    alpaca_server.faults.http_error(500, path_prefix="/v2/positions")
    clock_status, _ = await get_json(alpaca_server, "/v2/clock")
    positions_status, body = await get_json(alpaca_server, "/v2/positions")
    assert (clock_status, positions_status) == (200, 500)
    assert body == {"code": 50010000, "message": "internal server error"}


async def test_http_error_on_a_stream_path_refuses_the_websocket_upgrade(alpaca_server):
    alpaca_server.faults.http_error(429, path_prefix="/v2/iex")
    with pytest.raises(InvalidStatus) as refused:
        await connect(alpaca_server.stream_url + "/v2/iex", additional_headers=MSGPACK)
    retry = await data_socket(alpaca_server)
    await retry.close()
    assert refused.value.response.status_code == 429


async def test_malformed_data_frames_come_before_the_real_messages(alpaca_server):
    ws = await authed_data(alpaca_server)
    alpaca_server.faults.malformed_frames("data", 2)
    frames = [await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S) for _ in range(2)]
    ack = await subscribe(ws, quotes=["AAPL"])
    await ws.close()
    for frame in frames:
        with pytest.raises(ValueError):
            msgpack.unpackb(frame)
    assert ack[0]["T"] == "subscription"


async def test_malformed_trading_frame_is_not_json(alpaca_server):
    ws = await trading_socket(alpaca_server)
    alpaca_server.faults.malformed_frames("trading", 1)
    frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    await ws.close()
    with pytest.raises(ValueError):
        json.loads(frame)


async def test_duplicated_trade_updates_arrive_twice(alpaca_server):
    ws = await trading_socket(alpaca_server)
    alpaca_server.faults.duplicate_trade_updates(True)
    await call(trading_client(alpaca_server).submit_order, market("AAPL", 1, "dup-stream"))
    events = await events_for(ws, 4)
    await ws.close()
    assert events == ["new", "new", "fill", "fill"]


async def test_reordered_trade_updates_swap_neighbours(alpaca_server):
    ws = await trading_socket(alpaca_server)
    alpaca_server.faults.reorder_trade_updates(True)
    await call(trading_client(alpaca_server).submit_order, market("AAPL", 1, "reorder"))
    events = await events_for(ws, 2)
    await ws.close()
    assert events == ["fill", "new"]


async def test_forbidden_sip_gets_409_while_iex_still_works(alpaca_server):
    alpaca_server.faults.forbid_sip(True)
    sip = await data_socket(alpaca_server, "/v2/sip")
    reply = await auth_data(sip)
    iex = await authed_data(alpaca_server, "/v2/iex")
    await iex.close()
    assert reply == [{"T": "error", "code": 409, "msg": "insufficient subscription"}]


async def test_symbol_limit_refuses_with_405_and_keeps_the_previous_set(alpaca_server):
    alpaca_server.faults.symbol_limit(1)
    ws = await authed_data(alpaca_server)
    await subscribe(ws, trades=["AAPL"])
    refused = await subscribe(ws, quotes=["MSFT"])
    ack = await subscribe(ws, bars=["MSFT"])
    await ws.close()
    assert refused == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
    assert (ack[0]["trades"], ack[0]["quotes"]) == (["AAPL"], [])


async def test_faults_endpoint_applies_a_fault_from_json(alpaca_server):
    status, _ = await post_fault(alpaca_server, {"fault": "http_error", "status": 500})
    failed, _ = await get_json(alpaca_server, "/v2/clock")
    assert (status, failed) == (200, 500)


async def test_faults_endpoint_refuses_an_unknown_fault(alpaca_server):
    status, body = await post_fault(alpaca_server, {"fault": "explode"})
    assert status == 400
    assert "unknown fault" in body["message"]


# ---- dev command ---------------------------------------------------------------------


async def test_dev_server_prints_the_variables_to_export():
    out = io.StringIO()
    task = asyncio.create_task(serve(port=0, seed=1, symbols=["AAPL"], speed=1.0, out=out))
    while "Ctrl-C" not in out.getvalue():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    text = out.getvalue()
    assert "export APCA_API_BASE_URL=http://127.0.0.1:" in text
    assert "export APCA_API_STREAM_URL=ws://127.0.0.1:" in text
    assert "export APCA_API_KEY_ID=PKTEST" in text
