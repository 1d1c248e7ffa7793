"""The history store against a real S3 server (moto) over HTTP: round trips, idempotence, atomicity."""

from __future__ import annotations

import csv
import io
import threading
from datetime import date
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.data.ingest import ingest_files
from engine.data.lean import read_daily_bars, read_minute_trades, read_tick_trades
from engine.data.store import Kind, Series
from engine.data.store.layout import object_key
from engine.data.store.schema import (
    bars_table,
    decode_price,
    encode_price,
    read_parquet_bytes,
    trades_from_table,
)

SPY_1007 = "lean/Data/equity/usa/minute/spy/20131007_trade.zip"
AAPL_MINUTE = "lean/Data/equity/usa/minute/aapl"
POOKSOFT_AAPL = "pooksoft_sp500/daily_adjusted/DA-AAPL-T-2021-04-21.csv"


def test_a_price_round_trips_exactly_through_its_stored_units():
    assert (encode_price(Decimal("161.059998")), decode_price(161059998)) == (
        161059998,
        Decimal("161.059998"),
    )


def test_a_price_on_the_tick_grid_reads_back_in_leans_four_place_form():
    assert str(decode_price(encode_price(Decimal("167.41")))) == "167.4100"


def test_a_price_finer_than_the_stored_unit_is_refused():
    with pytest.raises(ValueError, match="finer than 1/1,000,000"):
        encode_price(Decimal("1.0000001"))


def test_lean_minute_bars_read_back_value_for_value(store, sample_data):
    folder = sample_data / AAPL_MINUTE
    expected = [
        bar for path in sorted(folder.glob("*_trade.zip")) for bar in read_minute_trades(path)
    ]
    ingest_files(store, [folder])
    back = store.read_bars("AAPL", "1Min", date(2014, 6, 5), date(2014, 6, 9))
    assert back == expected


def test_pooksoft_daily_bars_read_back_value_for_value(store, sample_data):
    path = sample_data / POOKSOFT_AAPL
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Split-adjusted by hand: prices before a split divided by the coefficients after them,
    # to millionths, volumes multiplied (the 4:1 in 2020 and the 7:1 in 2014, ...).
    expected = []
    factor = Decimal(1)
    for row in sorted(rows, key=lambda r: r["timestamp"], reverse=True):
        prices = [
            (Decimal(row[name]) / factor).quantize(Decimal("0.000001"))
            for name in ("open", "high", "low", "close")
        ]
        volume = int((int(row["volume"]) * factor).to_integral_value())
        expected.append((date.fromisoformat(row["timestamp"]), *prices, volume))
        factor *= Decimal(row["split_coefficient"])
    expected.reverse()
    report = ingest_files(store, [path])
    back = store.read_bars("AAPL", "1Day", expected[0][0], expected[-1][0])
    got = [
        (ns_to_datetime(b.ts_ns, NEW_YORK).date(), b.open, b.high, b.low, b.close, b.volume)
        for b in back
    ]
    assert (report.bad_count, got) == (0, expected)


def test_the_source_of_stored_rows_is_read_back_with_them(store, sample_data):
    ingest_files(store, [sample_data / SPY_1007])
    frame = store.read(Series(Kind.BARS, "1Min", "SPY"), date(2013, 10, 7), date(2013, 10, 7))
    assert frame.source == "lean"


def test_reingesting_the_same_file_writes_nothing(store, sample_data):
    first = ingest_files(store, [sample_data / SPY_1007])
    etags = {p: o.etag for p, o in store.objects(Series(Kind.BARS, "1Min", "SPY")).items()}
    second = ingest_files(store, [sample_data / SPY_1007])
    after = {
        p: o.etag for p, o in store.objects(Series(Kind.BARS, "1Min", "SPY"), fresh=True).items()
    }
    assert (first.written.written, second.written.written, second.written.unchanged) == (1, 0, 1)
    assert after == etags


