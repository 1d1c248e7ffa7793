"""Ingest history files into the store, and verify what is stored.

Readers: Lean zips (minute trade and quote bars, tick trades, daily bars; see
``engine.data.lean``), Pooksoft daily CSVs (``timestamp,open,high,low,close,...,volume``,
either date order, plain or gzipped, an optional leading ``symbol`` column) and
Parquet files (the store's own version-1 files, or any table with
``ts_ns``/``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume`` and
optionally ``symbol``).

A bad row is never dropped silently: it becomes a ``DataError`` naming
``file:line`` (``file:row N`` for Parquet), is counted, reported, and written
with its raw text under the store's ``quarantine/`` prefix. Only a path that
does not exist or is not a format tickdeck reads raises, as ``InputError``.

``verify`` checks stored series: the schema version and columns of every
object, duplicate timestamps, OHLC sanity (``0 < low <= open, close <= high``,
``volume >= 0``), and gaps against the NYSE calendar: sessions with no data,
and for intraday bars sessions whose regular hours (shorter on half days) are
missing minutes.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from engine.core.errors import DataError, InputError
from engine.core.models import Bar, Quote, Trade
from engine.core.prices import CENT, ZERO, to_decimal
from engine.data.lean import (
    ReadReport,
    read_daily_bars,
    read_minute_quotes,
    read_minute_trades,
    read_tick_trades,
)
from engine.data.store.calendar import covered_range, sessions
from engine.data.store.history import HistoryStore, WriteResult
from engine.data.store.layout import Series
from engine.data.store.schema import (
    SCHEMAS,
    Kind,
    bars_table,
    decode_price,
    encode_price,
    metadata_of,
    parse_timeframe,
    quotes_table,
    trades_table,
)

INGESTIBLE_SUFFIXES = (".zip", ".csv", ".csv.gz", ".parquet")
_BAR_STEP_NS = {
    "1Min": 60_000_000_000,
    "5Min": 300_000_000_000,
    "1Hour": 3_600_000_000_000,
}
_POOKSOFT_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_MICRO = Decimal("0.000001")  # split-adjusted prices: whole millionths, the store's price grid
_WHERE_LINE = re.compile(r"^(?P<file>.*):(?P<line>\d+)$")


@dataclass(slots=True)
class Loaded:
    """What one file held: rows per series, and the file's read report (bad rows with file:line)."""

    path: Path
    source: str
    series: dict[Series, list[Bar | Trade | Quote]] = field(default_factory=dict)
    report: ReadReport = field(default_factory=ReadReport)

    @property
    def good_rows(self) -> int:
        return sum(len(rows) for rows in self.series.values())

    def add(self, series: Series, record: Bar | Trade | Quote) -> None:
        self.series.setdefault(series, []).append(record)


@dataclass(slots=True)
class IngestReport:
    """What an ingest did: files read, rows stored, bad rows (reported and quarantined)."""

    files: int = 0
    rows: int = 0
    written: WriteResult = field(default_factory=WriteResult)
    bad_count: int = 0
    bad_rows: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    series: set[Series] = field(default_factory=set)
    skipped_files: int = 0  # files in the folders given that are not a format tickdeck ingests


# -- reading files --------------------------------------------------------------------------


def ingestible_files(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """The files ``paths`` name: each file as given, and every ingestible file inside each
    folder; and how many other files the folders held (Lean hour, option or index zips...)."""
    found: list[Path] = []
    skipped = 0
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file())
            found += [p for p in inside if _ingestible(p)]
            skipped += sum(1 for p in inside if not _ingestible(p))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path} does not exist.")
    return found, skipped


def _ingestible(path: Path) -> bool:
    name = path.name.lower()
    if not name.endswith(INGESTIBLE_SUFFIXES):
        return False
    if name.endswith(".zip"):
        return _lean_kind(path) is not None
    return True


def _lean_kind(path: Path) -> tuple[str, Kind, str] | None:
    """(reader name, kind, timeframe) for a Lean zip tickdeck can ingest; None for any other zip."""
    folder = path.parent.parent.name if path.parent.parent else ""
    stem = path.stem.lower()
    if path.parent.name == "daily":
        return "daily", Kind.BARS, "1Day"
    if folder == "minute" and stem.endswith("_trade"):
        return "minute_trade", Kind.BARS, "1Min"
    if folder == "minute" and stem.endswith("_quote"):
        return "minute_quote", Kind.QUOTES, ""
    if folder == "tick" and stem.endswith("_trade"):
        return "tick_trade", Kind.TRADES, ""
    return None


