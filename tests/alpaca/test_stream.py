"""Alpaca market-data stream: codec normalization, and the client against loopback servers.

Most client tests run against ``_Loopback``, a small Alpaca-protocol server in
this file whose frames the test writes itself (so every field and fault is
exact); the ``TestAgainstLocalServer`` tests use the project's local Alpaca
server (engine.alpaca.server), whose market comes from the sim venue.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import msgpack
import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from engine.alpaca.codec import FrameDecoder, MalformedFrame, parse_rfc3339_ns
from engine.alpaca.events import Luld, TradingStatus
from engine.alpaca.stream import (
    MSG_402,
    MSG_406,
    AlpacaMarketData,
    RestBarBackfill,
    StreamState,
    backoff_delay,
    stream_base,
)
from engine.core.bus import MessageBus, Topic
from engine.core.clock import SimClock, datetime_to_ns
from engine.core.errors import InputError
from engine.core.events import Severity
from engine.core.models import Bar, Quote, Trade
from engine.health import HealthMonitor, Status

TS = msgpack.Timestamp(seconds=1_614_009_104, nanoseconds=208_123_456)
TS_NS = 1_614_009_104_208_123_456
T0 = datetime_to_ns(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
MINUTE = 60_000_000_000


def _pack(messages: list[dict]) -> bytes:
    return msgpack.packb(messages, datetime=False)


def _quote(symbol: str = "AAPL", bp: float = 126.5, ap: float = 126.6, t=TS) -> dict:
    return {
        "T": "q",
        "S": symbol,
        "bx": "V",
        "bp": bp,
        "bs": 1,
        "ax": "V",
        "ap": ap,
        "as": 2,
        "t": t,
        "c": ["R"],
        "z": "C",
    }


# ---- codec -----------------------------------------------------------------------------


def test_stock_trade_becomes_trade_with_exact_price_and_ns():
    frame = _pack(
        [
            {
                "T": "t",
                "S": "AAPL",
                "i": 6142,
                "x": "V",
                "p": 177.79,
                "s": 90,
                "c": ["@", "I"],
                "z": "C",
                "t": TS,
            }
        ]
    )
    decoded = FrameDecoder().decode(frame)
    assert decoded.events == [
        (Topic.TRADE, Trade("AAPL", TS_NS, Decimal("177.79"), 90, "V")),
    ]


def test_stock_quote_becomes_quote_field_by_field():
    frame = _pack(
        [
            {
                "T": "q",
                "S": "SPIP",
                "bx": "V",
                "bp": 25.41,
                "bs": 35,
                "ax": "V",
                "ap": 25.43,
                "as": 35,
                "c": ["R"],
                "z": "B",
                "t": TS,
            }
        ]
    )
    [(topic, quote)] = FrameDecoder().decode(frame).events
    assert topic == Topic.QUOTE
    assert quote == Quote("SPIP", TS_NS, Decimal("25.41"), 35, Decimal("25.43"), 35)


def test_quote_prices_land_on_the_tick_grid():
    # 0.1 + 0.2 is 0.30000000000000004 as a float: the quote is put back on the $0.0001 grid.
    frame = _pack([_quote("XYZ", bp=0.1 + 0.2, ap=12.345000000000001)])
    [(_, quote)] = FrameDecoder().decode(frame).events
    assert (quote.bid, quote.ask) == (Decimal("0.3000"), Decimal("12.34"))


def test_trade_price_keeps_sub_penny_digits():
    frame = _pack([{"T": "t", "S": "AAPL", "i": 1, "x": "D", "p": 126.5501, "s": 5, "t": TS}])
    [(_, trade)] = FrameDecoder().decode(frame).events
    assert trade.price == Decimal("126.5501")


def test_minute_bar_becomes_one_minute_bar():
    bar = {
        "T": "b",
        "S": "FAKEPACA",
        "o": 132.65,
        "h": 136,
        "l": 132.12,
        "c": 134.65,
        "v": 205,
        "t": msgpack.Timestamp.from_datetime(datetime(2024, 7, 24, 7, 56, tzinfo=UTC)),
        "n": 16,
        "vw": 133.7,
    }
    [(topic, record)] = FrameDecoder().decode(_pack([bar])).events
    assert topic == Topic.BAR
    assert record == Bar(
        "FAKEPACA",
        datetime_to_ns(datetime(2024, 7, 24, 7, 56, tzinfo=UTC)),
        Decimal("132.65"),
        Decimal("136"),
        Decimal("132.12"),
        Decimal("134.65"),
        205,
        "1Min",
    )


def test_updated_bar_goes_to_its_own_topic_and_daily_bar_is_one_day():
    base = {"S": "AAPL", "o": 177.94, "h": 178.005, "l": 177.94, "c": 178.005, "v": 8547}
    base |= {"t": TS, "n": 66, "vw": 177.987562}
    decoded = FrameDecoder().decode(_pack([base | {"T": "u"}, base | {"T": "d"}]))
    (updated_topic, updated), (daily_topic, daily) = decoded.events
    assert (updated_topic, updated.timeframe, updated.high) == (
        Topic.BAR_UPDATE,
        "1Min",
        Decimal("178.005"),
    )
    assert (daily_topic, daily.timeframe, daily.volume) == (Topic.BAR, "1Day", 8547)


def test_trading_status_becomes_trading_status():
    status = {
        "T": "s",
        "S": "AAPL",
        "sc": "H",
        "sm": "Trading Halt",
        "rc": "T12",
        "rm": "Trading Halted; For information requested by NASDAQ",
        "t": TS,
        "z": "C",
    }
    [(topic, record)] = FrameDecoder().decode(_pack([status])).events
    assert topic == Topic.STATUS
    assert record == TradingStatus(
        "AAPL",
        TS_NS,
        "H",
        "Trading Halt",
        "T12",
        "Trading Halted; For information requested by NASDAQ",
        "C",
    )
    assert record.is_halted


def test_resumption_status_is_not_a_halt():
    status = {"T": "s", "S": "STRR", "sc": "T", "sm": "Trading Resumption", "rc": "C11"}
    status |= {"rm": "", "t": TS, "z": "C"}
    [(_, record)] = FrameDecoder().decode(_pack([status])).events
    assert not record.is_halted


def test_luld_becomes_luld_with_decimal_bands():
    luld = {"T": "l", "S": "IONM", "u": 3.24, "d": 2.65, "i": "B", "t": TS, "z": "C"}
    [(topic, record)] = FrameDecoder().decode(_pack([luld])).events
    assert topic == Topic.LULD
    assert record == Luld("IONM", TS_NS, Decimal("3.24"), Decimal("2.65"), "B", "C")


def test_option_trade_and_quote_keep_occ_symbol_and_unrounded_prices():
    trade = {"T": "t", "S": "AAPL240315C00172500", "t": TS, "p": 2.84, "s": 1, "x": "N", "c": "S"}
    quote = {"T": "q", "S": "SPXW240327P04925000", "t": TS, "bx": "C", "bp": 9.46, "bs": 53}
    quote |= {"ax": "C", "ap": 9.655, "as": 38, "c": "A"}
    decoded = FrameDecoder(options=True).decode(_pack([trade, quote]))
    assert decoded.events == [
        (Topic.TRADE, Trade("AAPL240315C00172500", TS_NS, Decimal("2.84"), 1, "N")),
        (
            Topic.QUOTE,
            Quote("SPXW240327P04925000", TS_NS, Decimal("9.46"), 53, Decimal("9.655"), 38),
        ),
    ]


def test_control_messages_are_handed_back_and_corrections_skipped():
    correction = {"T": "c", "S": "EEM", "x": "M", "oi": 1, "op": 39.1582, "t": TS}
    decoded = FrameDecoder().decode(_pack([{"T": "success", "msg": "authenticated"}, correction]))
    assert (decoded.events, decoded.controls, decoded.skipped) == (
        [],
        [{"T": "success", "msg": "authenticated"}],
        1,
    )


def test_a_bad_message_is_counted_and_the_rest_of_the_frame_survives():
    bad = {"T": "q", "S": "AAPL", "bp": "not a price", "t": TS}
    decoded = FrameDecoder().decode(_pack([bad, _quote(), {"T": "zz"}]))
    assert decoded.malformed == 2
    assert [record.symbol for _, record in decoded.events] == ["AAPL"]


def test_a_frame_that_is_not_msgpack_raises_malformed_frame():
    with pytest.raises(MalformedFrame, match="not valid msgpack"):
        FrameDecoder().decode(b"\xc1\xc1\xc1")


def test_rfc3339_keeps_nanoseconds_and_offsets():
    assert parse_rfc3339_ns("2021-02-22T15:51:44.208123456Z") == TS_NS
    assert parse_rfc3339_ns("2021-02-22T10:51:44.208123456-05:00") == TS_NS


def test_stream_base_strips_the_feed_path():
    assert stream_base("wss://stream.data.alpaca.markets/v2/iex") == (
        "wss://stream.data.alpaca.markets"
    )


def test_backoff_is_jittered_exponential_and_capped():
    rng = random.Random(3)
    first = [backoff_delay(0, 1.0, 30.0, rng) for _ in range(50)]
    late = [backoff_delay(12, 1.0, 30.0, rng) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in first)
    assert all(15.0 <= d <= 30.0 for d in late)
    assert len(set(first)) > 1


# ---- loopback server ---------------------------------------------------------------------


@dataclass
class _Endpoints:
    key_id: str
    secret_key: str
    data_url: str
    data_stream_url: str


@dataclass
class _Loopback:
    """An Alpaca-protocol market-data server whose behaviour each test sets."""

    auth_errors: list[int] = field(default_factory=list)  # next auths fail with these codes
    forbid_sip: bool = False
    symbol_limit: int | None = None
    paths: list[str] = field(default_factory=list)
    received: list[list[dict]] = field(default_factory=list)  # per connection
    connections: list[ServerConnection] = field(default_factory=list)
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path)
        inbox: list[dict] = []
        self.received.append(inbox)
        subs: dict[str, list[str]] = {}
        await ws.send(_pack([{"T": "success", "msg": "connected"}]))
        async for raw in ws:
            message = msgpack.unpackb(raw)
            inbox.append(message)
            action = message.get("action")
            if action == "auth":
                if self.forbid_sip and ws.request.path == "/v2/sip":
                    await ws.send(_pack([_error(409, "insufficient subscription")]))
                    await ws.close()
                    return
                if self.auth_errors:
                    code = self.auth_errors.pop(0)
                    text = {402: "auth failed", 406: "connection limit exceeded"}[code]
                    await ws.send(_pack([_error(code, text)]))
                    await ws.close()
                    return
                await ws.send(_pack([{"T": "success", "msg": "authenticated"}]))
                self.connections.append(ws)
            elif action in ("subscribe", "unsubscribe"):
                merged = {k: list(v) for k, v in subs.items()}
                for channel, symbols in message.items():
                    if channel == "action":
                        continue
                    current = merged.setdefault(channel, [])
                    for symbol in symbols:
                        if action == "subscribe" and symbol not in current:
                            current.append(symbol)
                        elif action == "unsubscribe" and symbol in current:
                            current.remove(symbol)
                total = len({s for symbols in merged.values() for s in symbols})
                if self.symbol_limit is not None and total > self.symbol_limit:
                    await ws.send(_pack([_error(405, "symbol limit exceeded")]))
                    continue
                subs = merged
                await ws.send(_pack([{"T": "subscription", **subs}]))
                self.acked.set()

    async def push(self, messages: list[dict] | bytes) -> None:
        frame = messages if isinstance(messages, bytes) else _pack(messages)
        await self.connections[-1].send(frame)


def _error(code: int, text: str) -> dict:
    return {"T": "error", "code": code, "msg": text}


class _Harness:
    def __init__(self, server: _Loopback, port: int, **options) -> None:
        self.server = server
        self.port = port
        self.bus = MessageBus()
        self.clock = SimClock(T0)
        self.seen: list[tuple[str, object]] = []
        for topic in (Topic.QUOTE, Topic.TRADE, Topic.BAR, Topic.ALERT):
            self.bus.subscribe(topic, lambda m, t=topic: self.seen.append((t, m)))
        endpoints = _Endpoints(
            "PKTEST", "SECRET", f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v2/iex"
        )
        options.setdefault("backfill", _no_backfill)
        options.setdefault("backoff_base_s", 0.01)
        options.setdefault("backoff_cap_s", 0.05)
        self.stream = AlpacaMarketData(self.bus, self.clock, endpoints, **options)
        self.task: asyncio.Task | None = None

    def of(self, topic: str) -> list:
        return [m for t, m in self.seen if t == topic]

    def alerts(self) -> list[str]:
        return [a.message for a in self.of(Topic.ALERT)]


async def _no_backfill(symbols, start_ns, end_ns) -> list[Bar]:
    return []


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def _run(scenario, server: _Loopback | None = None, **options) -> _Harness:
    """Serve ``server`` on a free port, run the stream beside ``scenario(harness)``, stop both."""

    async def main() -> _Harness:
        loopback = server or _Loopback()
        async with serve(loopback.handler, "127.0.0.1", 0) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            harness = _Harness(loopback, port, **options)
            harness.task = asyncio.create_task(harness.stream.run())
            try:
                await scenario(harness)
            finally:
                harness.stream.stop()
                await asyncio.wait_for(harness.task, 5)
        return harness

    return asyncio.run(main())


# ---- client against the loopback server --------------------------------------------------


def test_auth_then_subscribe_with_the_desired_set():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["aapl", "MSFT"], ["quotes"])
        h.stream.subscribe(["AAPL"], ["trades"])
        await _until(lambda: h.server.acked.is_set())
        assert h.stream.state is StreamState.LIVE

    h = _run(scenario)
    auth, subscribe = h.server.received[0][:2]
    assert auth == {"action": "auth", "key": "PKTEST", "secret": "SECRET"}
    assert subscribe["action"] == "subscribe"
    assert sorted(subscribe["quotes"]) == ["AAPL", "MSFT"]
    assert subscribe["trades"] == ["AAPL"]
    assert h.server.paths == ["/v2/iex"]


def test_live_quotes_and_trades_are_published_on_the_bus():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes", "trades"])
        await _until(lambda: h.server.acked.is_set())
        trade = {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 126.55, "s": 3, "t": TS}
        await h.server.push([_quote(), trade])
        await _until(lambda: h.stream.stats.events == 2)

    h = _run(scenario)
    assert h.of(Topic.QUOTE) == [
        Quote("AAPL", TS_NS, Decimal("126.50"), 1, Decimal("126.60"), 2),
    ]
    assert h.of(Topic.TRADE) == [Trade("AAPL", TS_NS, Decimal("126.55"), 3, "V")]


def test_a_symbol_leaves_the_wire_only_when_its_last_consumer_unsubscribes():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes"])
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        h.stream.unsubscribe(["AAPL"], ["quotes"])
        await asyncio.sleep(0.05)
        assert [m["action"] for m in h.server.received[0]] == ["auth", "subscribe"]
        h.stream.unsubscribe(["AAPL"], ["quotes"])
        await _until(lambda: len(h.server.received[0]) == 3)

    h = _run(scenario)
    assert h.server.received[0][2] == {"action": "unsubscribe", "quotes": ["AAPL"]}
    assert h.stream.subscriptions == {}


def test_wrong_keys_stop_the_stream_with_a_clear_sentence():
    async def scenario(h: _Harness) -> None:
        await asyncio.wait_for(asyncio.shield(h.task), 5)

    h = _run(scenario, _Loopback(auth_errors=[402]))
    assert h.stream.state is StreamState.FAILED
    assert h.stream.last_error == MSG_402
    assert h.alerts() == [MSG_402]
    assert h.of(Topic.ALERT)[0].severity is Severity.ERROR
    assert len(h.server.paths) == 1


def test_health_shows_the_stream_live_then_down_once_stopped():
    health = HealthMonitor(feed_events=lambda: 0, bus_errors=lambda: 0)
    states: list[tuple[Status, str]] = []

    async def scenario(h: _Harness) -> None:
        await _until(lambda: h.stream.state is StreamState.LIVE)
        [component] = health.snapshot().components
        states.append((component.status, component.detail))

    _run(scenario, health=health)
    [component] = health.snapshot().components
    assert component.name == "alpaca.data"
    assert states == [(Status.OK, "live iex")]
    assert component.status is Status.DOWN


def test_connection_limit_says_so_and_retries_slowly():
    async def scenario(h: _Harness) -> None:
        await _until(lambda: h.stream.state is StreamState.LIVE)

    h = _run(scenario, _Loopback(auth_errors=[406, 406]), connection_limit_retry_s=0.05)
    assert h.alerts() == [MSG_406]  # said once per episode, not once per retry
    assert len(h.server.paths) == 3
    assert h.stream.stats.reconnects == 2


def test_sip_without_entitlement_falls_back_to_iex_with_one_warning():
    async def scenario(h: _Harness) -> None:
        await _until(lambda: h.stream.state is StreamState.LIVE)

    h = _run(scenario, _Loopback(forbid_sip=True), feed="sip")
    assert h.server.paths == ["/v2/sip", "/v2/iex"]
    assert h.stream.feed == "iex"
    [alert] = h.of(Topic.ALERT)
    assert alert.severity is Severity.WARNING
    assert "409 insufficient subscription" in alert.message and "iex" in alert.message


def test_symbol_limit_keeps_the_symbols_that_fit_and_warns():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        h.stream.subscribe(["MSFT", "SPY", "TSLA"], ["quotes"])
        await _until(lambda: bool(h.stream.rejected))
        await asyncio.sleep(0.05)

    h = _run(scenario, _Loopback(symbol_limit=3))
    assert h.stream.rejected == {("quotes", "TSLA")}
    assert h.stream.subscriptions == {"quotes": frozenset({"AAPL", "MSFT", "SPY"})}
    [alert] = h.alerts()
    assert "405 symbol limit exceeded" in alert and "TSLA (quotes)" in alert


def test_dropped_connection_reconnects_resubscribes_and_backfills_the_gap_first():
    calls: list[tuple[list[str], int, int]] = []
    gap_bar = Bar("AAPL", T0 + MINUTE, *[Decimal("127")] * 4, 100)
    unfinished = Bar("AAPL", T0 + 5 * MINUTE, *[Decimal("128")] * 4, 100)

    async def backfill(symbols, start_ns, end_ns) -> list[Bar]:
        calls.append((list(symbols), start_ns, end_ns))
        return [gap_bar, unfinished]

    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes", "bars"])
        await _until(lambda: h.server.acked.is_set())
        await h.server.push([_quote()])
        await _until(lambda: h.stream.stats.events == 1)
        h.server.acked.clear()
        h.clock.advance_by(5 * MINUTE + 30_000_000_000)  # five and a half minutes pass
        await h.server.connections[-1].close()
        await _until(lambda: h.server.acked.is_set())
        await h.server.push([_quote(bp=127.5, ap=127.6)])
        await _until(lambda: h.stream.stats.events == 2)

    h = _run(scenario, backfill=backfill)
    assert calls == [(["AAPL"], T0, T0 + 5 * MINUTE + 30_000_000_000)]
    assert h.server.received[1][1]["quotes"] == ["AAPL"]
    assert h.server.received[1][1]["bars"] == ["AAPL"]
    published = [m for t, m in h.seen if t in (Topic.BAR, Topic.QUOTE)]
    assert published[1:] == [gap_bar, Quote("AAPL", TS_NS, *_px("127.50", "127.60"))]
    assert h.stream.stats.reconnects == 1
    assert h.stream.stats.backfilled == 1


def test_a_lost_connection_tells_the_trader_and_says_when_data_is_back():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        h.server.acked.clear()
        h.clock.advance_by(3_000_000_000)
        await h.server.connections[-1].close()
        h.clock.advance_by(4_000_000_000)
        await _until(lambda: h.server.acked.is_set())

    h = _run(scenario)
    assert h.alerts() == [
        "Alpaca market data stopped (the connection was lost or went silent): "
        "reconnecting, quotes may be stale",
        "Alpaca market data is back after 4 s",
    ]
    assert [a.severity for a in h.of(Topic.ALERT)] == [Severity.WARNING, Severity.INFO]


def test_option_feed_connects_to_its_own_path_and_decodes_occ_quotes():
    occ = "AAPL240315C00172500"

    async def scenario(h: _Harness) -> None:
        h.stream.subscribe([occ], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        quote = {"T": "q", "S": occ, "t": TS, "bx": "C", "bp": 2.805, "bs": 5, "ax": "C"}
        await h.server.push([quote | {"ap": 2.9, "as": 7, "c": "A"}])
        await _until(lambda: h.stream.stats.events == 1)

    h = _run(scenario, feed="indicative")
    assert h.server.paths == ["/v1beta1/indicative"]
    assert h.of(Topic.QUOTE) == [Quote(occ, TS_NS, Decimal("2.805"), 5, Decimal("2.9"), 7)]


def test_option_feed_refuses_stock_only_channels():
    endpoints = _Endpoints("PKTEST", "SECRET", "", "ws://127.0.0.1:9/v2/iex")
    stream = AlpacaMarketData(MessageBus(), SimClock(T0), endpoints, feed="opra")
    with pytest.raises(InputError, match="'bars' is not a channel of the opra feed"):
        stream.subscribe(["SPY240621C00500000"], ["bars"])
    assert stream.subscriptions == {}


def test_a_second_stream_on_the_same_keys_is_refused():
    async def scenario(h: _Harness) -> None:
        await _until(lambda: h.stream.state is StreamState.LIVE)
        twin = _Harness(h.server, h.port).stream
        with pytest.raises(InputError, match="already streams Alpaca market data"):
            await twin.run()

    _run(scenario)


def test_stop_before_run_starts_means_run_returns_at_once():
    async def main() -> StreamState:
        stream = _Harness(_Loopback(), 9).stream
        stream.stop()
        await asyncio.wait_for(stream.run(), 1)
        return stream.state

    assert asyncio.run(main()) is StreamState.STOPPED


def _px(bid: str, ask: str) -> tuple:
    return Decimal(bid), 1, Decimal(ask), 2


def test_a_silent_socket_is_closed_and_reconnected():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: len(h.server.paths) == 2)
        await _until(lambda: h.stream.state is StreamState.LIVE)

    h = _run(scenario, silence_timeout_s=0.2)
    assert h.stream.stats.reconnects >= 1
    assert h.server.received[1][1] == {"action": "subscribe", "quotes": ["AAPL"]}


def test_a_malformed_frame_is_counted_and_the_connection_kept():
    async def scenario(h: _Harness) -> None:
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        await h.server.push(b"\xc1\xc1\xc1")
        await h.server.push([_quote()])
        await _until(lambda: h.stream.stats.events == 1)

    h = _run(scenario)
    assert h.stream.stats.malformed == 1
    assert h.stream.stats.reconnects == 0
    assert len(h.of(Topic.QUOTE)) == 1


def test_a_slow_consumer_drops_the_oldest_frames_and_counts_every_message():
    frames, per_frame = 200, 50

    async def scenario(h: _Harness) -> None:
        h.bus.subscribe(Topic.QUOTE, lambda _q: time.sleep(0.0002))
        h.stream.subscribe(["AAPL"], ["quotes"])
        await _until(lambda: h.server.acked.is_set())
        for i in range(frames):
            await h.server.push([_quote(bp=100 + i * 0.01) for _ in range(per_frame)])
        await _until(lambda: h.stream.stats.events + h.stream.stats.dropped == frames * per_frame)

    h = _run(scenario, queue_frames=4)
    assert h.stream.stats.dropped > 0
    assert h.stream.stats.dropped % per_frame == 0
    # Whatever survives is the newest data, in order.
    bids = [q.bid for q in h.of(Topic.QUOTE)]
    assert bids == sorted(bids)
    assert bids[-1] == Decimal("101.99")


# ---- default REST backfill -----------------------------------------------------------------


def test_rest_backfill_follows_pages_and_reads_exact_prices():
    requests: list[dict] = []

    async def bars(request: web.Request) -> web.Response:
        requests.append(dict(request.query) | {"key": request.headers["APCA-API-KEY-ID"]})
        if "page_token" not in request.query:
            body = '{"bars":{"AAPL":[{"t":"2026-11-20T15:01:00Z","o":127.1,"h":127.25,"l":127.0,"c":127.2,"v":100,"n":3,"vw":127.1}]},"next_page_token":"P2"}'
        else:
            body = '{"bars":{"MSFT":[{"t":"2026-11-20T15:00:00Z","o":410,"h":410.5,"l":409.99,"c":410.01,"v":7,"n":1,"vw":410}]},"next_page_token":null}'
        return web.Response(text=body, content_type="application/json")

    async def main() -> list[Bar]:
        app = web.Application()
        app.router.add_get("/v2/stocks/bars", bars)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            endpoints = _Endpoints("PKTEST", "SECRET", f"http://127.0.0.1:{port}", "")
            return await RestBarBackfill(endpoints)(["AAPL", "MSFT"], T0, T0 + 5 * MINUTE)
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert result == [
        Bar("MSFT", T0, Decimal("410"), Decimal("410.5"), Decimal("409.99"), Decimal("410.01"), 7),
        Bar(
            "AAPL",
            T0 + MINUTE,
            Decimal("127.1"),
            Decimal("127.25"),
            Decimal("127.0"),
            Decimal("127.2"),
            100,
        ),
    ]
    assert requests[0] == {
        "symbols": "AAPL,MSFT",
        "timeframe": "1Min",
        "start": "2026-11-20T15:00:00Z",
        "end": "2026-11-20T15:05:00Z",
        "limit": "10000",
        "feed": "iex",
        "sort": "asc",
        "key": "PKTEST",
    }
    assert requests[1]["page_token"] == "P2"


# ---- client against the project's local Alpaca server ----------------------------------------


class _Live:
    """The stream wired to a local ``AlpacaServer``, with everything it publishes recorded."""

    def __init__(self, server, *, secret: str = "SECRET", clock=None, **options) -> None:
        self.server = server
        self.bus = MessageBus()
        self.seen: dict[str, list] = {t: [] for t in (Topic.QUOTE, Topic.BAR, Topic.ALERT)}
        for topic, records in self.seen.items():
            self.bus.subscribe(topic, records.append)
        endpoints = _Endpoints("PKTEST", secret, server.data_url, f"{server.stream_url}/v2/iex")
        options.setdefault("backoff_base_s", 0.02)
        options.setdefault("backoff_cap_s", 0.1)
        self.stream = AlpacaMarketData(self.bus, clock or server.venue.clock, endpoints, **options)
        self.task = asyncio.create_task(self.stream.run())

    async def close(self) -> None:
        self.stream.stop()
        await asyncio.wait_for(self.task, 5)


@pytest.mark.asyncio
async def test_local_server_quotes_arrive_as_quotes(alpaca_server):
    live = _Live(alpaca_server, backfill=_no_backfill)
    live.stream.subscribe(["AAPL", "MSFT"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 5)
    finally:
        await live.close()
    assert {q.symbol for q in live.seen[Topic.QUOTE]} <= {"AAPL", "MSFT"}
    assert all(
        q.ask > q.bid > 0 and q.bid == q.bid.quantize(Decimal("0.01"))
        for q in live.seen[Topic.QUOTE]
    )
    assert live.stream.stats.malformed == 0


@pytest.mark.asyncio
async def test_local_server_wrong_secret_fails_with_the_402_sentence(alpaca_server):
    live = _Live(alpaca_server, secret="WRONG", backfill=_no_backfill)
    await asyncio.wait_for(live.task, 5)
    assert live.stream.state is StreamState.FAILED
    assert [a.message for a in live.seen[Topic.ALERT]] == [MSG_402]


@pytest.mark.asyncio
async def test_local_server_forbidden_sip_falls_back_to_iex(alpaca_server):
    alpaca_server.faults.forbid_sip(True)
    live = _Live(alpaca_server, feed="sip", backfill=_no_backfill)
    live.stream.subscribe(["SPY"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 1)
    finally:
        await live.close()
    assert live.stream.feed == "iex"
    assert len(live.seen[Topic.ALERT]) == 1


@pytest.mark.asyncio
async def test_local_server_connection_limit_then_recovery(alpaca_server):
    alpaca_server.faults.reject_auth("data", 406, count=2)
    live = _Live(alpaca_server, backfill=_no_backfill, connection_limit_retry_s=0.05)
    live.stream.subscribe(["AAPL"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 1)
    finally:
        await live.close()
    assert [a.message for a in live.seen[Topic.ALERT]] == [MSG_406]
    assert live.stream.stats.reconnects == 2


@pytest.mark.asyncio
async def test_local_server_symbol_limit_keeps_what_fits(alpaca_server):
    alpaca_server.faults.symbol_limit(2)
    live = _Live(alpaca_server, backfill=_no_backfill)
    try:
        await _until(lambda: live.stream.state is StreamState.LIVE)
        live.stream.subscribe(["AAPL", "MSFT", "SPY"], ["quotes"])
        await _until(lambda: bool(live.stream.rejected))
    finally:
        await live.close()
    assert live.stream.rejected == {("quotes", "SPY")}
    assert "405 symbol limit exceeded" in live.seen[Topic.ALERT][0].message


@pytest.mark.asyncio
async def test_local_server_malformed_frames_are_survived(alpaca_server):
    live = _Live(alpaca_server, backfill=_no_backfill)
    live.stream.subscribe(["AAPL"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 1)
        alpaca_server.faults.malformed_frames("data", 2)
        before = len(live.seen[Topic.QUOTE])
        await _until(lambda: len(live.seen[Topic.QUOTE]) > before + 2)
    finally:
        await live.close()
    assert live.stream.stats.malformed == 2
    assert live.stream.stats.reconnects == 0


@pytest.mark.asyncio
async def test_local_server_silence_is_detected_and_the_stream_resumes(alpaca_server):
    live = _Live(alpaca_server, backfill=_no_backfill, silence_timeout_s=0.3)
    live.stream.subscribe(["AAPL", "MSFT", "SPY"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 1)
        alpaca_server.faults.go_silent("data", 30)
        await _until(lambda: live.stream.stats.reconnects == 1)
        before = len(live.seen[Topic.QUOTE])
        await _until(lambda: len(live.seen[Topic.QUOTE]) > before)
    finally:
        await live.close()


@pytest.mark.asyncio
async def test_local_server_drop_reconnects_and_backfills_bars_from_rest(alpaca_server_factory):
    # 300x speed: the ~1 s reconnect backoff leaves minutes of sim time to fill from REST bars.
    server = await alpaca_server_factory(speed=300.0)
    live = _Live(server, backoff_base_s=1.0, backoff_cap_s=1.0)
    live.stream.subscribe(["AAPL"], ["quotes"])
    try:
        await _until(lambda: len(live.seen[Topic.QUOTE]) >= 1)
        assert server.faults.drop_connections("data") == 1
        await _until(lambda: live.stream.stats.reconnects == 1 and live.stream.stats.backfilled > 0)
    finally:
        await live.close()
    recorded = {r.bar.ts_ns: r.bar for r in server.venue.bars["AAPL"]}
    bars = live.seen[Topic.BAR]
    assert bars and all(bar == recorded[bar.ts_ns] for bar in bars)
    assert [b.ts_ns - bars[0].ts_ns for b in bars] == [i * MINUTE for i in range(len(bars))]
