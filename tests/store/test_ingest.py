"""Ingest and verify: bad rows quarantined with file:line, gaps against the real NYSE calendar."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.core.clock import NEW_YORK, datetime_to_ns
from engine.core.errors import InputError
from engine.core.models import Bar
from engine.data.ingest import ingest_files, load_file, verify_files, verify_store

HEADER = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
GOOD = "2021-04-20,10.00,11.00,9.50,10.50,10.50,1000,0.0,1.0\n"


def _pooksoft(tmp_path, body: str):
    path = tmp_path / "DA-XYZ-T-2021-04-21.csv"
    path.write_text(HEADER + body)
    return path


def _minute_bars(day: date, count: int, symbol: str = "XYZ") -> list[Bar]:
    open_ns = datetime_to_ns(datetime.combine(day, time(9, 30), tzinfo=NEW_YORK))
    price = Decimal("10.00")
    return [
        Bar(symbol, open_ns + i * 60_000_000_000, price, price, price, price, 100, "1Min")
        for i in range(count)
    ]


def test_corrupt_pooksoft_rows_are_reported_with_their_line_numbers(store, tmp_path):
    path = _pooksoft(
        tmp_path,
        GOOD
        + "2021-04-19,10.00,9.00,9.50,10.50,10.50,1000,0.0,1.0\n"  # line 3: high below low
        + "2021-04-16,10.00,11.00,9.50,ten,10.50,1000,0.0,1.0\n"  # line 4: close not a number
        + "2021-04-15,10.00,11.00,9.50,10.50,10.50,-5,0.0,1.0\n",  # line 5: negative volume
    )
    report = ingest_files(store, [path])
    assert [row.split(": ")[0] for row in report.bad_rows] == [
        f"{path}:3",
        f"{path}:4",
        f"{path}:5",
    ]
    assert (report.rows, report.bad_count) == (1, 3)


def test_corrupt_rows_are_quarantined_with_file_line_reason_and_raw_text(store, tmp_path):
    path = _pooksoft(tmp_path, GOOD + "2021-04-19,10.00,9.00,9.50,10.50,10.50,1000,0.0,1.0\n")
    report = ingest_files(store, [path])
    [key] = report.quarantined
    text = store.fetch_object(key).decode()
    where, reason, raw = text.splitlines()[0].split("\t")
    assert (key.startswith("quarantine/"), where, raw) == (
        True,
        f"{path}:3",
        "2021-04-19,10.00,9.00,9.50,10.50,10.50,1000,0.0,1.0",
    )
    assert "must lie within low" in reason


def test_a_corrupt_lean_row_is_quarantined_with_its_zip_member_and_line(store, tmp_path):
    folder = tmp_path / "equity" / "usa" / "minute" / "xyz"
    folder.mkdir(parents=True)
    path = folder / "20131007_trade.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "20131007_xyz_minute_trade.csv",
            "34200000,100000,110000,90000,105000,10\n34260000,100000,x,90000,105000,10\n",
        )
    report = ingest_files(store, [path])
    text = store.fetch_object(report.quarantined[0]).decode()
    where, _, raw = text.splitlines()[0].split("\t")
    assert (report.rows, where, raw) == (
        1,
        f"{path}/20131007_xyz_minute_trade.csv:2",
        "34260000,100000,x,90000,105000,10",
    )


def test_a_file_of_an_unknown_format_is_one_sentence(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a file tickdeck can ingest"):
        load_file(path)


def test_a_missing_path_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ingest_files(None, [tmp_path / "nope.csv"])


def test_a_missing_session_is_a_gap_on_the_real_calendar(store, sample_data):
    spy = sample_data / "lean/Data/equity/usa/minute/spy"
    ingest_files(store, [spy / "20131004_trade.zip", spy / "20131008_trade.zip"])
    report = verify_store(store)
    assert report.gaps == ["SPY 1Min: no data for the session of 2013-10-07"]


def test_a_full_half_day_and_a_holiday_are_not_gaps(store):
    # 2013-11-28 is Thanksgiving (closed); 2013-11-29 closes at 13:00: 210 minutes.
    bars = _minute_bars(date(2013, 11, 27), 390) + _minute_bars(date(2013, 11, 29), 210)
    store.write_bars(bars, "test")
    report = verify_store(store)
    assert (report.ok, report.rows) == (True, 600)


def test_a_missing_minute_on_a_half_day_is_a_gap(store):
    bars = _minute_bars(date(2013, 11, 29), 210)
    store.write_bars(bars[:100] + bars[101:], "test")
    assert verify_store(store).gaps == [
        "XYZ 1Min: 1 of 210 1Min bars missing in the regular session of 2013-11-29 (a half day)"
    ]


def test_verify_flags_bars_whose_open_lies_outside_low_and_high(tmp_path):
    path = tmp_path / "bars.parquet"
    start = datetime_to_ns(datetime(2013, 10, 7, tzinfo=NEW_YORK))
    pq.write_table(
        pa.table(
            {
                "symbol": ["XYZ", "XYZ"],
                "ts_ns": [start, start + int(timedelta(days=1).total_seconds() * 1e9)],
                "open": [10.0, 12.0],
                "high": [11.0, 11.0],
                "low": [9.0, 9.0],
                "close": [10.5, 10.5],
                "volume": [100, 100],
            }
        ),
        path,
    )
    report = verify_files([path], timeframe="1Day")
    assert [row.split(": ")[0] for row in report.bad_rows] == [f"{path}:row 2"]


def test_a_parquet_file_round_trips_its_float_prices_to_exact_decimals(store, tmp_path):
    path = tmp_path / "xyz.parquet"
    start = datetime_to_ns(datetime(2013, 10, 7, tzinfo=NEW_YORK))
    pq.write_table(
        pa.table(
            {
                "ts_ns": [start],
                "open": [187.5],
                "high": [188.25],
                "low": [187.01],
                "close": [188.0],
                "volume": [5],
            }
        ),
        path,
    )
    ingest_files(store, [path], symbol="xyz", timeframe="1day")
    [bar] = store.read_bars("XYZ", "1Day", date(2013, 10, 7), date(2013, 10, 7))
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("187.5"),
        Decimal("188.25"),
        Decimal("187.01"),
        Decimal("188"),
    )


def test_pooksoft_prices_before_a_split_are_divided_by_it_and_volumes_multiplied(tmp_path):
    csv_text = (
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2020-08-27,508.57,509.94,495.33,500.04,124.6,38888096,0.0,1.0\n"
        "2020-08-28,504.05,505.77,498.31,499.23,124.4,46907479,0.0,1.0\n"
        "2020-08-31,127.58,131.0,126.0,129.04,128.6,223505733,0.0,4.0\n"
    )
    path = tmp_path / "DA-AAPL-T-2021-04-21.csv"
    path.write_text(csv_text)
    first, second, after = next(iter(load_file(path).series.values()))
    assert (first.open, first.close, first.volume) == (
        Decimal("127.1425"),
        Decimal("125.01"),
        155_552_384,
    )
    assert (second.high, second.low) == (Decimal("126.4425"), Decimal("124.5775"))
    assert (after.open, after.close, after.volume) == (
        Decimal("127.58"),
        Decimal("129.04"),
        223_505_733,
    )