def load_file(path: Path, *, symbol: str | None = None, timeframe: str | None = None) -> Loaded:
    """Read one history file; ``InputError`` if it is not a format tickdeck reads."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist.")
    name = path.name.lower()
    if name.endswith(".zip"):
        return _load_lean(path, symbol)
    if name.endswith((".csv", ".csv.gz")):
        return _load_pooksoft(path, symbol)
    if name.endswith(".parquet"):
        return _load_parquet(path, symbol, timeframe)
    raise InputError(
        f"{path} is not a file tickdeck can ingest: use Lean .zip, Pooksoft .csv(.gz) or .parquet."
    )


def _load_lean(path: Path, symbol: str | None) -> Loaded:
    what = _lean_kind(path)
    if what is None:
        raise InputError(
            f"{path} is not a Lean file tickdeck ingests: minute trade or quote bars, "
            "tick trades or daily bars."
        )
    reader_name, kind, timeframe = what
    loaded = Loaded(path, "lean")
    report = loaded.report
    readers: dict[str, Callable[..., Iterator[Bar | Trade | Quote]]] = {
        "daily": read_daily_bars,
        "minute_trade": read_minute_trades,
        "minute_quote": read_minute_quotes,
        "tick_trade": read_tick_trades,
    }
    for record in readers[reader_name](path, symbol, report):
        loaded.add(Series(kind, timeframe, record.symbol), record)
    _drop_duplicates(loaded)
    return loaded


def _drop_duplicates(loaded: Loaded) -> None:
    """Bars repeating an earlier bar's time are bad rows (the first is kept); trades and quotes
    may share a time."""
    for series, records in loaded.series.items():
        if series.kind is not Kind.BARS:
            continue
        seen: set[int] = set()
        kept = []
        for record in records:
            if record.ts_ns in seen:
                stamp = ns_to_datetime(record.ts_ns, NEW_YORK).isoformat()
                loaded.report.add_error(
                    DataError(
                        str(loaded.path),
                        f"{series.describe()} has a second row at {stamp}; the first is kept",
                    )
                )
                continue
            seen.add(record.ts_ns)
            kept.append(record)
        loaded.series[series] = kept


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _pooksoft_symbol(path: Path) -> str | None:
    """``DA-<SYMBOL>-T-<date>.csv`` names its symbol."""
    name = path.name
    if name.startswith("DA-") and "-T-" in name:
        return name[3 : name.rindex("-T-")].upper()
    return None


def _load_pooksoft(path: Path, symbol: str | None) -> Loaded:
    loaded = Loaded(path, "pooksoft")
    report = loaded.report
    report.files += 1
    fixed_symbol = (symbol or _pooksoft_symbol(path) or "").upper() or None
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                report.add_error(DataError(f"{path}:1", "the file is empty"))
                return loaded
            columns = {name.strip().lower(): index for index, name in enumerate(header)}
            missing = [name for name in _POOKSOFT_COLUMNS if name not in columns]
            if missing:
                raise InputError(
                    f"{path}:1: the header lacks the columns {', '.join(missing)}; "
                    "it is not a Pooksoft daily CSV."
                )
            if fixed_symbol is None and "symbol" not in columns:
                raise InputError(
                    f"{path}: no symbol column and no DA-<SYMBOL>-T-... name: give --symbol."
                )
            seen: set[tuple[str, date]] = set()
            splits: dict[tuple[str, int], Decimal] = {}  # (symbol, bar ns) -> that day's split
            for line, fields in enumerate(reader, start=2):
                if not fields or all(not text.strip() for text in fields):
                    continue
                report.rows += 1
                where = f"{path}:{line}"
                try:
                    bar = _pooksoft_bar(fields, columns, len(header), fixed_symbol, where)
                except DataError as error:
                    report.add_error(error)
                    continue
                day_key = (bar.symbol, ns_to_datetime(bar.ts_ns, NEW_YORK).date())
                if day_key in seen:
                    report.add_error(
                        DataError(where, f"{day_key[1]} appears twice; the first row is kept")
                    )
                    continue
                seen.add(day_key)
                split = _split(fields, columns, where)
                if split is None:
                    report.add_error(DataError(where, "split_coefficient is not a positive number"))
                    continue
                if split != 1:
                    splits[(bar.symbol, bar.ts_ns)] = split
                loaded.add(Series(Kind.BARS, "1Day", bar.symbol), bar)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as error:
        report.add_error(DataError(str(path), f"cannot be read from here on ({error})"))
    for series, bars in loaded.series.items():
        ordered = sorted(bars, key=lambda bar: bar.ts_ns)
        loaded.series[series] = _split_adjusted(ordered, splits) if splits else ordered
    return loaded


def _split(fields: list[str], columns: dict[str, int], where: str) -> Decimal | None:
    """The row's split coefficient (1 where the file has no such column); None if malformed."""
    index = columns.get("split_coefficient")
    if index is None:
        return Decimal(1)
    try:
        value = Decimal(fields[index].strip() or "1")
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > ZERO else None


