"""Replay from the history store: the same events, in the same order, as replaying the Lean files."""

from __future__ import annotations

from datetime import date

import pytest

from engine.config import Mode, load_settings
from engine.core.errors import InputError
from engine.data.ingest import ingest_files
from engine.data.replay import ReplaySource
from engine.data.store.settings import StoreSettings
from engine.data.store_replay import StoreReplaySource, open_store_replay, store_settings_for
from engine.node import Engine

DAY = date(2013, 10, 7)


def _ingest_day(store, sample_data, symbol: str) -> None:
    folder = sample_data / "lean/Data/equity/usa/minute" / symbol
    ingest_files(store, [folder / "20131007_trade.zip", folder / "20131007_quote.zip"])


def test_a_store_replay_yields_the_lean_replays_events_in_order(store, sample_data):
    _ingest_day(store, sample_data, "spy")
    _ingest_day(store, sample_data, "ibm")
    lean = ReplaySource(sample_data / "lean/Data", ["IBM", "SPY"], [DAY])
    stored = StoreReplaySource(store, ["IBM", "SPY"], [DAY])
    assert list(stored.timed()) == list(lean.timed())


def test_a_store_replay_takes_the_reference_from_the_first_regular_bar(store, sample_data):
    _ingest_day(store, sample_data, "spy")
    stored = StoreReplaySource(store, ["SPY"])
    first_open = next(
        bar.open for bar in store.read_bars("SPY", "1Min", DAY, DAY) if bar.ts_ns >= stored.start_ns
    )
    assert stored.references() == {"SPY": first_open}


def test_a_replay_engine_reads_data_store_from_the_configured_bucket(store, sample_data, tmp_path):
    _ingest_day(store, sample_data, "spy")
    s3 = store.settings
    settings = load_settings(
        env={
            "TICKDECK_S3_ENDPOINT": s3.endpoint,
            "TICKDECK_S3_BUCKET": s3.bucket,
            "TICKDECK_S3_ACCESS_KEY": s3.access_key,
            "TICKDECK_S3_SECRET_KEY": s3.secret_key,
            "TICKDECK_S3_SECURE": "false",
            "TICKDECK_S3__CACHE_DIR": str(tmp_path / "cache"),
        },
        cli={"mode": "replay", "data": "store:"},
    )
    engine = Engine(settings, start_ns=0, data_dir=tmp_path, housekeeping=False)
    assert (settings.mode, sorted(engine.instruments), engine.clock_start_ns > 0) == (
        Mode.REPLAY,
        ["SPY"],
        True,
    )


def test_s3_data_names_another_bucket_and_prefix_on_the_same_server():
    settings = StoreSettings(endpoint="127.0.0.1:9000", bucket="main")
    other = store_settings_for("s3://archive/2013/minute", settings)
    assert (other.endpoint, other.bucket, other.prefix) == (
        "127.0.0.1:9000",
        "archive",
        "2013/minute",
    )


def test_data_store_without_a_configured_store_is_one_sentence():
    with pytest.raises(InputError, match="none is configured"):
        open_store_replay("store:", StoreSettings())
