"""ReplaySource: real Lean days replayed in time order, checked against the files read directly."""

from __future__ import annotations

import csv
import io
import itertools
import os
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.core.errors import InputError
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar, Instrument, Quote, Trade
from engine.data.replay import ReplayReport, ReplaySource, open_replay, release_ns

SAMPLE_DATA = Path(
    os.environ.get(
        "TICKDECK_SAMPLE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
LEAN_ROOT = SAMPLE_DATA / "lean" / "Data"
NEW_YORK = ZoneInfo("America/New_York")
OCT_4, OCT_7 = date(2013, 10, 4), date(2013, 10, 7)
JUN_6, JUN_9 = date(2014, 6, 6), date(2014, 6, 9)
OPEN_MS, CLOSE_MS = 34_200_000, 57_600_000  # 09:30 and 16:00 in ms since midnight
MINUTE_NS = 60_000_000_000


@pytest.fixture(scope="module")
def lean_root() -> Path:
    if not (LEAN_ROOT / "equity" / "usa").is_dir():
        pytest.skip(f"Lean sample data not found at {LEAN_ROOT} (set TICKDECK_SAMPLE_DATA)")
    return LEAN_ROOT


def ns_at(day: date, ms: int) -> int:
    """ns since the epoch of ``ms`` after New York midnight of ``day``."""
    local = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK) + timedelta(milliseconds=ms)
    return round((local - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1_000


def csv_rows(path: Path) -> list[list[str]]:
    with zipfile.ZipFile(path) as archive:
        text = io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="ascii")
        return list(csv.reader(text))


def price(text: str) -> Decimal:
    return Decimal(int(text)) / 10000


def minute_file(root: Path, symbol: str, day: date, kind: str) -> Path:
    return root / "equity" / "usa" / "minute" / symbol.lower() / f"{day:%Y%m%d}_{kind}.zip"


def tick_file(root: Path, symbol: str, day: date, kind: str) -> Path:
    return root / "equity" / "usa" / "tick" / symbol.lower() / f"{day:%Y%m%d}_{kind}.zip"


def daily_row(root: Path, symbol: str, day: date) -> list[str]:
    rows = csv_rows(root / "equity" / "usa" / "daily" / f"{symbol.lower()}.zip")
    return next(row for row in rows if row[0].startswith(f"{day:%Y%m%d}"))


def bars_of(events: list) -> list[Bar]:
    return [event for event in events if isinstance(event, Bar)]


# -- one minute day -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spy_day(lean_root: Path) -> list:
    return list(ReplaySource(lean_root, ["SPY"], [OCT_7]))


def test_a_full_session_replays_390_bars(spy_day: list) -> None:
    assert len(bars_of(spy_day)) == 390


def test_session_ohlcv_matches_the_minute_file(lean_root: Path, spy_day: list) -> None:
    rows = [
        row
        for row in csv_rows(minute_file(lean_root, "SPY", OCT_7, "trade"))
        if OPEN_MS <= int(row[0]) < CLOSE_MS
    ]
    bars = bars_of(spy_day)
    assert bars[0].open == price(rows[0][1])
    assert max(bar.high for bar in bars) == max(price(row[2]) for row in rows)
    assert min(bar.low for bar in bars) == min(price(row[3]) for row in rows)
    assert bars[-1].close == price(rows[-1][4])
    assert sum(bar.volume for bar in bars) == sum(int(row[5]) for row in rows)


def test_session_ohlcv_matches_lean_daily_bar(lean_root: Path, spy_day: list) -> None:
    # 20131007 00:00,1674300,1684500,1672500,1674200,81489219
    bars = bars_of(spy_day)
    _, open_, high, low, close, volume = daily_row(lean_root, "SPY", OCT_7)
    assert (bars[0].open, max(b.high for b in bars), min(b.low for b in bars)) == (
        price(open_),
        price(high),
        price(low),
    )
    assert (bars[-1].close, sum(b.volume for b in bars)) == (price(close), int(volume))


def test_the_day_is_framed_by_session_open_and_close(spy_day: list) -> None:
    assert spy_day[0] == SessionEvent(ns_at(OCT_7, OPEN_MS), SessionPhase.OPEN, "2013-10-07")
    assert spy_day[-1] == SessionEvent(ns_at(OCT_7, CLOSE_MS), SessionPhase.CLOSE, "2013-10-07")


def test_each_minute_gives_its_quote_then_its_bar(spy_day: list) -> None:
    data = spy_day[1:-1]
    quotes, bars = data[0::2], data[1::2]
    assert all(isinstance(q, Quote) for q in quotes) and all(isinstance(b, Bar) for b in bars)
    assert all(q.ts_ns == b.ts_ns + MINUTE_NS - 1 for q, b in zip(quotes, bars, strict=True))


def test_the_first_quote_is_the_first_session_quote_bar_close(
    lean_root: Path, spy_day: list
) -> None:
    row = next(
        row
        for row in csv_rows(minute_file(lean_root, "SPY", OCT_7, "quote"))
        if int(row[0]) == OPEN_MS
    )
    expected = Quote(
        "SPY",
        ns_at(OCT_7, OPEN_MS + 60_000) - 1,
        price(row[4]),
        int(row[5]),
        price(row[9]),
        int(row[10]),
    )
    assert spy_day[1] == expected


def test_release_times_never_go_back(lean_root: Path) -> None:
    times = [released for released, _ in ReplaySource(lean_root, ["SPY"], [OCT_7]).timed()]
    assert times == sorted(times)


def test_a_bar_is_released_at_its_end() -> None:
    bar = Bar("SPY", 1_000, Decimal(1), Decimal(1), Decimal(1), Decimal(1), 1)
    assert release_ns(bar) == 1_000 + MINUTE_NS


def test_start_ns_is_the_first_open(lean_root: Path) -> None:
    assert ReplaySource(lean_root, ["SPY"], [OCT_7]).start_ns == ns_at(OCT_7, OPEN_MS)


def test_asking_start_ns_loses_no_event(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["SPY"], [OCT_7])
    assert source.start_ns == ns_at(OCT_7, OPEN_MS)
    first = next(source)
    assert isinstance(first, SessionEvent) and first.phase is SessionPhase.OPEN


def test_without_session_only_every_row_is_replayed(lean_root: Path) -> None:
    events = list(ReplaySource(lean_root, ["SPY"], [OCT_7], session_only=False))
    trade_rows = csv_rows(minute_file(lean_root, "SPY", OCT_7, "trade"))
    quote_rows = csv_rows(minute_file(lean_root, "SPY", OCT_7, "quote"))
    assert len(bars_of(events)) == len(trade_rows)
    assert sum(isinstance(event, Quote) for event in events) == len(quote_rows)


# -- several symbols and days ---------------------------------------------------------------


def test_several_symbols_and_days_merge_in_release_order(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["spy", "ibm"], [OCT_4, OCT_7])
    timed = list(source.timed())
    times = [released for released, _ in timed]
    assert times == sorted(times)
    assert all(released == release_ns(event) for released, event in timed)
    sessions = [event for _, event in timed if isinstance(event, SessionEvent)]
    assert [(s.session_date, s.phase) for s in sessions] == [
        ("2013-10-04", SessionPhase.OPEN),
        ("2013-10-04", SessionPhase.CLOSE),
        ("2013-10-07", SessionPhase.OPEN),
        ("2013-10-07", SessionPhase.CLOSE),
    ]


def test_merged_days_keep_every_session_bar(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["SPY", "IBM"], [OCT_4, OCT_7])
    expected = {
        symbol: sum(
            OPEN_MS <= int(row[0]) < CLOSE_MS
            for day in (OCT_4, OCT_7)
            for row in csv_rows(minute_file(lean_root, symbol, day, "trade"))
        )
        for symbol in ("SPY", "IBM")
    }
    counts = {symbol: 0 for symbol in expected}
    for event in source:
        if isinstance(event, Bar):
            counts[event.symbol] += 1
    assert counts == expected  # IBM has no trade in one minute of 2013-10-04: 389 bars


def test_symbols_and_dates_are_what_was_found(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["spy", "ibm"], [OCT_4, OCT_7])
    assert (source.symbols, source.dates) == (["IBM", "SPY"], [OCT_4, OCT_7])


def test_a_requested_day_without_data_is_reported(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["SPY", "AAPL"], [OCT_7, JUN_9])
    assert source.report.missing == [
        "there is no minute data for AAPL on 2013-10-07.",
        "there is no minute data for SPY on 2014-06-09.",
    ]


def test_an_unknown_symbol_is_an_input_error(lean_root: Path) -> None:
    with pytest.raises(InputError, match="there is no minute data for MSFT under"):
        ReplaySource(lean_root, ["MSFT"])


# -- the AAPL 7:1 split ---------------------------------------------------------------------


def test_prices_either_side_of_the_split_are_raw(lean_root: Path) -> None:
    bars = bars_of(list(ReplaySource(lean_root, ["AAPL"], [JUN_6, JUN_9])))
    before = [bar for bar in bars if bar.ts_ns < ns_at(JUN_9, 0)]
    after = [bar for bar in bars if bar.ts_ns >= ns_at(JUN_9, 0)]
    assert before[-1].close == price(daily_row(lean_root, "AAPL", JUN_6)[4])  # 645.57
    _, open_, high, low, close, volume = daily_row(lean_root, "AAPL", JUN_9)
    assert (after[0].open, after[-1].close) == (price(open_), price(close))  # 92.69, 93.70
    assert (max(b.high for b in after), min(b.low for b in after)) == (price(high), price(low))
    assert sum(b.volume for b in after) == int(volume)


def test_the_split_day_reference_is_the_split_adjusted_previous_close(lean_root: Path) -> None:
    # 645.57 x 0.0357143 / 0.25 = 92.22432..., to the sub-penny.
    assert ReplaySource(lean_root, ["AAPL"], [JUN_9]).references() == {"AAPL": Decimal("92.2243")}


def test_the_reference_is_the_previous_daily_close(lean_root: Path) -> None:
    assert ReplaySource(lean_root, ["SPY"], [OCT_7]).references() == {"SPY": Decimal("168.89")}


def test_without_history_the_reference_is_the_first_session_open(lean_root: Path) -> None:
    # TWX has no daily file and no minute day before 2014-06-05: 34200000,706600,...
    source = ReplaySource(lean_root, ["TWX"], [date(2014, 6, 5)])
    assert source.references() == {"TWX": Decimal("70.66")}


def test_instruments_are_tradable_shortable_whole_shares(lean_root: Path) -> None:
    source = ReplaySource(lean_root, ["SPY"], [OCT_7])
    assert source.instruments() == {
        "SPY": Instrument("SPY", tradable=True, shortable=True, fractionable=False)
    }


# -- a tick day -----------------------------------------------------------------------------


@dataclass(slots=True)
class TickDay:
    events: list
    report: ReplayReport


@pytest.fixture(scope="module")
def ibm_ticks(lean_root: Path) -> TickDay:
    source = ReplaySource(lean_root, ["IBM"], [OCT_7], resolution="tick")
    return TickDay(list(source), source.report)


def expected_nbbo(path: Path) -> list[Quote]:
    """The file's last bid and ask as of each session millisecond, when they changed, and
    the NBBO in force at the open."""
    bid, ask = (Decimal(0), 0), (Decimal(0), 0)
    published: list[Quote] = []
    last = None
    rows = (row for row in csv_rows(path) if row[7] == "0")
    for ms, group in itertools.groupby(rows, key=lambda row: int(row[0])):
        if ms > CLOSE_MS:
            break
        if ms >= OPEN_MS and last is None:
            last = (bid, ask)
            published.append(Quote("IBM", ns_at(OCT_7, OPEN_MS), *bid, *ask))
        for row in group:
            if int(row[1]):
                bid = (price(row[1]), int(row[2]))
            else:
                ask = (price(row[3]), int(row[4]))
        if ms >= OPEN_MS and (bid, ask) != last:
            last = (bid, ask)
            published.append(Quote("IBM", ns_at(OCT_7, ms), *bid, *ask))
    return published


def test_tick_replay_gives_every_session_trade(lean_root: Path, ibm_ticks: TickDay) -> None:
    rows = csv_rows(tick_file(lean_root, "IBM", OCT_7, "trade"))
    expected = [
        Trade("IBM", ns_at(OCT_7, int(row[0])), price(row[1]), int(row[2]), row[3])
        for row in rows
        if OPEN_MS <= int(row[0]) <= CLOSE_MS and row[5] == "0"
    ]
    assert [event for event in ibm_ticks.events if isinstance(event, Trade)] == expected


def test_tick_replay_nbbo_is_the_file_as_of_each_millisecond(
    lean_root: Path, ibm_ticks: TickDay
) -> None:
    expected = expected_nbbo(tick_file(lean_root, "IBM", OCT_7, "quote"))
    assert [event for event in ibm_ticks.events if isinstance(event, Quote)] == expected
    assert ibm_ticks.report.nbbo_quotes == len(expected)


def test_tick_replay_is_in_time_order(ibm_ticks: TickDay) -> None:
    times = [release_ns(event) for event in ibm_ticks.events]
    assert times == sorted(times)


# -- bad input ------------------------------------------------------------------------------


def write_lean_zip(root: Path, symbol: str, name: str, lines: list[str]) -> Path:
    folder = root / "equity" / "usa" / "minute" / symbol
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", "\n".join(lines) + "\n")
    return path


def test_corrupt_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    path = write_lean_zip(
        tmp_path,
        "spy",
        "20131007_trade",
        [
            "34200000,1000000,1010000,990000,1000000,100",
            "34260000,1000000,1010000,990000",
            "34320000,1000000,1010000,990000,1000000,x",
            "34380000,1000000,1010000,990000,1000000,300",
        ],
    )
    source = ReplaySource(tmp_path, ["SPY"], [OCT_7])
    assert [bar.volume for bar in bars_of(list(source))] == [100, 300]
    where = f"{path}/20131007_trade.csv"
    assert source.report.bad_rows == [
        f"{where}:2: expected 6 fields, got 4",
        f"{where}:3: volume 'x' is not a whole number",
    ]
    assert (source.report.rows, source.report.bad_count) == (4, 2)


# -- open_replay ----------------------------------------------------------------------------


def test_open_replay_accepts_a_lean_root(lean_root: Path) -> None:
    source = open_replay(lean_root)
    assert (source.resolution, source.symbols) == (
        "minute",
        ["AAPL", "AIG", "BAC", "IBM", "SPY", "TWX"],
    )


def test_open_replay_accepts_the_folder_holding_data(lean_root: Path) -> None:
    assert open_replay(lean_root.parent, ["spy"]).symbols == ["SPY"]


def test_open_replay_accepts_one_day_zip(lean_root: Path) -> None:
    source = open_replay(tick_file(lean_root, "IBM", OCT_7, "quote"))
    assert (source.resolution, source.symbols, source.dates) == ("tick", ["IBM"], [OCT_7])


def test_open_replay_refuses_a_zip_at_another_resolution(lean_root: Path) -> None:
    with pytest.raises(InputError, match="holds tick data, not minute data"):
        open_replay(tick_file(lean_root, "IBM", OCT_7, "quote"), resolution="minute")


def test_open_replay_refuses_a_zip_outside_the_lean_layout(tmp_path: Path) -> None:
    stray = tmp_path / "20131007_trade.zip"
    stray.write_bytes(b"")
    with pytest.raises(InputError, match="is not a Lean day file"):
        open_replay(stray)


def test_open_replay_refuses_a_folder_without_lean_data(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        open_replay(tmp_path)
    assert (
        str(caught.value) == f"{tmp_path} is not a Lean data folder: it has no equity/usa inside."
    )


def test_open_replay_refuses_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_replay(tmp_path / "nowhere")