def _split_adjusted(bars: list[Bar], splits: dict[tuple[str, int], Decimal]) -> list[Bar]:
    """Prices and volumes back-adjusted for splits, so a 4:1 split is not a 75% loss.

    A split's coefficient sits on the first day after it; every earlier bar's prices are
    divided by the product of the coefficients after it (to whole millionths, the store's
    grid) and its volume multiplied by it. Dividends are left alone: they are cash, not a
    change of units.
    """
    out: list[Bar] = []
    factor = Decimal(1)
    for bar in reversed(bars):
        if factor != 1:
            out.append(
                replace(
                    bar,
                    open=_adjusted(bar.open, factor),
                    high=_adjusted(bar.high, factor),
                    low=_adjusted(bar.low, factor),
                    close=_adjusted(bar.close, factor),
                    volume=int((bar.volume * factor).to_integral_value()),
                )
            )
        else:
            out.append(bar)
        factor *= splits.get((bar.symbol, bar.ts_ns), Decimal(1))
    return out[::-1]


def _adjusted(price: Decimal, factor: Decimal) -> Decimal:
    exact = (price / factor).quantize(_MICRO, rounding=ROUND_HALF_EVEN)
    trimmed = exact.normalize()  # 126.179125 stays; 50.000000 reads 50.00, as a price does
    return trimmed if trimmed.as_tuple().exponent <= -2 else exact.quantize(CENT)


