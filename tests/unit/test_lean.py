"""Lean readers: exact values from real files, and bad input reported with file and line."""

from __future__ import annotations

import os
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.errors import InputError
from engine.core.models import Bar, Quote, Trade
from engine.data.lean import (
    ReadReport,
    available_days,
    lean_path,
    read_daily_bars,
    read_factor_file,
    read_minute_quotes,
    read_minute_trades,
    read_tick_quotes,
    read_tick_trades,
    split_factor_on,
)
from engine.data.nbbo import BookSide, VenueQuote

SAMPLE_DATA = Path(
    os.environ.get(
        "TICKDECK_SAMPLE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
LEAN_ROOT = SAMPLE_DATA / "lean" / "Data"
OCT_7 = date(2013, 10, 7)


@pytest.fixture
def lean_root() -> Path:
    if not (LEAN_ROOT / "equity" / "usa").is_dir():
        pytest.skip(f"Lean sample data not found at {LEAN_ROOT} (set TICKDECK_SAMPLE_DATA)")
    return LEAN_ROOT


def utc_ns(*parts: int) -> int:
    """ns since the epoch of a UTC wall time (year, month, day, hour, minute, second, µs)."""
    moment = datetime(*parts, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def write_lean_zip(root: Path, resolution: str, symbol: str, name: str, lines: list[str]) -> Path:
    """A Lean-layout zip holding one CSV of ``lines``, as Lean writes them."""
    folder = root / "equity" / "usa" / resolution / symbol
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}_{symbol}_{resolution}.csv", "\n".join(lines) + "\n")
    return path


# -- locating files -------------------------------------------------------------------------


def test_lean_path_follows_the_lean_layout(tmp_path: Path) -> None:
    path = lean_path(tmp_path, "minute", "SPY", OCT_7, "trade")
    assert path == tmp_path / "equity" / "usa" / "minute" / "spy" / "20131007_trade.zip"


def test_an_unknown_resolution_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown resolution 'second'"):
        lean_path(tmp_path, "second", "SPY", OCT_7, "trade")


def test_available_days_lists_each_symbol_and_day_once(lean_root: Path) -> None:
    assert available_days(lean_root, "tick") == [("BAC", OCT_7), ("IBM", OCT_7)]
    minute = available_days(lean_root, "minute")
    assert [day for symbol, day in minute if symbol == "SPY"] == [
        date(2013, 10, 4),
        OCT_7,
        date(2013, 10, 8),
    ]


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "spy" / "20131007_trade.zip"
    with pytest.raises(InputError) as caught:
        read_minute_trades(missing)
    assert str(caught.value) == f"no Lean data file at {missing}."


# -- minute files ---------------------------------------------------------------------------


def test_minute_trade_row_becomes_an_exact_bar_at_its_start(lean_root: Path) -> None:
    # 14400000,1674100,1674100,1672500,1672700,3197 -> 04:00 EDT is 08:00 UTC.
    path = lean_path(lean_root, "minute", "SPY", OCT_7, "trade")
    first = next(read_minute_trades(path))
    assert first == Bar(
        "SPY",
        utc_ns(2013, 10, 7, 8, 0),
        Decimal("167.41"),
        Decimal("167.41"),
        Decimal("167.25"),
        Decimal("167.27"),
        3197,
        "1Min",
    )


def test_minute_quote_is_the_closing_bid_and_ask_stamped_at_the_minute_end(
    lean_root: Path,
) -> None:
    # 14400000,1672700,1672700,1671500,1672500,300,1680000,1680000,1672600,1672700,20000
    path = lean_path(lean_root, "minute", "SPY", OCT_7, "quote")
    first = next(read_minute_quotes(path))
    assert first == Quote(
        "SPY",
        utc_ns(2013, 10, 7, 8, 1) - 1,
        Decimal("167.25"),
        300,
        Decimal("167.27"),
        20000,
    )


def test_a_quote_bar_side_with_empty_fields_has_no_quote(lean_root: Path) -> None:
    # 14400000,,,,,0,704900,704900,704900,704900,500
    path = lean_path(lean_root, "minute", "TWX", date(2014, 6, 9), "quote")
    first = next(read_minute_quotes(path))
    assert (first.bid, first.bid_size, first.ask, first.ask_size) == (
        Decimal(0),
        0,
        Decimal("70.49"),
        500,
    )


def test_times_on_a_daylight_saving_day_are_wall_times(tmp_path: Path) -> None:
    # 2013-11-03: 01:00 is still EDT (UTC-4), 04:00 is EST (UTC-5).
    path = write_lean_zip(
        tmp_path,
        "minute",
        "spy",
        "20131103_trade",
        ["3600000,1000000,1000000,1000000,1000000,1", "14400000,1000000,1000000,1000000,1000000,1"],
    )
    assert [bar.ts_ns for bar in read_minute_trades(path)] == [
        utc_ns(2013, 11, 3, 5, 0),
        utc_ns(2013, 11, 3, 9, 0),
    ]


def test_corrupt_minute_rows_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    path = write_lean_zip(
        tmp_path,
        "minute",
        "spy",
        "20131007_trade",
        [
            "34200000,1000000,1010000,990000,1000000,100",
            "34260000,1000000,1010000,990000,1000000",
            "34320000,1000000,abc,990000,1000000,100",
            "34380000,1000000,980000,990000,990000,100",
            "34440000,1000000,1010000,990000,1000000,-5",
            "34000000,1000000,1010000,990000,1000000,100",
            "34560000,1010000,1020000,1000000,1020000,200",
        ],
    )
    report = ReadReport()
    bars = list(read_minute_trades(path, report=report))
    where = f"{path}/20131007_trade_spy_minute.csv"
    assert [bar.volume for bar in bars] == [100, 200]
    assert report.rows == 7
    assert report.bad_count == 5
    assert report.bad_rows == [
        f"{where}:2: expected 6 fields, got 5",
        f"{where}:3: price 'abc' is not a whole number of 1/10,000 dollar",
        f"{where}:4: high 98.0000 is below low 99.0000",
        f"{where}:5: volume -5 is negative",
        f"{where}:6: time 34000000 ms goes back before the previous row's 34200000 ms",
    ]


def test_a_file_that_is_not_a_zip_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "spy" / "20131007_trade.zip"
    path.parent.mkdir()
    path.write_bytes(b"this is not a zip archive")
    report = ReadReport()
    assert list(read_minute_trades(path, report=report)) == []
    assert report.bad_count == 1
    assert report.errors[0].where == str(path)


def test_a_csv_that_is_not_text_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "spy" / "20131007_trade.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("20131007_spy_minute_trade.csv", b"34200000,\xff\xfe\x00\n")
    report = ReadReport()
    assert list(read_minute_trades(path, report=report)) == []
    assert report.bad_rows[0].startswith(f"{path}/20131007_spy_minute_trade.csv:1: unreadable")


# -- tick files -----------------------------------------------------------------------------


def test_tick_trade_row_becomes_an_exact_trade(lean_root: Path) -> None:
    # 14430270,1815200,283,P,20002020,0: 14,430,270 ms is 04:00:30.270 EDT, 08:00:30.270 UTC.
    path = lean_path(lean_root, "tick", "IBM", OCT_7, "trade")
    first = next(read_tick_trades(path))
    assert first == Trade(
        "IBM", utc_ns(2013, 10, 7, 8, 0, 30, 270_000), Decimal("181.52"), 283, "P"
    )


def test_suspicious_tick_trades_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write_lean_zip(
        tmp_path,
        "tick",
        "ibm",
        "20131007_trade",
        [
            "34200000,1815200,100,P,2000,0",
            "34200001,9999900,100,D,2000,1",
            "34200002,1815300,50,N,0,0",
        ],
    )
    report = ReadReport()
    trades = list(read_tick_trades(path, report=report))
    assert [trade.price for trade in trades] == [Decimal("181.52"), Decimal("181.53")]
    assert (report.rows, report.suspicious, report.bad_count) == (3, 1, 0)


def test_a_suspicious_rows_time_still_bars_a_later_row_from_going_back(tmp_path: Path) -> None:
    rows = ["34200000,1815200,100,P,2000,0", "34200005,9999900,100,D,2000,1"]
    path = write_lean_zip(
        tmp_path, "tick", "ibm", "20131007_trade", [*rows, "34200002,1815300,50,N,0,0"]
    )
    report = ReadReport()
    assert [trade.price for trade in read_tick_trades(path, report=report)] == [Decimal("181.52")]
    assert report.bad_rows == [
        f"{path}/20131007_trade_ibm_tick.csv:3: "
        "time 34200002 ms goes back before the previous row's 34200005 ms"
    ]


def test_tick_quote_row_yields_only_its_quoted_side(lean_root: Path) -> None:
    # 14400054,0,0,1836300,100,Q,1,0
    path = lean_path(lean_root, "tick", "IBM", OCT_7, "quote")
    first = next(read_tick_quotes(path))
    assert first == VenueQuote(
        "IBM", utc_ns(2013, 10, 7, 8, 0, 0, 54_000), "Q", BookSide.ASK, Decimal("183.63"), 100
    )


def test_a_two_sided_tick_quote_row_yields_bid_then_ask(tmp_path: Path) -> None:
    path = write_lean_zip(
        tmp_path, "tick", "ibm", "20131007_quote", ["34200000,1815000,200,1815500,300,N,1,0"]
    )
    sides = [(q.side, q.price, q.size) for q in read_tick_quotes(path)]
    assert sides == [
        (BookSide.BID, Decimal("181.50"), 200),
        (BookSide.ASK, Decimal("181.55"), 300),
    ]


def test_a_tick_quote_row_with_neither_side_clears_both(tmp_path: Path) -> None:
    path = write_lean_zip(tmp_path, "tick", "ibm", "20131007_quote", ["34200000,0,0,,,N,1,0"])
    sides = [(q.side, q.price, q.size) for q in read_tick_quotes(path)]
    assert sides == [(BookSide.BID, Decimal(0), 0), (BookSide.ASK, Decimal(0), 0)]


def test_a_bad_suspicious_flag_is_a_bad_row(tmp_path: Path) -> None:
    path = write_lean_zip(
        tmp_path, "tick", "ibm", "20131007_quote", ["34200000,1815000,200,0,0,N,1,maybe"]
    )
    report = ReadReport()
    assert list(read_tick_quotes(path, report=report)) == []
    assert report.bad_rows == [
        f"{path}/20131007_quote_ibm_tick.csv:1: suspicious flag 'maybe' is neither 0 nor 1"
    ]


# -- daily bars and factors -----------------------------------------------------------------


def test_daily_row_becomes_a_day_bar_at_new_york_midnight(lean_root: Path) -> None:
    # 20131004 00:00,1677400,1690600,1675300,1688900,84960871
    bars = read_daily_bars(lean_root / "equity" / "usa" / "daily" / "spy.zip")
    oct_4 = next(bar for bar in bars if bar.ts_ns == utc_ns(2013, 10, 4, 4, 0))
    assert (oct_4.symbol, oct_4.close, oct_4.volume, oct_4.timeframe) == (
        "SPY",
        Decimal("168.89"),
        84960871,
        "1Day",
    )


def test_split_factor_applies_up_to_its_row_date(lean_root: Path) -> None:
    # 20140606,0.9011818,0.03571430,645.57 then 20140806,0.9011818,0.25,94.97 (the 7:1 split).
    factors = read_factor_file(lean_root / "equity" / "usa" / "factor_files" / "aapl.csv")
    assert split_factor_on(factors, date(2014, 6, 6)) == Decimal("0.03571430")
    assert split_factor_on(factors, date(2014, 6, 9)) == Decimal("0.25")
