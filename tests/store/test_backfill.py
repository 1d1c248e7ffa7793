"""The backfill chain: store first, gaps filled from the next source, fallback when the store is down."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from loguru import logger

from engine.cli import main, sim_start_ns
from engine.config import load_settings
from engine.data.backfill import (
    AlpacaSource,
    BackfillChain,
    BundledSource,
    StoreSource,
    YFinanceSource,
    trading_day,
)
from engine.data.ingest import ingest_files
from engine.data.store import HistoryStore, Kind, LocalCache, Series
from engine.health import Status
from engine.node import Engine
from tests.store.conftest import store_settings
from tests.store.s3server import start_s3_server

APRIL_1 = date(2021, 4, 1)
APRIL_21 = date(2021, 4, 21)


def test_the_chain_serves_from_the_store_when_it_has_every_session(store, sample_data):
    spy = sample_data / "lean/Data/equity/usa/minute/spy"
    ingest_files(store, [spy])
    chain = BackfillChain([StoreSource(store), BundledSource()], store)
    result = chain.load("SPY", "1Min", date(2013, 10, 4), date(2013, 10, 8))
    assert [(f.source, f.sessions) for f in result.frames] == [("store", 3)]
    assert (result.missing, result.notes) == ([], [])


def test_missing_days_are_filled_from_the_next_source_and_written_back(store):
    bundled = BundledSource()
    april = bundled.fetch("AAPL", "1Day", APRIL_1, APRIL_21)
    store.write_bars([bar for bar in april if trading_day(bar) != date(2021, 4, 9)], "pooksoft")
    chain = BackfillChain([StoreSource(store), bundled], store)
    result = chain.load("AAPL", "1Day", APRIL_1, APRIL_21)
    assert [(f.source, f.sessions) for f in result.frames] == [("store", 13), ("bundled", 1)]
    assert result.bars == april
    stored = store.read(store_series("AAPL"), APRIL_1, APRIL_21)
    assert (stored.rows, stored.source) == (14, "bundled+pooksoft")


def store_series(symbol: str) -> Series:
    return Series(Kind.BARS, "1Day", symbol)


def test_with_the_store_server_stopped_the_chain_falls_back_and_says_so(tmp_path):
    server = start_s3_server()
    history = HistoryStore(
        store_settings(server, "gone"), cache=LocalCache(tmp_path / "cache", 1 << 20)
    )
    history.ensure_bucket()
    server.stop()
    chain = BackfillChain([StoreSource(history), BundledSource()], history)
    result = chain.load("AAPL", "1Day", APRIL_1, APRIL_21)
    assert [(f.source, f.sessions) for f in result.frames] == [("bundled", 14)]
    assert len(result.notes) == 1
    assert result.notes[0].startswith("store: the history store at http://127.0.0.1:")
    assert result.notes[0].endswith("falling back to bundled")
    assert chain.store_down is not None


def test_the_engine_reports_a_store_outage_in_the_health_pane_and_log(tmp_path):
    server = start_s3_server()
    endpoint = server.endpoint
    server.stop()
    settings = load_settings(
        env={
            "TICKDECK_S3_ENDPOINT": endpoint,
            "TICKDECK_S3_SECURE": "false",
            "TICKDECK_S3__CACHE_DIR": str(tmp_path / "cache"),
            "TICKDECK_S3__BACKFILL_DAYS": "10",
        },
        cli={"symbols": "AAPL,MSFT", "venue.latency_ms": 0},
    )
    engine = Engine(
        settings,
        start_ns=sim_start_ns("2021-04-21", date(2021, 4, 21)),
        data_dir=tmp_path,
        housekeeping=False,
    )
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")

    async def scenario():
        await engine.start()
        try:
            assert engine.backfill() is True
            assert await asyncio.to_thread(engine.history.done.wait, 60)
            await asyncio.sleep(0)  # let the worker's posted health report run on the loop
            return {c.name: c for c in engine.health.snapshot().components}["history"]
        finally:
            await engine.stop(cancel_open=True)

    try:
        history = asyncio.run(scenario())
    finally:
        logger.remove(sink)
    assert history.status is Status.DEGRADED
    assert history.detail.startswith("store down, fell back: ")
    assert "(bundled 2)" in history.detail
    assert any("falling back to bundled" in line for line in lines)
    assert [len(engine.history.bars(s)) > 0 for s in ("AAPL", "MSFT")] == [True, True]


def test_a_sim_engine_without_a_store_backfills_from_the_bundled_sample(tmp_path):
    settings = load_settings(env={}, cli={"symbols": "KO", "venue.latency_ms": 0})
    engine = Engine(
        settings,
        start_ns=sim_start_ns("2024-03-15", date(2024, 3, 15)),
        data_dir=tmp_path,
        housekeeping=False,
    )

    async def scenario():
        await engine.start()
        try:
            engine.backfill()
            await asyncio.to_thread(engine.history.done.wait, 60)
            await asyncio.sleep(0)
            return {c.name: c for c in engine.health.snapshot().components}["history"]
        finally:
            await engine.stop(cancel_open=True)

    history = asyncio.run(scenario())
    bars = engine.history.bars("KO")
    # 30 days up to the sample's last day, 2021-04-21: the sessions from 2021-03-22 on.
    assert (history.status, trading_day(bars[0]), trading_day(bars[-1]), len(bars)) == (
        Status.OK,
        date(2021, 3, 22),
        APRIL_21,
        22,
    )


@pytest.mark.asyncio
async def test_alpaca_historical_bars_come_back_exact_from_the_local_server(
    alpaca_server_factory,
):
    server = await alpaca_server_factory(speed=600)
    while not server.venue.bars.get("AAPL"):
        await asyncio.sleep(0.05)
    recorded = [r.bar for r in server.venue.bars["AAPL"]]
    day = trading_day(recorded[0])
    source = AlpacaSource(server.data_url, "PKTEST", "SECRET")
    fetched = await asyncio.to_thread(source.fetch, "AAPL", "1Min", day, day)
    assert fetched[: len(recorded)] == recorded


def test_yfinance_unavailable_offline_or_uninstalled_falls_back_to_the_sample():
    chain = BackfillChain([YFinanceSource(), BundledSource()])
    result = chain.load("KO", "1Day", APRIL_1, APRIL_21)
    assert [(f.source, f.sessions) for f in result.frames] == [("bundled", 14)]
    assert result.notes[0].startswith("yfinance: ")
    assert result.notes[0].endswith("falling back to bundled")


@pytest.mark.asyncio
async def test_data_ingest_from_alpaca_stores_the_servers_bars(
    alpaca_server_factory, s3_server, tmp_path, monkeypatch
):
    server = await alpaca_server_factory(speed=600)
    while len(server.venue.bars.get("MSFT", ())) < 3:
        await asyncio.sleep(0.05)
    recorded = [r.bar for r in server.venue.bars["MSFT"]][:3]
    day = trading_day(recorded[0]).isoformat()
    settings = store_settings(server=s3_server, bucket="from-alpaca")
    for name, value in {
        "TICKDECK_S3_ENDPOINT": settings.endpoint,
        "TICKDECK_S3_BUCKET": settings.bucket,
        "TICKDECK_S3_ACCESS_KEY": settings.access_key,
        "TICKDECK_S3_SECRET_KEY": settings.secret_key,
        "TICKDECK_S3_SECURE": "false",
        "TICKDECK_S3__CACHE_DIR": str(tmp_path / "cache"),
        "TICKDECK_LOG__DIR": str(tmp_path / "logs"),
        "APCA_API_KEY_ID": "PKTEST",
        "APCA_API_SECRET_KEY": "SECRET",
        "APCA_API_DATA_URL": server.data_url,
    }.items():
        monkeypatch.setenv(name, value)
    argv = ["data", "ingest", "--from", "alpaca", "--symbols", "MSFT", "--timeframe", "1Min"]
    status = await asyncio.to_thread(main, [*argv, "--start", day, "--end", day])
    store = HistoryStore(settings, cache=LocalCache(tmp_path / "read", 1 << 24))
    stored = await asyncio.to_thread(
        store.read_bars, "MSFT", "1Min", *(trading_day(recorded[0]),) * 2
    )
    store.close()
    assert (status, stored[:3]) == (0, recorded)