def test_overlapping_writes_merge_without_duplicate_rows(store, sample_data):
    bars = list(read_minute_trades(sample_data / SPY_1007))
    store.write_bars(bars[:500], "lean")
    store.write_bars(bars[300:], "lean")
    assert store.read_bars("SPY", "1Min", date(2013, 10, 7), date(2013, 10, 7)) == bars


def test_a_concurrent_reader_never_sees_a_partial_object(store, sample_data):
    bars = list(read_minute_trades(sample_data / SPY_1007))
    series = Series(Kind.BARS, "1Min", "SPY")
    key = object_key(store.prefix, series, "2013-10-07")
    small, large = bars_table(bars[:390]), bars_table(bars)
    store.write(series, small, "lean")
    done = threading.Event()
    seen: list[int] = []
    failures: list[str] = []

    def reader() -> None:
        while not done.is_set():
            try:
                table = read_parquet_bytes(store.fetch_object(key), key, Kind.BARS)
            except Exception as error:  # any partial object fails to decode: that is the failure
                failures.append(repr(error))
                return
            seen.append(table.num_rows)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(6):
            # Replacing the partition outright: the full day, then a shorter one, over and over.
            store.write(series, large if round_ % 2 == 0 else small, "lean", replace=True)
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert seen and set(seen) <= {390, len(bars)}


def test_an_object_of_another_schema_version_is_reported_not_read(store):
    series = Series(Kind.BARS, "1Min", "XYZ")
    key = object_key(store.prefix, series, "2013-10-07")
    table = bars_table([]).replace_schema_metadata({b"tickdeck.schema_version": b"99"})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    store._client.put_object(store.bucket, key, io.BytesIO(data), len(data))
    frame = store.read(series, date(2013, 10, 7), date(2013, 10, 7))
    assert (frame.rows, [error.where for error in frame.errors]) == (0, [key])
    assert "schema version 99" in str(frame.errors[0])


def test_a_second_read_is_served_from_the_local_cache(store, sample_data):
    ingest_files(store, [sample_data / SPY_1007])
    day = date(2013, 10, 7)
    first = store.read_bars("SPY", "1Min", day, day)
    hits = store.cache.hits
    second = store.read_bars("SPY", "1Min", day, day)
    assert (store.cache.hits - hits, second) == (1, first)


def test_coverage_lists_each_series_with_its_first_and_last_partition(store, sample_data):
    ingest_files(store, [sample_data / AAPL_MINUTE])
    [coverage] = [c for c in store.coverage() if c.series.timeframe == "1Min"]
    assert (coverage.series.symbol, coverage.partitions, coverage.first, coverage.last) == (
        "AAPL",
        3,
        "2014-06-05",
        "2014-06-09",
    )


def test_an_empty_table_writes_nothing(store):
    result = store.write(Series(Kind.BARS, "1Min", "SPY"), bars_table([]), "lean")
    assert (result.written, result.rows) == (0, 0)


def test_tick_trades_sharing_a_millisecond_all_read_back_in_order(store, sample_data):
    path = sample_data / "lean/Data/equity/usa/tick/ibm/20131007_trade.zip"
    expected = list(read_tick_trades(path))
    ingest_files(store, [path])
    again = ingest_files(store, [path])
    frame = store.read(Series(Kind.TRADES, "", "IBM"), date(2013, 10, 7), date(2013, 10, 7))
    assert (trades_from_table(frame.table, "IBM"), again.written.unchanged) == (expected, 1)


def test_lean_daily_bars_read_back_value_for_value(store, sample_data):
    path = sample_data / "lean/Data/equity/usa/daily/ibm.zip"
    expected = list(read_daily_bars(path))
    ingest_files(store, [path])
    first, last = (ns_to_datetime(expected[i].ts_ns, NEW_YORK).date() for i in (0, -1))
    assert store.read_bars("IBM", "1Day", first, last) == expected
