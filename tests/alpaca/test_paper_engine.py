"""The whole engine in paper mode against the local Alpaca-protocol server.

Real components end to end: the Alpaca market-data hub and trading adapter,
risk, the OMS and its journal, driven through the console seam — the server's
fills come from tickdeck's own sim venue behind Alpaca's wire protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
import pytest_asyncio

from engine.cli import sim_start_ns
from engine.client import LocalClient
from engine.config import Mode, load_settings
from engine.core.errors import InputError
from engine.node import Engine
from tests.alpaca.conftest import ALPACA_KEY_ID, ALPACA_SECRET_KEY

SYMBOLS = "AAPL,MSFT"


def paper_engine(server, tmp_path, **cli) -> Engine:
    settings = load_settings(
        env={},
        cli={
            "mode": "paper",
            "symbols": SYMBOLS,
            "alpaca.key_id": ALPACA_KEY_ID,
            "alpaca.secret_key": ALPACA_SECRET_KEY,
            "alpaca.base_url": server.base_url,
            "alpaca.data_url": server.data_url,
            "alpaca.stream_url": server.stream_url,
            **cli,
        },
    )
    return Engine(settings, start_ns=sim_start_ns("2024-03-15", date.today()), data_dir=tmp_path)


async def until(condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


async def server_qty(server, symbol: str) -> Decimal:
    positions = {p.symbol: p.qty for p in await server.venue.broker.positions()}
    return positions.get(symbol, Decimal(0))


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
async def test_a_paper_order_fills_and_positions_match_the_broker(paper):
    server, engine, client = paper
    outcome = await client.execute("buy 10 AAPL")
    assert outcome.ok, outcome.message
    await until(lambda: engine.oms.position_qty("AAPL") == 10, what="the AAPL fill")
    assert await server_qty(server, "AAPL") == 10
    assert engine.settings.mode is Mode.PAPER


@pytest.mark.asyncio
async def test_duplicated_and_reordered_trade_updates_fill_positions_exactly_once(paper):
    server, engine, client = paper
    server.faults.duplicate_trade_updates(True)
    server.faults.reorder_trade_updates(True)
    for _ in range(3):
        outcome = await client.execute("buy 7 MSFT")
        assert outcome.ok, outcome.message
        await asyncio.sleep(0.6)  # past the duplicate-order window
    await until(lambda: engine.oms.position_qty("MSFT") == 21, what="three MSFT fills")
    await asyncio.sleep(1.0)  # duplicates still in flight would show up now
    assert engine.oms.position_qty("MSFT") == 21 == await server_qty(server, "MSFT")
    fills = [f for f in engine.oms.fills() if f.symbol == "MSFT"]
    assert len({f.id for f in fills}) == len(fills)
    assert sum(f.qty for f in fills) == 21


@pytest.mark.asyncio
async def test_after_a_dropped_trade_stream_the_book_is_reconciled_with_the_broker(paper):
    server, engine, client = paper
    assert (await client.execute("buy 4 AAPL")).ok
    await until(lambda: engine.oms.position_qty("AAPL") == 4, what="the first fill")
    server.faults.drop_connections("trading")
    await until(
        lambda: any("reconciled with the broker" in a.message for a in engine.alerts),
        what="reconciliation after the reconnect",
    )
    assert (await client.execute("buy 6 AAPL")).ok
    await until(lambda: engine.oms.position_qty("AAPL") == 10, what="the fill after reconnect")
    assert await server_qty(server, "AAPL") == 10
    account = await server.venue.broker.account()
    assert engine.oms.portfolio.cash == account.cash


@pytest.mark.asyncio
async def test_orders_are_refused_while_the_book_is_being_reconciled(paper):
    _server, engine, client = paper
    reconciling = asyncio.create_task(engine.oms.reconcile())
    await asyncio.sleep(0)
    blocked = await client.execute("buy 1 AAPL")
    assert not blocked.ok and "not ready" in blocked.message
    assert engine.oms.reconciling
    await reconciling
    assert (await client.execute("buy 1 AAPL")).ok


@pytest.mark.asyncio
async def test_wrong_keys_stop_the_feed_with_one_clear_sentence(alpaca_server, tmp_path):
    engine = paper_engine(alpaca_server, tmp_path)
    alpaca_server.faults.reject_auth("data", 402)
    client = LocalClient(engine)
    await client.start()
    try:
        await until(lambda: any("402" in a.message for a in engine.alerts), what="the 402 alert")
        message = next(a.message for a in engine.alerts if "402" in a.message)
        assert message == (
            "Alpaca rejected the API keys (402 auth failed): "
            "check APCA_API_KEY_ID and APCA_API_SECRET_KEY"
        )
    finally:
        await client.stop()


def test_live_mode_is_refused_without_the_typed_confirmation(alpaca_server_factory, tmp_path):
    settings = load_settings(
        env={},
        cli={"mode": "live", "alpaca.key_id": "PK", "alpaca.secret_key": "SECRETSECRET"},
    )
    with pytest.raises(InputError, match="typed confirmation"):
        Engine(settings, start_ns=0, data_dir=tmp_path)
