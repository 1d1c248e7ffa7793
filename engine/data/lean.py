"""Readers for QuantConnect Lean's equity data files.

Lean stores one headerless CSV per zip, one zip per symbol, day and kind:
``<root>/equity/usa/<minute|tick>/<symbol>/<YYYYMMDD>_<trade|quote>.zip``. Times
are milliseconds since midnight America/New_York of the file's date, prices are
integers in 1/10,000 dollar (read exactly as ``Decimal(n).scaleb(-4)``), and an
empty field means that side had no quote.

Every reader yields engine models lazily. A corrupt row (wrong field count, a
non-number, high below low, a negative size, time going backwards...) never
raises: it becomes a ``DataError`` whose ``where`` is
``<zip path>/<csv name>:<line>``, is counted in the caller's ``ReadReport`` and is
skipped. Only a file that does not exist (or a bad argument) raises, eagerly and
with one sentence, as ``InputError``.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from loguru import logger

from engine.core.clock import NEW_YORK, NS_PER_MS, datetime_to_ns
from engine.core.errors import DataError, InputError
from engine.core.models import Bar, Quote, Trade
from engine.core.prices import ZERO
from engine.data.nbbo import BookSide, VenueQuote

MS_PER_DAY = 86_400_000
MINUTE_NS = 60_000_000_000
MAX_KEPT_ERRORS = 1_000


class Resolution(StrEnum):
    MINUTE = "minute"
    TICK = "tick"


class DataKind(StrEnum):
    TRADE = "trade"
    QUOTE = "quote"


@dataclass(slots=True)
class ReadReport:
    """What the readers saw: files and rows read, suspicious rows skipped, bad rows and why.

    Readers are lazy, so the counts are final only once their iterators are done.
    ``bad_count`` counts every bad row skipped; ``errors`` keeps the first
    ``MAX_KEPT_ERRORS`` of them (a wholly corrupt file must not fill memory).
    """

    files: int = 0
    rows: int = 0
    suspicious: int = 0
    bad_count: int = 0
    errors: list[DataError] = field(default_factory=list)

    def add_error(self, error: DataError) -> None:
        self.bad_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)
            logger.warning("skipped bad data: {}", error)

    @property
    def bad_rows(self) -> list[str]:
        """The kept bad rows as "file:line: reason" sentences."""
        return [str(error) for error in self.errors]


@dataclass(slots=True, frozen=True)
class FactorRow:
    """One row of a Lean factor file: prices on or before ``day`` are scaled by these factors."""

    day: date
    price_factor: Decimal
    split_factor: Decimal
    reference_price: Decimal


# -- locating files -------------------------------------------------------------------------


def parse_resolution(value: str) -> Resolution:
    """``value`` as a Resolution; ``InputError`` naming the choices if it is not one."""
    try:
        return Resolution(value)
    except ValueError:
        raise InputError(f"unknown resolution '{value}': use minute or tick.") from None


def _kind(value: str) -> DataKind:
    try:
        return DataKind(value)
    except ValueError:
        raise InputError(f"unknown Lean data kind '{value}': use trade or quote.") from None


def equity_dir(root: Path) -> Path:
    """The ``equity/usa`` folder of a Lean data root."""
    return Path(root) / "equity" / "usa"


def lean_path(root: Path, resolution: str, symbol: str, day: date, kind: str) -> Path:
    """Where Lean keeps a day of ``kind`` (trade/quote) at ``resolution`` (minute/tick)."""
    res = parse_resolution(resolution)
    return equity_dir(root) / res / symbol.lower() / f"{day:%Y%m%d}_{_kind(kind)}.zip"


def _parse_day(text: str) -> date:
    """A ``YYYYMMDD`` calendar date; ``ValueError`` if it is not one."""
    if len(text) != 8 or not text.isdigit():
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def file_date(path: Path) -> date:
    """The trading day a Lean file holds, from its ``YYYYMMDD_`` name."""
    try:
        return _parse_day(Path(path).name[:8])
    except ValueError:
        raise InputError(
            f"{path} is not a Lean day file: its name must start with YYYYMMDD."
        ) from None


def available_days(root: Path, resolution: str = "minute") -> list[tuple[str, date]]:
    """Every (SYMBOL, day) with a trade or quote zip under ``root``, sorted by symbol then day."""
    base = equity_dir(root) / parse_resolution(resolution)
    found: set[tuple[str, date]] = set()
    if base.is_dir():
        for path in base.glob("*/*.zip"):
            stem = path.stem
            if len(stem) > 9 and stem[8] == "_" and stem[9:] in (DataKind.TRADE, DataKind.QUOTE):
                try:
                    found.add((path.parent.name.upper(), file_date(path)))
                except InputError:
                    continue  # a stray zip that is not a day file belongs to no replay
    return sorted(found)


def _require_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no Lean data file at {path}.")
    return path


def _symbol_for(path: Path, symbol: str | None) -> str:
    return (symbol or path.parent.name).upper()


# -- time -----------------------------------------------------------------------------------


# (ns at local midnight, None) on an ordinary day; (that, a per-row converter) on a DST day.
_MsClock = tuple[int, Callable[[int], int] | None]


def _ms_clock(day: date) -> _MsClock:
    """How to turn ms since local midnight of ``day`` into ns since the epoch, as Lean does.

    Lean reads the ms as wall time. On an ordinary day that is a fixed offset:
    ``(base, None)`` and ts = base + ms * 1e6, the fast path. On a daylight-saving
    day the offset depends on the row's wall time: ``(base, convert)``.
    """
    midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK)
    last = datetime.combine(day, time(23, 59, 59), tzinfo=NEW_YORK)
    if midnight.utcoffset() == last.utcoffset():
        return datetime_to_ns(midnight), None

    def convert(ms: int) -> int:
        return datetime_to_ns(midnight + timedelta(milliseconds=ms))

    return datetime_to_ns(midnight), convert


def session_bounds_ns(day: date) -> tuple[int, int]:
    """The regular session of ``day``: 09:30 and 16:00 America/New_York, in ns since the epoch."""
    return (
        datetime_to_ns(datetime.combine(day, time(9, 30), tzinfo=NEW_YORK)),
        datetime_to_ns(datetime.combine(day, time(16, 0), tzinfo=NEW_YORK)),
    )


# -- the row loop ---------------------------------------------------------------------------

# What can break while a zip member is being read: damaged deflate data, a CRC
# mismatch, a NUL byte or stray non-ASCII in the CSV, an IO error.
_STREAM_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, csv.Error, UnicodeDecodeError, OSError)


class _LeanCsv:
    """The rows of a Lean zip's one CSV, and where each bad one was."""

    __slots__ = ("_reader", "path", "report", "where")

    def __init__(self, path: Path, report: ReadReport) -> None:
        self.path = path
        self.report = report
        self.where = str(path)
        self._reader: Iterator[list[str]] | None = None

    def rows(self) -> Iterator[list[str]]:
        """Every row as fields. An unreadable archive, or a stream that breaks
        mid-file, is one DataError; the rows before the break are kept."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                if len(members) != 1:
                    self.report.add_error(
                        DataError(self.where, f"holds {len(members)} files, not one CSV")
                    )
                    return
                raw = archive.open(members[0])
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
            self.report.add_error(DataError(self.where, f"is not a readable zip archive ({exc})"))
            return
        self.where = f"{self.path}/{members[0].filename}"
        self.report.files += 1
        reader = self._reader = csv.reader(io.TextIOWrapper(raw, encoding="ascii", newline=""))
        try:
            with raw:
                yield from reader
        except _STREAM_ERRORS as exc:
            self.report.add_error(
                DataError(f"{self.where}:{reader.line_num + 1}", f"unreadable from here ({exc})")
            )
        finally:
            # Counted once at the end rather than per row: Lean rows are one line each.
            self.report.rows += reader.line_num

    def bad(self, reason: str) -> None:
        """Record the row just read as bad, with its line number."""
        line = self._reader.line_num if self._reader is not None else 0
        self.report.add_error(DataError(f"{self.where}:{line}", reason))


class _BadRow(Exception):
    """A row that cannot be used; the message is the reason."""


class _Prices(dict[str, Decimal]):
    """Exact Decimal prices by their text, parsed once: a day repeats a few thousand prices
    many thousand times. Missing text is parsed as an integer count of 1/10,000 dollar."""

    def __missing__(self, text: str) -> Decimal:
        try:
            value = int(text)
        except ValueError:
            raise _BadRow(f"price '{text}' is not a whole number of 1/10,000 dollar") from None
        if value < 0:
            raise _BadRow(f"price {text} is negative")
        price = self[text] = Decimal(value).scaleb(-4)
        return price


class _Counts(dict[str, int]):
    """Non-negative whole numbers (sizes, volumes) by their text, parsed once."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __missing__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _BadRow(f"{self.name} '{text}' is not a whole number") from None
        if value < 0:
            raise _BadRow(f"{self.name} {value} is negative")
        self[text] = value
        return value