def _price(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DataError(where, f"{column} '{text}' is not a number") from None
    if not value.is_finite() or value <= ZERO:
        raise DataError(where, f"{column} '{text}' is not a positive price")
    try:
        encode_price(value)
    except ValueError as error:
        raise DataError(where, f"{column} {error}") from None
    return value


def _volume(text: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != value.to_integral():
        raise DataError(where, f"volume '{text}' is not a whole number of shares")
    return int(value)


def _ohlc_problem(open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> str | None:
    if not (low <= open_ <= high and low <= close <= high):
        return f"open {open_} and close {close} must lie within low {low}..high {high}"
    return None


def _pooksoft_bar(
    fields: list[str], columns: dict[str, int], width: int, symbol: str | None, where: str
) -> Bar:
    if len(fields) != width:
        raise DataError(where, f"expected {width} fields, found {len(fields)}")
    text = {name: fields[index].strip() for name, index in columns.items()}
    try:
        day = date.fromisoformat(text["timestamp"][:10])
    except ValueError:
        raise DataError(where, f"'{text['timestamp']}' is not a date") from None
    row_symbol = symbol or text.get("symbol", "").upper()
    if not row_symbol:
        raise DataError(where, "the symbol is empty")
    open_, high, low, close = (
        _price(text[name], name, where) for name in ("open", "high", "low", "close")
    )
    problem = _ohlc_problem(open_, high, low, close)
    if problem:
        raise DataError(where, problem)
    volume = _volume(text["volume"], where)
    midnight = datetime_to_ns(datetime.combine(day, time(0), tzinfo=NEW_YORK))
    return Bar(row_symbol, midnight, open_, high, low, close, volume, "1Day")


def _load_parquet(path: Path, symbol: str | None, timeframe: str | None) -> Loaded:
    loaded = Loaded(path, "parquet")
    report = loaded.report
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{path} is not a readable Parquet file ({error}).") from None
    report.files += 1
    meta = metadata_of(table)
    if meta.get("kind") == Kind.BARS.value:
        timeframe = timeframe or meta.get("timeframe")
        symbol = symbol or meta.get("symbol")
        loaded.source = meta.get("source") or "parquet"
    if not timeframe:
        raise InputError(f"{path}: say which timeframe its bars are with --timeframe.")
    try:
        timeframe = parse_timeframe(timeframe)
    except ValueError as error:
        raise InputError(f"{error}.") from None
    names = set(table.column_names)
    time_column = "ts_ns" if "ts_ns" in names else "timestamp" if "timestamp" in names else None
    missing = [n for n in ("open", "high", "low", "close", "volume") if n not in names]
    if time_column is None or missing:
        lacks = ", ".join(missing + ([] if time_column else ["ts_ns or timestamp"]))
        raise InputError(f"{path} lacks the bar columns {lacks}.")
    if symbol is None and "symbol" not in names:
        raise InputError(f"{path}: no symbol column and no tickdeck metadata: give --symbol.")
    stamps = table.column(time_column)
    if pa.types.is_timestamp(stamps.type):
        stamps = stamps.cast(pa.timestamp("ns", tz=stamps.type.tz)).cast(pa.int64())
    encoded = meta.get("schema_version") is not None and pa.types.is_integer(table["open"].type)
    columns = {n: table.column(n).to_pylist() for n in ("open", "high", "low", "close", "volume")}
    symbols = table.column("symbol").to_pylist() if "symbol" in names else None
    seen: set[tuple[str, int]] = set()
    for index, ts_ns in enumerate(stamps.to_pylist()):
        report.rows += 1
        where = f"{path}:row {index + 1}"
        try:
            row_symbol = (symbol or (symbols[index] if symbols else "") or "").upper()
            if not row_symbol or ts_ns is None:
                raise DataError(where, "the symbol or the time is empty")
            prices = [
                _parquet_price(columns[name][index], name, where, encoded)
                for name in ("open", "high", "low", "close")
            ]
            problem = _ohlc_problem(*prices)
            if problem:
                raise DataError(where, problem)
            volume = columns["volume"][index]
            if volume is None or int(volume) != volume or volume < 0:
                raise DataError(where, f"volume {volume} is not a whole number of shares")
            if (row_symbol, ts_ns) in seen:
                raise DataError(where, "repeats an earlier row's time; the first is kept")
        except DataError as error:
            report.add_error(error)
            continue
        seen.add((row_symbol, ts_ns))
        bar = Bar(row_symbol, int(ts_ns), *prices, int(volume), timeframe)
        loaded.add(Series(Kind.BARS, timeframe, row_symbol), bar)
    for series, bars in loaded.series.items():
        loaded.series[series] = sorted(bars, key=lambda bar: bar.ts_ns)
    return loaded


def _parquet_price(value: object, column: str, where: str, encoded: bool) -> Decimal:
    if value is None:
        raise DataError(where, f"{column} is empty")
    if encoded:
        price = decode_price(int(value))
    else:
        try:
            price = to_decimal(value)
        except ValueError as error:
            raise DataError(where, f"{column}: {error}") from None
        if isinstance(value, float):
            # A binary float carries no exact cents: keep the 1/1,000,000 the store holds.
            price = price.quantize(Decimal("0.000001"))
    if price <= ZERO:
        raise DataError(where, f"{column} {price} is not a positive price")
    try:
        encode_price(price)
    except ValueError as error:
        raise DataError(where, f"{column} {error}") from None
    return price


# -- into the store -------------------------------------------------------------------------


def table_of(series: Series, records: Sequence[Bar | Trade | Quote]) -> pa.Table:
    if series.kind is Kind.BARS:
        return bars_table(records)
    if series.kind is Kind.TRADES:
        return trades_table(records)
    return quotes_table(records)


def quarantine_text(errors: Iterable[DataError]) -> str:
    """One line per bad row: ``file:line<TAB>reason<TAB>the raw row`` (raw text where it can be read)."""
    lines: dict[str, list[str]] = {}
    out = []
    for error in errors:
        raw = _raw_line(error.where, lines)
        reason = str(error)[len(error.where) + 2 :]
        out.append(f"{error.where}\t{reason}\t{raw}")
    return "\n".join(out) + "\n"


def _raw_line(where: str, cache: dict[str, list[str]]) -> str:
    match = _WHERE_LINE.match(where)
    if match is None:
        return ""
    name, line = match.group("file"), int(match.group("line"))
    if name not in cache:
        cache[name] = _file_lines(name)
    rows = cache[name]
    return rows[line - 1] if 0 < line <= len(rows) else ""


def _file_lines(name: str) -> list[str]:
    """The text lines of a CSV, a gzipped CSV, or a CSV inside a zip (``archive.zip/member.csv``)."""
    try:
        if ".zip/" in name:
            archive, member = name.split(".zip/", 1)
            with zipfile.ZipFile(archive + ".zip") as zipped:
                return zipped.read(member).decode("ascii", "replace").splitlines()
        path = Path(name)
        if path.is_file() and name.lower().endswith((".csv", ".csv.gz")):
            with _open_text(path) as handle:
                return handle.read().splitlines()
    except (OSError, zipfile.BadZipFile, KeyError, UnicodeDecodeError, EOFError):
        pass
    return []


def quarantine_name(loaded: Loaded) -> str:
    digest = hashlib.sha256(str(loaded.path.resolve()).encode()).hexdigest()[:12]
    return f"{loaded.source}/{loaded.path.name}-{digest}.tsv"


def store_loaded(store: HistoryStore, loaded: Loaded, report: IngestReport) -> None:
    """Write one file's rows into the store and quarantine its bad rows; adds to ``report``."""
    report.files += 1
    for series, records in loaded.series.items():
        if records:
            report.written += store.write(series, table_of(series, records), loaded.source)
            report.series.add(series)
    report.rows += loaded.good_rows
    errors = loaded.report.errors
    report.bad_count += loaded.report.bad_count
    if errors:
        report.bad_rows += [str(error) for error in errors]
        text = quarantine_text(errors)
        if loaded.report.bad_count > len(errors):
            text += f"# and {loaded.report.bad_count - len(errors)} more bad rows not listed\n"
        report.quarantined.append(store.quarantine(quarantine_name(loaded), text))


def ingest_files(
    store: HistoryStore,
    paths: Sequence[Path],
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
) -> IngestReport:
    """Read every file ``paths`` name and store its rows; bad rows are reported and quarantined.

    ``StoreUnavailable`` if the store cannot be reached; ``InputError`` for a path
    that is missing or not a format tickdeck reads (checked before anything is written).
    """
    files, skipped = ingestible_files(paths)
    if not files:
        raise InputError("no ingestible files (Lean .zip, .csv, .csv.gz or .parquet) were found.")
    for path in files:
        if not _ingestible(path):
            load_file(path, symbol=symbol, timeframe=timeframe)  # raises the one sentence
    report = IngestReport(skipped_files=skipped)
    for index, path in enumerate(files, 1):
        store_loaded(store, load_file(path, symbol=symbol, timeframe=timeframe), report)
        if progress is not None:
            progress(index, len(files), path)
    return report


def ingest_bars(store: HistoryStore, bars: Sequence[Bar], source: str) -> IngestReport:
    """Store bars fetched from a service (Alpaca, yfinance); they were checked by their fetcher."""
    report = IngestReport(files=0, rows=len(bars))
    report.written = store.write_bars(bars, source)
    report.series = {Series(Kind.BARS, bar.timeframe, bar.symbol) for bar in bars}
    return report


# -- verify ---------------------------------------------------------------------------------


@dataclass(slots=True)
class VerifyReport:
    """Problems found, one sentence each, by check (``bad_rows``: rows of files, file:line)."""

    series: int = 0
    rows: int = 0
    bad_rows: list[str] = field(default_factory=list)
    schema: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    ohlc: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.bad_rows + self.schema + self.duplicates + self.ohlc + self.gaps

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_table(series: Series, table: pa.Table, report: VerifyReport, where: str) -> None:
    """Duplicates, OHLC sanity and calendar gaps of one series' rows (``table`` in v1 columns)."""
    report.series += 1
    report.rows += table.num_rows
    if table.num_rows == 0:
        return
    stamps = table.column("ts_ns").to_pylist()
    counts: dict[int, int] = {}
    for ts_ns in stamps:
        counts[ts_ns] = counts.get(ts_ns, 0) + 1
    if series.kind is Kind.BARS:  # trades and quotes may share a time; bars are one per time
        for ts_ns, count in sorted(counts.items()):
            if count > 1:
                moment = ns_to_datetime(ts_ns, NEW_YORK).isoformat()
                report.duplicates.append(f"{where}: {count} rows at {moment}")
        _verify_ohlc(table, report, where)
    _verify_gaps(series, sorted(counts), report, where)


def _verify_ohlc(table: pa.Table, report: VerifyReport, where: str) -> None:
    columns = [table.column(n).to_pylist() for n in ("ts_ns", "open", "high", "low", "close")]
    volumes = table.column("volume").to_pylist()
    for ts_ns, open_, high, low, close, volume in zip(*columns, volumes, strict=True):
        problem = None
        if low <= 0:
            problem = f"low {decode_price(low)} is not positive"
        elif not (low <= open_ <= high and low <= close <= high):
            problem = _ohlc_problem(*(decode_price(p) for p in (open_, high, low, close)))
        elif volume < 0:
            problem = f"volume {volume} is negative"
        if problem:
            moment = ns_to_datetime(ts_ns, NEW_YORK).isoformat()
            report.ohlc.append(f"{where}: bar at {moment}: {problem}")


def _verify_gaps(series: Series, stamps: list[int], report: VerifyReport, where: str) -> None:
    days = {ns_to_datetime(ts_ns, NEW_YORK).date() for ts_ns in stamps}
    first_known, last_known = covered_range()
    start, end = max(min(days), first_known), min(max(days), last_known)
    step = _BAR_STEP_NS.get(series.timeframe)
    for session in sessions(start, end):
        if session.day not in days:
            report.gaps.append(f"{where}: no data for the session of {session.day}")
            continue
        if step is None:
            continue
        expected = range(session.open_ns, session.close_ns, step)
        have = sum(1 for ts_ns in _in_session(stamps, session.open_ns, session.close_ns))
        if have < len(expected):
            half = " (a half day)" if session.half_day else ""
            report.gaps.append(
                f"{where}: {len(expected) - have} of {len(expected)} {series.timeframe} bars "
                f"missing in the regular session of {session.day}{half}"
            )


def _in_session(stamps: list[int], open_ns: int, close_ns: int) -> Iterator[int]:
    low = bisect.bisect_left(stamps, open_ns)
    high = bisect.bisect_left(stamps, close_ns)
    return iter(stamps[low:high])


def verify_store(
    store: HistoryStore, *, symbol: str | None = None, timeframe: str | None = None
) -> VerifyReport:
    """Check every stored series (or those of ``symbol``/``timeframe``); see the module docstring."""
    report = VerifyReport()
    for coverage in store.coverage():
        series = coverage.series
        if symbol and series.symbol != symbol.upper():
            continue
        if timeframe and series.timeframe != timeframe:
            continue
        first, last = _period_dates(coverage.first, coverage.last)
        frame = store.read(series, first, last)
        report.schema += [str(error) for error in frame.errors]
        verify_table(series, frame.table, report, f"{series.describe()}")
    return report


def _period_dates(first: str, last: str) -> tuple[date, date]:
    start = date(int(first), 1, 1) if len(first) == 4 else date.fromisoformat(first)
    end = date(int(last), 12, 31) if len(last) == 4 else date.fromisoformat(last)
    return start, end


def verify_files(paths: Sequence[Path], *, timeframe: str | None = None) -> VerifyReport:
    """Verify files before (or without) ingesting them: bad rows and calendar gaps."""
    report = VerifyReport()
    for path in ingestible_files(paths)[0]:
        loaded = load_file(path, timeframe=timeframe)
        report.bad_rows += [str(error) for error in loaded.report.errors]
        for series, records in loaded.series.items():
            table = table_of(series, records)
            verify_table(series, table.cast(SCHEMAS[series.kind]), report, str(path))
    return report
