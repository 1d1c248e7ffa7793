"""The attach server in process: consoles share one engine, bad messages are refused with a
reason, strangers are turned away, and a console that dies takes nothing with it."""

from __future__ import annotations

import asyncio
import os
import socket
from decimal import Decimal

import msgpack
import pytest
from websockets.asyncio.client import unix_connect

from engine.attach import protocol
from engine.attach.codec import decode, encode
from engine.attach.peer import peer_uid, refuse_peer
from engine.attach.remote import AttachError, RemoteClient
from engine.attach.server import AttachServer
from engine.bots.api import BotMode, BotState
from engine.client import Cursor, LocalClient
from engine.core.models import OrderRequest, OrderStatus, Side
from tests.daemon.conftest import InProcess
from tests.tui.conftest import deterministic_engine


async def _raw(server: AttachServer):
    """A bare websocket that has said hello, for sending hand-made frames."""
    ws = await unix_connect(str(server.path), uri="ws://localhost/attach")
    await ws.send(encode(protocol.hello(None)))
    assert decode(await ws.recv())["type"] == "welcome"
    return ws


@pytest.mark.asyncio
async def test_an_order_from_one_console_shows_in_the_other(attach_server: InProcess):
    first, second = RemoteClient(attach_server.server.path), RemoteClient(attach_server.server.path)
    await first.start()
    await second.start()
    outcome = await first.execute("buy 10 AAPL lmt 100 gtc")
    snapshot = await second.snapshot(Cursor())
    assert outcome.ok
    assert [o.id for o in snapshot.book.orders] == [outcome.order_id]
    assert snapshot.book.orders[0].status is OrderStatus.PENDING_NEW
    await first.stop()
    await second.stop()


@pytest.mark.asyncio
async def test_each_console_gets_only_what_changed_since_its_own_cursor(
    attach_server: InProcess,
):
    client = RemoteClient(attach_server.server.path)
    first = await client.snapshot(Cursor())
    again = await client.snapshot(first.cursor)
    assert len(first.quotes) == 2
    assert again.quotes == ()
    assert again.book is None
    await client.stop()


@pytest.mark.asyncio
async def test_orders_from_a_console_go_through_risk(attach_server: InProcess):
    client = RemoteClient(attach_server.server.path)
    outcome = await client.execute("buy 100000 AAPL")
    assert not outcome.ok
    assert outcome.message.startswith("rejected by risk")
    await client.stop()


@pytest.mark.asyncio
async def test_the_console_reports_how_many_are_attached_to_health(attach_server: InProcess):
    first, second = RemoteClient(attach_server.server.path), RemoteClient(attach_server.server.path)
    await first.start()
    await second.start()
    components = {c.name: c for c in (await first.snapshot(Cursor())).health.components}
    assert components["attach"].detail == "2 console(s) attached"
    await first.stop()
    await second.stop()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("hello", "text frames are not part of the protocol"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2]), "a message must be a msgpack map"),
        (msgpack.packb({"type": "call", "op": "symbols", "args": {}}), "needs a whole-number id"),
        (msgpack.packb({"type": "call", "id": 1, "op": "rm", "args": {}}), "unknown operation"),
        (
            msgpack.packb({"type": "call", "id": 1, "op": "bars", "args": {}}),
            "bars: missing symbol",
        ),
        (
            msgpack.packb({"type": "call", "id": 1, "op": "bars", "args": {"symbol": 7}}),
            "bars: symbol must be a string",
        ),
        (
            msgpack.packb({"type": "call", "id": 1, "op": "kill", "args": {"flatten": 1, "x": 2}}),
            "kill: unexpected x",
        ),
        (
            encode(
                protocol.call(
                    1,
                    "portfolio_risk",
                    {"horizon_days": 1.0, "confidence": 0.99, "paths": 10**9, "seed": 1},
                )
            ),
            "portfolio_risk: paths must be from 100 to 100000",
        ),
        (
            encode(
                protocol.call(
                    1,
                    "submit",
                    {
                        "request": OrderRequest("AAPL", Side.BUY, Decimal("-5")),
                        "confirmed": False,
                    },
                )
            ),
            "submit: request needs a quantity above zero",
        ),
    ],
)
@pytest.mark.asyncio
async def test_a_malformed_message_is_rejected_with_a_reason(
    attach_server: InProcess, frame, reason
):
    ws = await _raw(attach_server.server)
    await ws.send(frame)
    answer = decode(await ws.recv())
    assert answer["type"] == "error"
    assert reason in answer["error"]
    await ws.close()


@pytest.mark.asyncio
async def test_the_connection_stays_usable_after_a_rejected_message(attach_server: InProcess):
    ws = await _raw(attach_server.server)
    await ws.send(b"\xc1")
    await ws.recv()
    await ws.send(encode(protocol.call(7, "symbols", {})))
    answer = decode(await ws.recv())
    assert answer == {"type": "result", "id": 7, "value": ("AAPL", "MSFT")}
    assert attach_server.server.rejected == 1
    await ws.close()


