"""NbboBuilder: venue books in, NBBO out, checked by hand and against a brute-force rebuild."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.core.models import Quote
from engine.data.lean import ReadReport, lean_path, read_tick_quotes
from engine.data.nbbo import BookSide, NbboBuilder

SAMPLE_DATA = Path(
    os.environ.get(
        "TICKDECK_SAMPLE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
LEAN_ROOT = SAMPLE_DATA / "lean" / "Data"
OCT_7 = date(2013, 10, 7)
BID, ASK = BookSide.BID, BookSide.ASK


def d(text: str) -> Decimal:
    return Decimal(text)


# -- hand-made books ------------------------------------------------------------------------


def test_first_bid_makes_a_one_sided_nbbo() -> None:
    builder = NbboBuilder()
    assert builder.update("IBM", 1, "N", BID, d("181.50"), 200) == Quote(
        "IBM", 1, d("181.50"), 200, d(0), 0
    )


def test_venues_at_the_best_price_add_their_sizes() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    builder.update("IBM", 2, "P", BID, d("181.49"), 900)
    quote = builder.update("IBM", 3, "Q", BID, d("181.50"), 300)
    assert quote is not None
    assert (quote.bid, quote.bid_size) == (d("181.50"), 500)


def test_lowest_ask_across_venues_is_the_offer() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", ASK, d("181.55"), 100)
    quote = builder.update("IBM", 2, "P", ASK, d("181.53"), 400)
    assert quote is not None
    assert (quote.ask, quote.ask_size) == (d("181.53"), 400)


def test_the_best_venue_backing_off_exposes_the_next_level() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    builder.update("IBM", 2, "P", BID, d("181.48"), 900)
    builder.update("IBM", 3, "Q", BID, d("181.48"), 100)
    quote = builder.update("IBM", 4, "N", BID, d("181.40"), 200)
    assert quote is not None
    assert (quote.bid, quote.bid_size) == (d("181.48"), 1000)


def test_size_zero_clears_that_venue_side() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", ASK, d("181.55"), 100)
    builder.update("IBM", 2, "P", ASK, d("181.60"), 300)
    quote = builder.update("IBM", 3, "N", ASK, d("181.55"), 0)
    assert quote is not None
    assert (quote.ask, quote.ask_size) == (d("181.60"), 300)


def test_price_zero_on_the_last_venue_empties_the_side() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    quote = builder.update("IBM", 2, "N", BID, d(0), 0)
    assert quote == Quote("IBM", 2, d(0), 0, d(0), 0)


def test_an_update_that_leaves_the_nbbo_unchanged_returns_none() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    assert builder.update("IBM", 2, "P", BID, d("181.40"), 500) is None
    assert builder.update("IBM", 3, "N", BID, d("181.50"), 200) is None
    assert (builder.updates, builder.changes) == (3, 1)


def test_symbols_have_separate_books() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    quote = builder.update("BAC", 2, "N", BID, d("14.05"), 1000)
    assert quote == Quote("BAC", 2, d("14.05"), 1000, d(0), 0)


def test_a_crossed_nbbo_is_published_and_counted() -> None:
    builder = NbboBuilder()
    builder.update("IBM", 1, "N", BID, d("181.50"), 200)
    locked = builder.update("IBM", 2, "P", ASK, d("181.50"), 100)
    crossed = builder.update("IBM", 3, "Q", ASK, d("181.45"), 100)
    assert locked is not None and crossed is not None
    assert (crossed.bid, crossed.ask) == (d("181.50"), d("181.45"))
    assert (builder.locked, builder.crossed) == (1, 1)


def test_nbbo_is_none_before_any_venue_quotes() -> None:
    assert NbboBuilder().nbbo("IBM", 5) is None


# -- IBM 2013-10-07, every venue update -----------------------------------------------------


@dataclass(slots=True, frozen=True)
class RawUpdate:
    ts_ns: int
    venue: str
    side: BookSide
    price: Decimal
    size: int


def ts_of(ms: int) -> int:
    local = datetime(2013, 10, 7, tzinfo=ZoneInfo("America/New_York")) + timedelta(milliseconds=ms)
    return round((local - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1_000


def raw_updates(path: Path) -> list[RawUpdate]:
    """The file read with zipfile and csv alone: one side per row, suspicious rows dropped."""
    updates = []
    with zipfile.ZipFile(path) as archive:
        text = io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="ascii")
        for ms, bid, bid_size, ask, ask_size, venue, _, suspicious in csv.reader(text):
            if suspicious == "1":
                continue
            if int(bid):
                updates.append(
                    RawUpdate(ts_of(int(ms)), venue, BID, Decimal(int(bid)) / 10000, int(bid_size))
                )
            else:
                updates.append(
                    RawUpdate(ts_of(int(ms)), venue, ASK, Decimal(int(ask)) / 10000, int(ask_size))
                )
    return updates


def brute_force_nbbo(updates: list[RawUpdate]) -> list[tuple[int, Decimal, int, Decimal, int]]:
    """After every update, rebuild the NBBO from scratch over all venues; keep the changes."""
    bids: dict[str, tuple[Decimal, int]] = {}
    asks: dict[str, tuple[Decimal, int]] = {}
    changes = []
    previous = (Decimal(0), 0, Decimal(0), 0)
    for update in updates:
        book = bids if update.side is BID else asks
        if update.price and update.size:
            book[update.venue] = (update.price, update.size)
        else:
            book.pop(update.venue, None)
        best_bid = max((price for price, _ in bids.values()), default=Decimal(0))
        best_ask = min((price for price, _ in asks.values()), default=Decimal(0))
        state = (
            best_bid,
            sum(size for price, size in bids.values() if price == best_bid),
            best_ask,
            sum(size for price, size in asks.values() if price == best_ask),
        )
        if state != previous:
            changes.append((update.ts_ns, *state))
            previous = state
    return changes


@dataclass(slots=True)
class IbmRun:
    builder: NbboBuilder
    report: ReadReport
    quotes: list[Quote]
    expected: list[tuple[int, Decimal, int, Decimal, int]]


@pytest.fixture(scope="module")
def ibm_run() -> IbmRun:
    path = lean_path(LEAN_ROOT, "tick", "IBM", OCT_7, "quote")
    if not path.is_file():
        pytest.skip(f"Lean IBM tick quotes not found at {path} (set TICKDECK_SAMPLE_DATA)")
    builder, report = NbboBuilder(), ReadReport()
    quotes = [
        quote
        for update in read_tick_quotes(path, report=report)
        if (quote := builder.apply(update)) is not None
    ]
    return IbmRun(builder, report, quotes, brute_force_nbbo(raw_updates(path)))


def test_ibm_first_updates_match_hand_computed_nbbo(ibm_run: IbmRun) -> None:
    # Q asks 183.63x100; P bids 180.01x300; P asks 181.80x3000; P bids 181.24x200;
    # P asks 181.80x3000 again (no change); P bids 181.25x200.
    t = 1381132800_000_000_000  # 2013-10-07 04:00:00 EDT
    assert ibm_run.quotes[:5] == [
        Quote("IBM", t + 54_000_000, d(0), 0, d("183.63"), 100),
        Quote("IBM", t + 241_000_000, d("180.01"), 300, d("183.63"), 100),
        Quote("IBM", t + 241_000_000, d("180.01"), 300, d("181.80"), 3000),
        Quote("IBM", t + 277_000_000, d("181.24"), 200, d("181.80"), 3000),
        Quote("IBM", t + 472_000_000, d("181.25"), 200, d("181.80"), 3000),
    ]


def test_ibm_every_nbbo_change_matches_a_brute_force_rebuild(ibm_run: IbmRun) -> None:
    got = [(q.ts_ns, q.bid, q.bid_size, q.ask, q.ask_size) for q in ibm_run.quotes]
    assert got == ibm_run.expected


def test_ibm_counts_updates_in_and_changes_out(ibm_run: IbmRun) -> None:
    # 109,067 rows, one of them (20:00:00.122) flagged suspicious; each row quotes one side.
    assert (ibm_run.report.rows, ibm_run.report.suspicious) == (109_067, 1)
    assert ibm_run.builder.updates == 109_066
    assert ibm_run.builder.changes == len(ibm_run.expected)


def test_ibm_locked_and_crossed_nbbos_are_published_not_suppressed(ibm_run: IbmRun) -> None:
    locked = sum(1 for q in ibm_run.quotes if q.is_two_sided and q.bid == q.ask)
    crossed = sum(1 for q in ibm_run.quotes if q.is_two_sided and q.bid > q.ask)
    assert (ibm_run.builder.locked, ibm_run.builder.crossed) == (locked, crossed)
    assert crossed > 0