def _time_ms(text: str, previous_ms: int) -> int:
    """The row's ms since midnight: a whole number within the day, never before the last row's."""
    try:
        ms = int(text)
    except ValueError:
        raise _BadRow(f"time '{text}' is not a whole number of ms") from None
    if not previous_ms <= ms < MS_PER_DAY:
        if ms < 0 or ms >= MS_PER_DAY:
            raise _BadRow(f"time {ms} ms is outside the day")
        raise _BadRow(f"time {ms} ms goes back before the previous row's {previous_ms} ms")
    return ms


def _field_count(row: list[str], expected: int) -> str:
    return f"expected {expected} fields, got {len(row)}"


def _shape_problem(prefix: str, open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> str:
    if low <= ZERO:
        return f"{prefix}low {low} is not positive"
    if high < low:
        return f"{prefix}high {high} is below low {low}"
    return f"{prefix}open {open_} and close {close} must lie within low {low}..high {high}"


# What a reader builds from one row: its model, or the fields it makes models of.
_Record = TypeVar("_Record")


def _timed_rows(
    path: Path,
    report: ReadReport,
    clock: _MsClock,
    width: int,
    build: Callable[[list[str], int], _Record | None],
) -> Iterator[_Record]:
    """``build(row, ts_ns)`` for each good row of a day file whose rows start with the time.

    A row that is not ``width`` fields, whose time is bad, or that ``build``
    refuses with ``_BadRow`` is recorded in ``report`` and skipped. A row
    ``build`` returns None for was flagged suspicious: it is counted and skipped,
    though its time still counts as the latest.
    """
    base, convert = clock
    source = _LeanCsv(path, report)
    previous_ms = 0
    for row in source.rows():
        try:
            if len(row) != width:
                raise _BadRow(_field_count(row, width))
            ms = _time_ms(row[0], previous_ms)
            record = build(row, base + ms * NS_PER_MS if convert is None else convert(ms))
        except _BadRow as exc:
            source.bad(str(exc))
            continue
        previous_ms = ms
        if record is None:
            report.suspicious += 1
            continue
        yield record


# -- minute bars ----------------------------------------------------------------------------


def read_minute_trades(
    path: Path, symbol: str | None = None, report: ReadReport | None = None
) -> Iterator[Bar]:
    """One ``Bar(timeframe="1Min")`` per row of ``ms,open,high,low,close,volume``.

    ``ts_ns`` is the bar's start. ``symbol`` defaults to the file's folder name, upper-cased.
    """
    path = _require_file(path)
    clock = _ms_clock(file_date(path))
    return _minute_trades(path, _symbol_for(path, symbol), clock, report or ReadReport())


def _minute_trades(path: Path, symbol: str, clock: _MsClock, report: ReadReport) -> Iterator[Bar]:
    prices, volumes = _Prices(), _Counts("volume")

    def bar(row: list[str], ts_ns: int) -> Bar:
        open_, high, low, close = prices[row[1]], prices[row[2]], prices[row[3]], prices[row[4]]
        volume = volumes[row[5]]
        if not (ZERO < low <= open_ <= high and low <= close <= high):
            raise _BadRow(_shape_problem("", open_, high, low, close))
        return Bar(symbol, ts_ns, open_, high, low, close, volume, "1Min")

    return _timed_rows(path, report, clock, 6, bar)


def _quote_side(
    fields: list[str], prices: _Prices, sizes: _Counts, name: str
) -> tuple[Decimal, int]:
    """The closing (price, size) of one side of a quote bar; (0, 0) when that side had no quote."""
    open_text, high_text, low_text, close_text, size_text = fields
    if not (open_text or high_text or low_text or close_text):
        return ZERO, 0
    open_, high, low, close = (
        prices[open_text],
        prices[high_text],
        prices[low_text],
        prices[close_text],
    )
    if not (low <= open_ <= high and low <= close <= high):
        raise _BadRow(_shape_problem(f"{name} ", open_, high, low, close))
    return close, sizes[size_text] if size_text else 0


def read_minute_quotes(
    path: Path, symbol: str | None = None, report: ReadReport | None = None
) -> Iterator[Quote]:
    """One ``Quote`` per quote bar, from its closing bid and ask.

    The quote is stamped at the END of its minute, bar start + 60 s - 1 ns: a quote
    bar's close is known only when the minute is over, so stamping it at the
    start would let a replay see a minute into the future. The 1 ns puts it just
    before the trade bar of the same minute, which a replay releases at its end.
    """
    path = _require_file(path)
    clock = _ms_clock(file_date(path))
    return _minute_quotes(path, _symbol_for(path, symbol), clock, report or ReadReport())


def _minute_quotes(path: Path, symbol: str, clock: _MsClock, report: ReadReport) -> Iterator[Quote]:
    prices, sizes = _Prices(), _Counts("size")

    def quote(row: list[str], ts_ns: int) -> Quote:
        bid, bid_size = _quote_side(row[1:6], prices, sizes, "bid")
        ask, ask_size = _quote_side(row[6:11], prices, sizes, "ask")
        return Quote(symbol, ts_ns + MINUTE_NS - 1, bid, bid_size, ask, ask_size)

    return _timed_rows(path, report, clock, 11, quote)


# -- ticks ----------------------------------------------------------------------------------


class _Flags(dict[str, bool]):
    """Lean's suspicious flag: "0" or "1"."""

    def __init__(self) -> None:
        super().__init__({"0": False, "1": True})

    def __missing__(self, text: str) -> bool:
        raise _BadRow(f"suspicious flag '{text}' is neither 0 nor 1")


def read_tick_trades(
    path: Path, symbol: str | None = None, report: ReadReport | None = None
) -> Iterator[Trade]:
    """One ``Trade`` per row of ``ms,price,size,exchange,condition_hex,suspicious``.

    Rows flagged suspicious are skipped and counted in ``report.suspicious``.
    """
    path = _require_file(path)
    clock = _ms_clock(file_date(path))
    return _tick_trades(path, _symbol_for(path, symbol), clock, report or ReadReport())


def _tick_trades(path: Path, symbol: str, clock: _MsClock, report: ReadReport) -> Iterator[Trade]:
    prices, sizes, flags = _Prices(), _Counts("size"), _Flags()

    def trade(row: list[str], ts_ns: int) -> Trade | None:
        price, size = prices[row[1]], sizes[row[2]]
        if not price or not size:
            raise _BadRow(f"a trade of {size} at {price} is not a trade")
        return None if flags[row[5]] else Trade(symbol, ts_ns, price, size, row[3])

    return _timed_rows(path, report, clock, 6, trade)


def read_tick_quotes(
    path: Path, symbol: str | None = None, report: ReadReport | None = None
) -> Iterator[VenueQuote]:
    """One-sided quote updates from each row of
    ``ms,bid,bid_size,ask,ask_size,exchange,condition,suspicious``.

    Lean writes one side per row, the other side 0/0 (or empty), so a side that is
    0/0 in a row says nothing about that side and yields nothing. A row with a bid
    and an ask yields two updates, bid first. A row with neither side means no
    quote at all: it yields a clearing update (price 0, size 0) for each side.
    Rows flagged suspicious are skipped and counted. ``venue`` is the row's
    exchange. (In Lean's files these rows are the consolidated NBBO, a bid row
    and an ask row per update, each naming the exchange at the best price.)
    """
    path = _require_file(path)
    clock = _ms_clock(file_date(path))
    return _tick_quotes(path, _symbol_for(path, symbol), clock, report or ReadReport())


def _tick_quotes(
    path: Path, symbol: str, clock: _MsClock, report: ReadReport
) -> Iterator[VenueQuote]:
    prices, sizes, flags = _Prices(), _Counts("size"), _Flags()
    prices[""] = ZERO
    sizes[""] = 0
    bid_side, ask_side = BookSide.BID, BookSide.ASK

    def sides(row: list[str], ts_ns: int) -> tuple[int, str, Decimal, int, Decimal, int] | None:
        _, bid_text, bid_size_text, ask_text, ask_size_text, venue, _, flag = row
        bid, bid_size = prices[bid_text], sizes[bid_size_text]
        ask, ask_size = prices[ask_text], sizes[ask_size_text]
        if not venue:
            raise _BadRow("the exchange field is empty")
        return None if flags[flag] else (ts_ns, venue, bid, bid_size, ask, ask_size)

    for ts_ns, venue, bid, bid_size, ask, ask_size in _timed_rows(path, report, clock, 8, sides):
        has_bid = bool(bid or bid_size)
        has_ask = bool(ask or ask_size)
        if has_bid or not has_ask:
            yield VenueQuote(symbol, ts_ns, venue, bid_side, bid, bid_size)
        if has_ask or not has_bid:
            yield VenueQuote(symbol, ts_ns, venue, ask_side, ask, ask_size)


# -- daily bars and factors -----------------------------------------------------------------


def daily_path(root: Path, symbol: str) -> Path:
    return equity_dir(root) / "daily" / f"{symbol.lower()}.zip"


def factor_path(root: Path, symbol: str) -> Path:
    return equity_dir(root) / "factor_files" / f"{symbol.lower()}.csv"


def read_daily_bars(
    path: Path, symbol: str | None = None, report: ReadReport | None = None
) -> Iterator[Bar]:
    """One ``Bar(timeframe="1Day")`` per row of ``YYYYMMDD HH:MM,open,high,low,close,volume``.

    Raw (unadjusted) prices; ``ts_ns`` is midnight America/New_York of the day, as
    Alpaca stamps daily bars. ``symbol`` defaults to the file name, upper-cased.
    """
    path = _require_file(path)
    return _daily_bars(path, (symbol or path.stem).upper(), report or ReadReport())


def _daily_bars(path: Path, symbol: str, report: ReadReport) -> Iterator[Bar]:
    prices, volumes = _Prices(), _Counts("volume")
    source = _LeanCsv(path, report)
    for row in source.rows():
        try:
            if len(row) != 6:
                raise _BadRow(_field_count(row, 6))
            try:
                day = _parse_day(row[0][:8])
            except ValueError:
                raise _BadRow(f"date '{row[0]}' is not YYYYMMDD HH:MM") from None
            open_, high, low, close = prices[row[1]], prices[row[2]], prices[row[3]], prices[row[4]]
            volume = volumes[row[5]]
            if not (ZERO < low <= open_ <= high and low <= close <= high):
                raise _BadRow(_shape_problem("", open_, high, low, close))
        except _BadRow as exc:
            source.bad(str(exc))
            continue
        midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK)
        yield Bar(symbol, datetime_to_ns(midnight), open_, high, low, close, volume, "1Day")