@pytest.mark.asyncio
async def test_a_wrong_protocol_version_is_refused(attach_server: InProcess):
    ws = await unix_connect(str(attach_server.server.path), uri="ws://localhost/attach")
    await ws.send(msgpack.packb({"type": "hello", "version": 99, "token": None}))
    answer = decode(await ws.recv())
    assert answer["error"] == "protocol version 99 is not supported; this engine speaks 1"
    await ws.close()


@pytest.mark.asyncio
async def test_a_console_without_the_token_is_refused(attach_server: InProcess):
    attach_server.server.set_token("s3cret-token")
    with pytest.raises(AttachError, match="the token is missing or wrong"):
        await RemoteClient(attach_server.server.path).start()
    client = RemoteClient(attach_server.server.path, token="s3cret-token")
    assert await client.symbols() == ["AAPL", "MSFT"]
    await client.stop()


@pytest.mark.asyncio
async def test_a_console_that_dies_mid_stream_leaves_the_engine_and_others_running(
    attach_server: InProcess,
):
    survivor = RemoteClient(attach_server.server.path)
    await survivor.start()
    doomed = await _raw(attach_server.server)
    for call_id in range(20):  # calls in flight when it dies
        await doomed.send(encode(protocol.call(call_id, "snapshot", {"cursor": Cursor()})))
    doomed.transport.abort()
    outcome = await survivor.execute("buy 1 MSFT")
    attach_server.engine.driver.step()
    snapshot = await survivor.snapshot(Cursor())
    assert outcome.ok
    assert snapshot.book.orders[0].status is OrderStatus.FILLED
    assert attach_server.engine.oms.ready
    await survivor.stop()


@pytest.mark.asyncio
async def test_a_console_loses_the_engine_with_a_reason(attach_server: InProcess):
    client = RemoteClient(attach_server.server.path)
    await client.start()
    await attach_server.server.stop()
    with pytest.raises(AttachError, match="lost"):
        await client.snapshot(Cursor())
    await client.stop()


@pytest.mark.asyncio
async def test_no_engine_at_the_socket_is_one_sentence(sock_dir):
    with pytest.raises(AttachError, match="no engine is listening at"):
        await RemoteClient(sock_dir / "nothing.sock").start()


@pytest.mark.asyncio
async def test_the_socket_is_owner_only_in_an_owner_only_directory(attach_server: InProcess):
    path = attach_server.server.path
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_the_peer_check_names_the_user_at_the_other_end():
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()
        assert refuse_peer(left, os.getuid()) is None


def test_the_peer_check_refuses_another_user():
    left, right = socket.socketpair(socket.AF_UNIX)
    other = os.getuid() + 1
    with left, right:
        assert refuse_peer(left, other) == (
            f"user {os.getuid()} may not attach to an engine owned by user {other}"
        )


@pytest.mark.asyncio
async def test_the_server_refuses_a_peer_that_is_not_its_user(attach_server: InProcess, sock_dir):
    stranger_only = AttachServer(
        attach_server.server.client, sock_dir / "other" / "engine.sock", uid=os.getuid() + 1
    )
    await stranger_only.start()
    with pytest.raises(AttachError, match="may not attach to an engine owned by user"):
        await RemoteClient(stranger_only.path).start()
    assert stranger_only.refused == 1
    await stranger_only.stop()


@pytest.mark.asyncio
async def test_an_attached_console_sees_the_bots_and_changes_a_bots_mode(tmp_path, sock_dir):
    engine = deterministic_engine(tmp_path, **{"bots.run": ["momentum:advise:symbols=AAPL"]})
    local = LocalClient(engine, run_feed=False)
    await local.start()
    server = AttachServer(local, sock_dir / "run" / "engine.sock", health=engine.health)
    await server.start()
    client = RemoteClient(server.path)
    try:
        (bot,) = (await client.bots()).bots
        assert (bot.name, bot.mode, bot.state) == ("momentum", BotMode.ADVISE, BotState.RUNNING)
        outcome = await client.cycle_bot_mode("momentum")
        assert outcome.ok and engine.bots.view("momentum").mode is BotMode.AUTO
        refused = await client.approve_opportunity("opp-404")
        assert not refused.ok and refused.message
    finally:
        await client.stop()
        await server.stop()
        await local.stop()


@pytest.mark.asyncio
async def test_an_attached_console_reads_the_backfilled_daily_history(attach_server: InProcess):
    engine = attach_server.engine
    assert engine.backfill()
    await asyncio.to_thread(engine.history.done.wait, 60)
    client = RemoteClient(attach_server.server.path)
    try:
        bars = await client.history("AAPL")
        assert bars == engine.history.bars("AAPL") and bars[-1].timeframe == "1Day"
    finally:
        await client.stop()