def read_factor_file(path: Path, report: ReadReport | None = None) -> list[FactorRow]:
    """The rows of a Lean factor file (``YYYYMMDD,price_factor,split_factor,reference_price``)."""
    path = _require_file(path)
    report = report or ReadReport()
    rows: list[FactorRow] = []
    with path.open(newline="", encoding="ascii") as handle:
        for line, row in enumerate(csv.reader(handle), 1):
            report.rows += 1
            factor = _factor_row(row)
            if factor is None:
                report.add_error(
                    DataError(f"{path}:{line}", "expected YYYYMMDD and three positive factors")
                )
                continue
            rows.append(factor)
    rows.sort(key=lambda factor: factor.day)
    return rows


def _factor_row(row: list[str]) -> FactorRow | None:
    if len(row) != 4:
        return None
    try:
        day = _parse_day(row[0])
        price_factor, split_factor, reference = (Decimal(value) for value in row[1:])
    except (ValueError, ArithmeticError):
        return None
    if price_factor <= ZERO or split_factor <= ZERO:
        return None
    return FactorRow(day, price_factor, split_factor, reference)


def split_factor_on(factors: list[FactorRow], day: date) -> Decimal:
    """The cumulative split factor Lean applies to prices of ``day`` (1 after the last row)."""
    for factor in factors:
        if factor.day >= day:
            return factor.split_factor
    return Decimal(1)
